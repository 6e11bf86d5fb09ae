"""Recipes: schema, precise errors for every kind of bad input, overrides, show, schema."""

from __future__ import annotations

import json

import pytest
import yaml

from ganctl.cli import app
from ganctl.errors import RecipeError
from ganctl.recipe.load import load_recipe, validate

GOOD = """\
name: demo
seed: 3
data:
  plugin: digits
  split: train
model:
  plugin: toy
  latent_dim: 32
train:
  epochs: 5
  batch_size: 32
  optimizers:
    discriminator: {learning_rate: 1.0e-4}
metrics:
  - plugin: toy-metric
    every: 2
export: [toy-export]
"""


def problems(host, path, overrides=()):
    with pytest.raises(RecipeError) as err:
        load_recipe(path, host, overrides)
    return err.value.problems


def test_good_recipe_resolves_with_defaults(host, write):
    recipe = load_recipe(write("r.yaml", GOOD), host)
    assert (recipe.name, recipe.seed, recipe.backend, recipe.output) == ("demo", 3, None, "runs")
    assert recipe.data.plugin == "digits" and recipe.data.params.split == "train"
    assert recipe.model.params.latent_dim == 32 and recipe.model.params.loss == "bce"
    assert recipe.train.epochs == 5 and recipe.train.jit == "auto"
    assert recipe.metrics[0].every == 2 and recipe.metrics[0].params.window == 100
    assert recipe.export[0].plugin == "toy-export"
    discriminator = recipe.train.optimizer_for("discriminator")
    assert discriminator.learning_rate == 1e-4 and discriminator.beta_1 == 0.5
    assert recipe.train.optimizer_for("generator").learning_rate == 2e-4


def test_resolved_recipe_validates_to_itself(host, write):
    recipe = load_recipe(write("r.yaml", GOOD), host, ["train.optimizer.type=sgd", "train.optimizer.momentum=0.9"])
    again = validate(yaml.safe_load(yaml.safe_dump(recipe.to_dict())), host)
    assert again.to_dict() == recipe.to_dict()


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("seed: 3", "seeds: 3", [":2:1: seeds: unknown key 'seeds'. Did you mean 'seed'? Valid keys here: name, seed,"]),
        ("seed: 3", "seed: lots", [":2:1: seed: Input should be a valid integer", "got 'lots'"]),
        ("seed: 3", "seed: -4", [":2:1: seed: Input should be greater than or equal to 0, got -4."]),
        ("seed: 3", "backend: jaxx", [":2:1: backend: Input should be 'jax', 'tensorflow' or 'torch', got 'jaxx'. Did you mean 'jax'?"]),
        ("name: demo", "name: my run", [":1:1: name: 'my run' is not a valid run name"]),
        ("epochs: 5", "epochs: 0", [":10:3: train.epochs: Input should be greater than or equal to 1, got 0."]),
        ("batch_size: 32", "batch_sise: 32", [":11:3: train.batch_sise: unknown key 'batch_sise'. Did you mean 'batch_size'?"]),
        ("batch_size: 32", "optimizer: {type: sgd, beta_1: 0.9}", [":11:3: train.optimizer: 'beta_1' applies to adam, not to sgd"]),
        ("batch_size: 32", "optimizer: {type: adamw}", [":11:15: train.optimizer.type: Input should be 'adam', 'sgd' or 'rmsprop', got 'adamw'. Did you mean 'adam'?"]),
        ("{learning_rate: 1.0e-4}", "{learning_rate: -1}", [":13:21: train.optimizers.discriminator.learning_rate: Input should be greater than 0, got -1."]),
        ("{learning_rate: 1.0e-4}", "{type: sgd, beta_2: 0.9}", ["train.optimizers.discriminator: 'beta_2' applies to adam, not to sgd"]),
        ("discriminator: {", "discrimnator: {", [":13:5: train.optimizers.discrimnator: model 'toy' has no player 'discrimnator'. Did you mean 'discriminator'? Its players are: generator, discriminator."]),
        ("  epochs: 5\n  batch_size: 32\n  optimizers:\n    discriminator: {learning_rate: 1.0e-4}", "  5", [":9:1: train: expected a mapping of keys, got a number."]),
        ("every: 2", "every: 0", [":16:5: metrics[0].every: Input should be greater than or equal to 1, got 0."]),
        ("every: 2", "n: 1", [":16:5: metrics[0].n: Input should be greater than or equal to 2, got 1."]),
        ("plugin: toy-metric", "plugin: nope", [":15:5: metrics[0].plugin: unknown metric plugin 'nope'."]),
        ("[toy-export]", "[tox-export]", [":17:10: export[0].plugin: unknown exporter plugin 'tox-export'. Did you mean 'toy-export'?"]),
        ("[toy-export]", "[{plugin: toy-export, opset: 2}]", ["export[0].opset: Input should be greater than or equal to 7, got 2."]),
        ("[toy-export]", "toy-export", [":17:1: export: Input should be a valid list, got 'toy-export'."]),
    ],
)
def test_core_errors_name_line_key_and_fix(host, write, old, new, expected):
    assert old in GOOD
    path = write("r.yaml", GOOD.replace(old, new))
    found = problems(host, path)
    assert len(found) == 1, found
    assert found[0].startswith(str(path) + ":")
    for text in expected:
        assert text in found[0]


