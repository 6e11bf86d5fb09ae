"""ganctl.testing, the public test kit: ganctl's own plugins pass its contract checks, and a
deliberately broken component of each kind fails with the message that says what to change."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ganctl import api
from ganctl.cli import app
from ganctl.engine.backends import resolve
from ganctl.testing.datasets import check_dataset
from ganctl.testing.exporters import check_exporter
from ganctl.testing.extractors import check_extractor
from ganctl.testing.host import CheckFailed, KitHost
from ganctl.testing.metrics import check_metric
from ganctl.testing.models import check_model, installed_backends
from ganctl.testing.runs import recipe

BACKEND = resolve(None)[0]
GAN = {"latent_dim": 8, "hidden": [16, 16]}
MODELS = [("gan", GAN), ("dcgan", {"latent_dim": 8, "filters": 8, "conditional": True}),
          ("vae", {"latent_dim": 4, "architecture": "mlp", "hidden": [16]})]
NOT_TORCH = [b for b in ("jax", "tensorflow") if b in installed_backends()]


def as_plugin(kind: str, name: str, factory: object) -> object:
    """A plugin object registering ``factory`` as ``name`` of ``kind``."""

    class Plugin:
        pass

    def hook(register: api.Register) -> None:
        register(name, factory)

    setattr(Plugin, f"register_{kind}", staticmethod(api.hookimpl(hook)))
    return Plugin


# -- ganctl's own plugins pass ------------------------------------------------------------------


def test_the_builtin_datasets_pass_check_dataset(tmp_path):
    assert len(check_dataset(None, "digits", {"limit": 64})) == 64
    images = np.random.default_rng(0).integers(0, 256, (20, 6, 6), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", images=images, labels=np.arange(20) % 3)
    assert check_dataset(None, "npz", {"path": str(tmp_path / "d.npz"), "labels_key": "labels"}).spec.num_classes == 3


@pytest.mark.parametrize("name", ["fid", "kid", "prdc", "c2st", "class-accuracy", "inception-score"])
def test_the_builtin_metrics_pass_check_metric(name):
    assert check_metric(None, name)


def test_the_builtin_pixels_extractor_passes_check_extractor():
    assert check_extractor(None, "pixels").features.shape == (12, 64)


def test_the_builtin_onnx_exporter_passes_check_exporter(tmp_path):
    assert check_exporter(None, "onnx", workdir=tmp_path).suffix == ".onnx"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["keras", "tf_saved_model"])
def test_the_other_builtin_exporters_pass_check_exporter(tmp_path, name):
    assert check_exporter(None, name, workdir=tmp_path).exists()


@pytest.mark.backends
def test_the_builtin_gan_passes_check_model_on_this_backend(tmp_path):
    losses = check_model(None, "gan", GAN, workdir=tmp_path, backends=[BACKEND])
    assert set(losses[BACKEND]) == {"generator", "discriminator"}


@pytest.mark.slow
@pytest.mark.parametrize("name, params", MODELS, ids=[m for m, _ in MODELS])
def test_the_builtin_models_pass_check_model_on_every_backend(tmp_path, name, params):
    found = check_model(None, name, params, workdir=tmp_path)
    assert len(found) >= 2  # the environment has several backends: they were compared


@pytest.mark.slow
def test_the_builtin_classifier_passes_check_model_on_jax_and_tensorflow(tmp_path):
    assert list(check_model(None, "classifier", {}, workdir=tmp_path, backends=NOT_TORCH)) == NOT_TORCH


@pytest.mark.slow
def test_the_builtin_classifier_resumes_exactly_on_torch(tmp_path):
    if "torch" not in installed_backends():
        pytest.skip("PyTorch is not installed")
    check_model(None, "classifier", {}, workdir=tmp_path, backends=["torch"], export=False)


# -- the fixtures -------------------------------------------------------------------------------


def test_the_fixtures_give_an_isolated_host_data_and_a_trained_run(tmp_path):
    """A plugin's own test suite, run by pytest in a child process: the pytest11 entry point
    gives it the fixtures, with the plugin named once in its ini file."""
    (tmp_path / "ganctl_fixture_probe.py").write_text(PROBE_PLUGIN)
    (tmp_path / "pytest.ini").write_text("[pytest]\nganctl_plugin = ganctl_fixture_probe\n")
    (tmp_path / "test_probe.py").write_text(PROBE_TESTS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    env.pop("GANCTL_LOAD_PLUGINS")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "2 passed" in done.stdout, done.stdout[-4000:] + done.stderr[-2000:]


PROBE_PLUGIN = '''
from ganctl import api

class Tiny(api.ArrayDataset):
    """Sixteen 4x4 images."""
    class Params(api.Params):
        pass
    def __init__(self, params):
        import numpy as np
        super().__init__(np.arange(256, dtype=np.uint8).reshape(16, 4, 4), raw_range=(0, 255))

@api.hookimpl
def register_datasets(register):
    register("tiny-probe", Tiny)
'''

PROBE_TESTS = '''
import json
import os

from typer.testing import CliRunner

from ganctl.cli import app
from ganctl.testing.runs import recipe

def test_host(plugin_host, digits_data, noise_data, run_dir):
    assert os.environ["GANCTL_LOAD_PLUGINS"] == ""
    assert plugin_host.registered("datasets") == ["tiny-probe"]
    assert "kit-digits" in plugin_host.names("datasets") and "dcgan" in plugin_host.names("models")
    assert len(plugin_host.build("datasets", "tiny-probe")) == 16
    assert digits_data.spec.num_classes == 10 and noise_data.spec.num_classes == 0
    assert not run_dir.exists()

def test_train(train_recipe):
    run = train_recipe(recipe("gan", {"latent_dim": 4, "hidden": [8]}, data={"plugin": "tiny-probe"},
                              batch_size=4, steps=2))
    assert run.info["status"] == "completed" and run.info["data"] == "tiny-probe"
    assert [r["step"] for r in run.metrics if "type" not in r] == [1, 2]
    listed = CliRunner().invoke(app, ["plugins", "--json"])  # still the isolated host after training
    assert [p["name"] for p in json.loads(listed.output) if not p["builtin"]] == ["ganctl_testing",
                                                                                  "ganctl_fixture_probe"]
'''


# -- broken components fail with what to change -------------------------------------------------


class Unscaled(api.Dataset):
    """uint8 batches, never scaled."""

    class Params(api.Params):
        pass

    def __init__(self, params: api.Params) -> None:
        self.spec = api.DataSpec(height=4, width=4, channels=1)

    def __len__(self) -> int:
        return 16

    def take(self, indices: np.ndarray) -> api.Batch:
        return api.Batch(np.full((len(indices), 4, 4, 1), 200, np.uint8), None)


class Unseeded(api.ArrayDataset):
    """Drawn from the global generator."""

    class Params(api.Params):
        pass

    def __init__(self, params: api.Params) -> None:
        super().__init__(np.random.randint(0, 256, (16, 4, 4), dtype=np.uint8))  # noqa: NPY002


class UncheckedPath(api.ArrayDataset):
    """Reads a file without checking it."""

    class Params(api.Params):
        path: str = api.PathField("data.npy", description="The file.")

    def __init__(self, params: api.Params) -> None:
        super().__init__(np.load(params.path))


@pytest.mark.parametrize("factory, message", [
    (Unscaled, "gave images of dtype uint8. Fix: scale to float32"),
    (Unseeded, "two datasets built from the same parameters differ. Fix: draw any randomness from a seed"),
    (UncheckedPath, "raised FileNotFoundError"),
])
def test_a_broken_dataset_fails_check_dataset_saying_what_to_change(tmp_path, factory, message):
    if factory is UncheckedPath:
        np.save(tmp_path / "data.npy", np.arange(64, dtype=np.uint8).reshape(4, 4, 4))
        params = {"path": str(tmp_path / "data.npy")}
    else:
        params = {}
    with pytest.raises(CheckFailed, match="dataset 'broken'") as err:
        check_dataset(as_plugin("datasets", "broken", factory), "broken", params)
    assert message in str(err.value)


class Backwards(api.Metric):
    """Says lower is better, but grows as the sets get alike."""

    class Params(api.Params):
        pass

    def compute(self, real, fake, *, fake_labels, seed):
        return {"closeness": -float(np.linalg.norm(real.features.mean(0) - fake.features.mean(0)))}



class Noisy(api.Metric):
    """Adds unseeded noise."""

    class Params(api.Params):
        pass

    def compute(self, real, fake, *, fake_labels, seed):
        gap = float(np.linalg.norm(real.features.mean(0) - fake.features.mean(0)))
        return {"gap": gap + float(np.random.random())}  # noqa: NPY002


@pytest.mark.parametrize("factory, message", [
    (Backwards, "lower_is_better=True says lower is better. Fix: make the headline"),
    (Noisy, "the same features and seed gave different values. Fix: draw any randomness"),
])
def test_a_broken_metric_fails_check_metric_saying_what_to_change(factory, message):
    with pytest.raises(CheckFailed, match="metric 'broken'") as err:
        check_metric(as_plugin("metrics", "broken", factory), "broken")
    assert message in str(err.value)


class BatchNormalised(api.FeatureExtractor):
    """Standardises each batch: an image's features depend on its neighbours."""

    class Params(api.Params):
        pass

    def identity(self):
        return {"name": "batch", "sha256": "0" * 64}

    def extract(self, images):
        flat = images.reshape(len(images), -1)
        return api.Features(((flat - flat.mean(0)) / (flat.std(0) + 1e-6)).astype(np.float32))


