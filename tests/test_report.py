"""`ganctl report`: a page a person reads: readable sample grids with their epoch, each metric with
its floor and verdict, protocols collapsed, a classifier's confusion matrix and ROC curves; and
the page rendered in a real browser (headless Chromium, slow)."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ganctl.cli import app

GENERATOR = """\
name: tiny
seed: 5
data: {plugin: digits, limit: 400}
model: {plugin: dcgan, latent_dim: 8, filters: 8, conditional: true}
train: {epochs: 2, batch_size: 32, steps_per_epoch: 3, sample_every: 1}
"""
CLASSIFIER = """\
name: c
seed: 0
data: {plugin: digits, split: train, limit: 400}
model: {plugin: classifier, filters: 4, features: 8}
train: {epochs: 1, batch_size: 32, steps_per_epoch: 4}
"""
_RUNS: dict[str, Path] = {}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANCTL_CACHE_DIR", str(tmp_path / "cache"))


def evaluated_generator(runner, write, tmp_path: Path) -> Path:
    """A tiny conditional run evaluated through pixels (its floor and verdicts without asking)."""
    if "generator" not in _RUNS:
        run = tmp_path / "generator"
        assert runner.invoke(app, ["train", str(write("g.yaml", GENERATOR)), "--out", str(run), "-q"]).exit_code == 0
        result = runner.invoke(app, ["evaluate", str(run), "-m", "fid", "-m", "c2st", "--n", "100",
                                     "--features", "pixels"])
        assert result.exit_code == 0, result.output
        _RUNS["generator"] = run
    shutil.copytree(_RUNS["generator"], tmp_path / "run")
    return tmp_path / "run"


def _images(page: str) -> list[tuple[str, bytes]]:
    return [(alt, base64.b64decode(data)) for alt, data in
            re.findall(r"<img alt='([^']*)'[^>]*src='data:image/png;base64,([^']+)'", page)]


def test_the_report_shows_readable_grids_floors_verdicts_and_collapsed_protocols(runner, write, tmp_path):
    from PIL import Image

    run = evaluated_generator(runner, write, tmp_path)
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    page = (run / "report.html").read_text()
    grids = [(alt, data) for alt, data in _images(page) if alt.startswith("samples")]
    assert [alt for alt, _ in grids] == ["samples, epoch 1", "samples, epoch 2", "samples, final (epoch 2)"]
    for _, data in grids:
        with Image.open(io.BytesIO(data)) as image:
            assert image.width >= 300
            pixels = np.asarray(image)
        assert pixels.std() > 0  # not a blank image
    assert re.findall(r"<figcaption>([^<]*)</figcaption>", page)[:3] == ["epoch 1", "epoch 2", "final (epoch 2)"]
    logged = [json.loads(line) for line in (run / "evaluations.jsonl").read_text().splitlines()]
    for record in logged:  # each value next to its floor, with its verdict
        floor = next(iter(record["floor"]["values"].values()))
        assert f"<td>{floor:.4g}</td>" in page
        assert record["verdict"]["line"] in page.replace("&#x27;", "'")
    assert page.count("<details>") == len(logged) + 2  # every protocol, the recipe and run.json: collapsed
    assert page.count("<summary>protocol of ") == len(logged)
    assert "features: asked for with --features" in page
    assert "Held-out predictions" not in page  # a generator has none


def test_a_classifier_report_has_its_confusion_matrix_and_roc_curves(runner, write, tmp_path):
    from PIL import Image

    run = tmp_path / "classifier"
    assert runner.invoke(app, ["train", str(write("c.yaml", CLASSIFIER)), "--out", str(run), "-q"]).exit_code == 0
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    page = (run / "report.html").read_text()
    assert "Held-out predictions" in page
    found = dict(_images(page))
    for alt in ("confusion matrix", "ROC curves"):
        with Image.open(io.BytesIO(found[alt])) as image:
            assert image.width > 200 and np.asarray(image).std() > 0


CHECK = """
<script>
window.addEventListener('load', () => {
  const images = Array.from(document.images);
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt);
  const out = document.createElement('pre');
  out.id = 'ganctl-check';
  out.textContent = JSON.stringify({images: images.length, broken: broken,
                                    text: document.body.innerText.trim().length});
  document.body.appendChild(out);
});
</script>
"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("headless Chromium is absent (apt-get install -y chromium)")
    return found


@pytest.mark.slow
def test_the_report_renders_in_headless_chromium_with_every_image_loaded(runner, write, tmp_path):
    from PIL import Image

    chromium = _chromium()
    run = evaluated_generator(runner, write, tmp_path)
    assert runner.invoke(app, ["report", str(run)]).exit_code == 0
    page = (run / "report.html").read_text()
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("</body>", CHECK + "</body>"))
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--user-data-dir=" + str(tmp_path / "profile"), "--virtual-time-budget=10000"]
    dom = subprocess.run([*flags, "--dump-dom", checked.as_uri()], capture_output=True, text=True, timeout=300)
    assert dom.returncode == 0, dom.stderr[-2000:]
    report = json.loads(re.search(r"<pre id=\"ganctl-check\">([^<]*)</pre>", dom.stdout).group(1)
                        .replace("&quot;", '"'))
    assert report["images"] == page.count("<img ") and report["images"] >= 5
    assert report["broken"] == [] and report["text"] > 200
    shot = tmp_path / "shot.png"
    done = subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,1600", (run / "report.html").as_uri()],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.float32)
    assert pixels.std() > 10 and len(np.unique(pixels)) > 20  # drawn, not a blank page