@pytest.mark.parametrize(
    "section, expected",
    [
        ("  plugin: digit", ":4:3: data.plugin: unknown dataset plugin 'digit'. Did you mean 'digits'? Installed dataset plugins: csv, digits, idx, image-folder, npz, parquet."),
        ("  plugin: digits\n  splt: train", ":5:3: data.splt: unknown key 'splt'. Did you mean 'split'? Valid keys here: split, limit."),
        ("  plugin: digits\n  split: tran", ":5:3: data.split: Input should be 'train', 'test' or 'all', got 'tran'. Did you mean 'train'?"),
        ("  plugin: digits\n  limit: 0", ":5:3: data.limit: Input should be greater than or equal to 1, got 0."),
        ("  plugin: idx\n  name: fashion-mnist\n  path: /x", ":3:1: data: give exactly one of `name`"),
        ("  split: train", ":3:1: data.plugin: required key 'plugin' is missing; add it under 'data'. Installed dataset plugins: csv, digits, idx"),
    ],
)
def test_plugin_params_are_validated_by_the_plugin_schema(host, write, section, expected):
    text = GOOD.replace("  plugin: digits\n  split: train", section)
    found = problems(host, write("r.yaml", text))
    assert len(found) == 1 and expected in found[0], found


def test_missing_required_key_points_at_parent(host, write):
    found = problems(host, write("r.yaml", "seed: 1\ndata: {plugin: digits}\nmodel:\n  latent_dim: 4\n"))
    assert any("name: required key 'name' is missing; add it." in p for p in found)
    assert any(":3:1: model.plugin: required key 'plugin' is missing; add it under 'model'." in p for p in found)


def test_all_problems_reported_in_line_order(host, write):
    text = "name: x\nseeds: 1\ndata: {plugin: digits, splt: 1}\nmodel: {plugin: toy, loss: l2}\ntrain: {epochs: 0}\n"
    found = problems(host, write("r.yaml", text))
    lines = [int(p.split(":")[1]) for p in found]
    assert lines == sorted(lines) and len(found) == 4


@pytest.mark.parametrize(
    "text, expected",
    [
        ("name: a\n  bad: [", "YAML syntax error"),
        ("name: demo\nname: again\n", ":2:1: duplicate key 'name' (first defined on line 1)"),
        ("name: !!python/object/apply:os.system ['echo pwned']\n", ":1:7: the tag !!python/object/apply:os.system is not allowed"),
        ("name: !!python/name:os.system\n", "the tag !!python/name:os.system is not allowed"),
        ("name: !custom x\n", "the tag !custom is not allowed"),
        ("name: !!binary aGVsbG8=\n", "the tag !!binary is not allowed"),
        ("data: !!set {a, b}\n", "the tag !!set is not allowed"),
        ("", "the recipe is empty"),
        ("# only a comment\n\n", "the recipe is empty"),
        ("- a\n- b\n", "the top level of a recipe must be a mapping"),
        ("just text\n", "the top level of a recipe must be a mapping"),
        ("a: &a [*a]\n", "recursive alias"),
        ("---\nname: a\n---\nname: b\n", "(expected a single document in the stream)"),
        ("{[1]: x}\n", "mapping keys must be plain text"),
    ],
)
def test_yaml_problems(host, write, text, expected):
    found = problems(host, write("r.yaml", text))
    assert len(found) == 1 and expected in found[0], found


def test_yaml_syntax_error_has_line_and_column(host, write):
    path = write("r.yaml", "name: demo\ndata:\n  plugin: digits\n   split: train\n")
    (found,) = problems(host, path)
    assert found.startswith(f"{path}:4:") and "YAML syntax error" in found


def test_alias_bomb_is_refused(host, write):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}]" for i in range(1, 9)]
    (found,) = problems(host, write("r.yaml", "\n".join(lines) + "\n"))
    assert "expands to more than" in found