class Float64(BatchNormalised):
    """float64 features."""

    def extract(self, images):
        return api.Features(images.reshape(len(images), -1).astype(np.float64))


@pytest.mark.parametrize("factory, message", [
    (BatchNormalised, "depend on the other images of its batch. Fix: compute each image's features on its own"),
    (Float64, "gave features of dtype float64, shape [12, 64] for 12 images. Fix: return finite float32"),
])
def test_a_broken_extractor_fails_check_extractor_saying_what_to_change(factory, message):
    with pytest.raises(CheckFailed, match="feature extractor 'broken'") as err:
        check_extractor(as_plugin("feature_extractors", "broken", factory), "broken")
    assert message in str(err.value)


class Drifting(api.Exporter):
    """Writes the weights but runs a different network."""

    suffix = ".npz"

    class Params(api.Params):
        pass

    def export(self, source, path):
        with open(path, "wb") as handle:
            np.savez(handle, *source.network.get_weights())

    def load(self, path):
        return lambda z, labels: np.zeros((len(z), 8, 8, 1), np.float32)


@pytest.mark.slow
def test_a_broken_exporter_fails_check_exporter_saying_what_to_change(tmp_path):
    with pytest.raises(CheckFailed, match="exporter 'broken'") as err:
        check_exporter(as_plugin("exporters", "broken", Drifting), "broken", workdir=tmp_path)
    assert "exporting a trained generator failed" in str(err.value)
    assert "make load() run it as Keras does" in str(err.value)