def test_merge_keys_and_anchors_work(host, write):
    text = GOOD + "x-base: &opt {learning_rate: 0.001}\n".replace("x-base", "output") if False else GOOD
    text = GOOD.replace("  optimizers:\n    discriminator: {learning_rate: 1.0e-4}",
                        "  optimizer: &opt {learning_rate: 0.001, beta_1: 0.0}\n  optimizers:\n    discriminator: {<<: *opt, learning_rate: 0.002}")
    recipe = load_recipe(write("r.yaml", text), host)
    d = recipe.train.optimizer_for("discriminator")
    assert (d.learning_rate, d.beta_1) == (0.002, 0.0)


def test_binary_garbage_directory_and_missing_file(host, tmp_path):
    garbage = tmp_path / "g.yaml"
    garbage.write_bytes(bytes(range(256)) * 4)
    assert "is a binary file" in problems(host, garbage)[0]
    latin = tmp_path / "l.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    assert "is not UTF-8 text (byte 0xe9 at offset 9)" in problems(host, latin)[0]
    assert "is a directory" in problems(host, tmp_path)[0]
    assert "file not found" in problems(host, tmp_path / "nope.yaml")[0]


# -- --set overrides ---------------------------------------------------------------------------


def test_overrides_set_nested_values_and_lists(host, write):
    path = write("r.yaml", GOOD)
    recipe = load_recipe(path, host, [
        "train.epochs=9", "data.split=test", "seed=11", "model.loss=hinge",
        "metrics.0.every=4", "metrics.1={plugin: toy-metric, window: 5, n: 500}", "train.optimizers.generator.learning_rate=0.01",
        "backend=torch",
    ])
    assert (recipe.train.epochs, recipe.data.params.split, recipe.seed, recipe.backend) == (9, "test", 11, "torch")
    assert recipe.model.params.loss == "hinge"
    assert [m.params.window for m in recipe.metrics] == [100, 5] and recipe.metrics[0].every == 4
    assert [m.n for m in recipe.metrics] == [None, 500]
    assert recipe.train.optimizer_for("generator").learning_rate == 0.01


def test_override_errors_point_at_the_flag(host, write):
    (found,) = problems(host, write("r.yaml", GOOD), ["train.epochs=zero"])
    assert "(--set train.epochs=zero): train.epochs: Input should be a valid integer" in found


@pytest.mark.parametrize(
    "override, expected",
    [
        ("train.epochs", "expected KEY.PATH=VALUE"),
        ("=5", "expected KEY.PATH=VALUE"),
        ("train..epochs=5", "expected KEY.PATH=VALUE"),
        ("train epochs=5", "expected KEY.PATH=VALUE"),
        ("seed.x=1", "cannot set 'x' inside seed, which is a number"),
        ("metrics.5.every=1", "metrics is a list of 1 items; use an index from 0 to 1"),
        ("train.epochs=[1, ", "the value is not valid YAML"),
        ("name=!!python/object:os.system x", "the tag !!python/object:os.system is not allowed"),
    ],
)
def test_malformed_overrides(host, write, override, expected):
    (found,) = problems(host, write("r.yaml", GOOD), [override])
    assert expected in found


# -- CLI -----------------------------------------------------------------------------------------


def test_cli_validate_ok_and_error(runner, host, write):
    path = write("r.yaml", GOOD)
    ok = runner.invoke(app, ["recipe", "validate", str(path)])
    assert ok.exit_code == 0 and ok.stdout.startswith("OK: ") and len(ok.stdout.splitlines()) == 1
    bad = runner.invoke(app, ["recipe", "validate", str(path), "--set", "train.epochs=-1"])
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: ") and "train.epochs" in bad.stderr
    assert "Traceback" not in bad.output and bad.stdout == ""


@pytest.mark.parametrize("args", [["recipe", "validate", "/no/such.yaml"], ["recipe", "show", "/"],
                                  ["recipe", "validate", "x.yaml", "--set", "oops"]])