def scaffolded_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, edit: tuple[str, str]) -> str:
    """The scaffold's model with one edit (``(old, new)`` in its module), importable as ``ganctl_<name>``."""
    result = CliRunner().invoke(app, ["plugins", "new", name, "--kind", "model", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    module = f"ganctl_{name.replace('-', '_')}"
    source = tmp_path / f"ganctl-{name}" / module / "__init__.py"
    assert edit[0] in source.read_text()
    source.write_text(source.read_text().replace(*edit))
    monkeypatch.syspath_prepend(str(source.parent.parent))
    monkeypatch.delitem(sys.modules, module, raising=False)
    importlib.invalidate_caches()
    return module


def test_a_model_that_hides_its_seed_generator_fails_check_model_on_jax(tmp_path, monkeypatch):
    module = scaffolded_model(tmp_path, monkeypatch, "hidden-seed", ("return [self._noise]", "return []"))
    with pytest.raises(CheckFailed) as err:
        check_model(module, "hidden-seed", {"latent_dim": 4, "hidden": 8}, workdir=tmp_path / "w", backends=["jax"])
    text = str(err.value)
    assert "model 'hidden-seed': on jax" in text and "instance_noise" in text
    assert "every keras.random.SeedGenerator your losses use from seed_generators()" in text


@pytest.mark.slow
def test_a_model_that_restarts_its_state_on_resume_fails_check_model(tmp_path, monkeypatch):
    restart = ("    def seed_generators(self):",
               "    def begin_training(self, steps_per_epoch):\n"
               "        self._noise.state.assign(self._noise.state * 0)  # wrong: a resume starts over\n\n"
               "    def seed_generators(self):")
    module = scaffolded_model(tmp_path, monkeypatch, "restarts", restart)
    with pytest.raises(CheckFailed) as err:
        check_model(module, "restarts", {"latent_dim": 4, "hidden": 8}, workdir=tmp_path / "w", backends=[BACKEND],
                    export=False)
    assert "1 epoch then a resume to 2 ended with state different from 2 epochs straight" in str(err.value)
    assert "instance_noise" in str(err.value)


def test_a_model_built_with_an_unknown_parameter_is_a_config_error(tmp_path):
    with pytest.raises(api.ConfigError, match="hiddn"):
        check_model(None, "gan", {"hiddn": [8]}, workdir=tmp_path, backends=[BACKEND])


def test_the_recipe_helper_is_a_small_valid_recipe():
    host = KitHost()
    from ganctl.recipe.load import validate

    checked = validate(recipe("dcgan", {"latent_dim": 8}, steps=2), host.host)
    assert checked.train.steps_per_epoch == 2 and checked.data.plugin == "kit-digits" and checked.data.params.n == 64