def test_cli_bad_input_exits_2_without_traceback(runner, host, args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and result.stderr.startswith("error: ")
    assert "Traceback" not in result.output


def test_cli_show_prints_resolved_yaml_and_json(runner, host, write):
    path = write("r.yaml", GOOD)
    shown = runner.invoke(app, ["recipe", "show", str(path), "--set", "train.epochs=2"])
    assert shown.exit_code == 0, shown.output
    data = yaml.safe_load(shown.stdout)
    assert data["train"]["epochs"] == 2 and data["train"]["log_every"] == 50
    assert data["data"] == {"plugin": "digits", "split": "train", "limit": None}
    as_json = runner.invoke(app, ["recipe", "show", str(path), "--json"])
    assert json.loads(as_json.stdout)["model"]["loss"] == "bce"
    # what `show` prints is itself a valid recipe
    again = write("again.yaml", shown.stdout)
    assert runner.invoke(app, ["recipe", "validate", str(again)]).exit_code == 0


def test_cli_schema_covers_core_and_plugins(runner, host, tmp_path):
    result = runner.invoke(app, ["recipe", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    text = json.dumps(schema)
    for key in ("batch_size", "learning_rate", "keep_checkpoints", "latent_dim", "image-folder", "fashion-mnist"):
        assert key in text
    assert set(schema["required"]) == {"name", "data", "model"}
    out = tmp_path / "schema.json"
    assert runner.invoke(app, ["recipe", "schema", "--out", str(out)]).exit_code == 0
    assert json.loads(out.read_text()) == schema


def test_schema_accepts_valid_and_rejects_invalid_recipes(host, write):
    import jsonschema

    from ganctl.recipe.jsonschema import json_schema

    schema = json_schema(host)
    jsonschema.validate(yaml.safe_load(GOOD), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(GOOD.replace("split: train", "split: nope")), schema)


# -- learning-rate schedules ---------------------------------------------------------------------


def test_schedules_resolve_per_player_and_validate_to_themselves(host, write):
    text = GOOD.replace("    discriminator: {learning_rate: 1.0e-4}", (
        "    discriminator: {learning_rate: 1.0e-4, schedule: {type: exponential, decay_steps: 10, decay_rate: 0.5}}"
    )).replace("  batch_size: 32\n", "  batch_size: 32\n  optimizer: {schedule: {type: cosine, decay_steps: 100, warmup_steps: 5}}\n")
    recipe = load_recipe(write("r.yaml", text), host)
    generator, discriminator = (recipe.train.optimizer_for(p) for p in ("generator", "discriminator"))
    assert (generator.schedule.type, generator.schedule.decay_steps, generator.schedule.warmup_steps) == ("cosine", 100, 5)
    assert (discriminator.schedule.type, discriminator.schedule.decay_rate) == ("exponential", 0.5)
    assert discriminator.learning_rate == 1e-4
    resolved = recipe.to_dict()["train"]
    assert resolved["optimizer"]["schedule"] == {"type": "cosine", "warmup_steps": 5, "decay_steps": 100}
    assert "schedule" not in load_recipe(write("plain.yaml", GOOD), host).to_dict()["train"]["optimizer"]
    again = validate(yaml.safe_load(yaml.safe_dump(recipe.to_dict())), host)
    assert again.to_dict() == recipe.to_dict()


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ("{type: cosin}", ":12:26: train.optimizer.schedule.type: Input should be 'constant', 'warmup', 'cosine' or "
                          "'exponential', got 'cosin'. Did you mean 'cosine'?"),
        ("{type: cosine}", ":12:15: train.optimizer.schedule: the cosine schedule needs 'decay_steps'"),
        ("{type: warmup}", "the warmup schedule needs 'warmup_steps'"),
        ("{type: exponential, decay_steps: 10}", "the exponential schedule needs 'decay_rate'"),
        ("{type: warmup, warmup_steps: 5, decay_rate: 0.5}", "'decay_rate' applies to the exponential schedules, "
                                                            "not to warmup; remove 'decay_rate' or change 'schedule.type'"),
        ("{warmup_steps: 5}", "'warmup_steps' applies to the cosine and exponential and warmup schedules, not to constant"),
        ("{type: cosine, decay_steps: 0}", "train.optimizer.schedule.decay_steps: Input should be greater than or equal to 1, got 0."),
        ("{type: cosine, decay_steps: 9, final_fraction: 2}", "final_fraction: Input should be less than or equal to 1, got 2."),
        ("{type: cosine, decay_steps: 9, decay_step: 9}", "schedule.decay_step: unknown key 'decay_step'. Did you mean 'decay_steps'?"),
    ],
)
def test_schedule_errors_name_line_key_and_fix(host, write, schedule, expected):
    text = GOOD.replace("  batch_size: 32\n", f"  batch_size: 32\n  optimizer: {{schedule: {schedule}}}\n")
    found = problems(host, write("r.yaml", text))
    assert len(found) == 1 and expected in found[0], found


def test_per_player_schedule_errors_name_the_player(host, write):
    text = GOOD.replace("{learning_rate: 1.0e-4}", "{schedule: {type: exponential, decay_rate: 0.5}}")
    found = problems(host, write("r.yaml", text))
    assert len(found) == 1 and "train.optimizers.discriminator" in found[0], found
    assert "the exponential schedule needs 'decay_steps'" in found[0], found
