"""Reading and validating a recipe into a :class:`Recipe`.

Validation has two phases, both reported together:

1. the core schema (:class:`~ganctl.recipe.schema.RecipeModel`): top-level keys, ``train``, and
   the shape of each plugin section (``plugin:`` plus parameters);
2. each plugin section against the ``Params`` of the plugin it names, plus cross-field checks
   (e.g. per-player optimizers must name players of the model).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ganctl.api import ClassifierModel, Params
from ganctl.errors import RecipeError
from ganctl.plugins import SINGULAR, PluginHost, suggest, unknown_name_message
from ganctl.recipe.messages import Problem, flatten, format_error, kind_of, problem_at, value_at
from ganctl.recipe.overrides import apply_overrides
from ganctl.recipe.schema import METRIC_CORE, InitConfig, RecipeModel, TrainConfig
from ganctl.recipe.yamlio import Loc, Positions, YamlError, parse, read_text


@dataclass(frozen=True)
class Section:
    """A validated plugin section: the plugin's name, its validated Params, and core keys."""

    plugin: str
    params: Params
    every: int | None = None
    n: int | None = None
    features: str | dict[str, Any] | None = None

    def to_dict(self, core: Sequence[str] = ()) -> dict[str, Any]:
        out: dict[str, Any] = {"plugin": self.plugin}
        for key in core:
            out[key] = getattr(self, key)
        out.update(self.params.model_dump(mode="json"))
        return out


@dataclass(frozen=True)
class Recipe:
    """A fully validated recipe, defaults filled."""

    name: str
    seed: int
    backend: str | None
    output: str
    data: Section
    model: Section
    train: TrainConfig
    metrics: tuple[Section, ...]
    export: tuple[Section, ...]
    source: str = "<recipe>"
    init: InitConfig | None = None
    freeze: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe as plain data; it validates again to the same recipe."""
        return {
            "name": self.name,
            "seed": self.seed,
            "backend": self.backend,
            "output": self.output,
            "data": self.data.to_dict(),
            "model": self.model.to_dict(),
            "train": self.train.to_dict(),
            "metrics": [m.to_dict(core=METRIC_CORE) for m in self.metrics],
            "export": [e.to_dict() for e in self.export],
            # fine-tuning keys only where set: other runs keep their resolved recipe (and its hash)
            **({"init": self.init.to_dict()} if self.init is not None else {}),
            **({"freeze": {p: list(v) for p, v in self.freeze.items()}} if self.freeze else {}),
        }


def load_recipe(path: str | Path, host: PluginHost, overrides: Sequence[str] = ()) -> Recipe:
    """Read, override and validate the recipe at ``path``. Raises RecipeError."""
    source = str(path)
    positions = Positions()
    try:
        raw = parse(read_text(Path(path)), positions)
    except YamlError as exc:
        raise RecipeError([
            problem_at(source, (exc.line, exc.column) if exc.line else None, None, exc.message).text
        ]) from None
    if raw is None:
        raise RecipeError([
            f"{source}: the recipe is empty. A recipe needs at least `name`, `data` and `model`; "
            "see recipes/quickstart.yaml for a complete example."
        ])
    if not isinstance(raw, dict):
        raise RecipeError([
            f"{source}: the top level of a recipe must be a mapping of keys (name, data, model, "
            f"train, ...), but it is {kind_of(raw)}."
        ])
    apply_overrides(raw, overrides, positions, source)
    return validate(raw, host, source=source, positions=positions)


def validate(raw: dict[str, Any], host: PluginHost, *, source: str = "<recipe>", positions: Positions | None = None) -> Recipe:
    """Validate already-parsed recipe data. Raises RecipeError listing every problem."""
    positions = positions or Positions()
    problems: list[Problem] = []

    def report(error: ValidationError, prefix: Loc, model: type[BaseModel]) -> None:
        for item in flatten(error, prefix):
            problems.append(format_error(item, source, positions, model, prefix, raw, host))

    core: RecipeModel | None = None
    try:
        core = RecipeModel.model_validate(raw)
    except ValidationError as exc:
        report(exc, (), RecipeModel)

    sections: dict[Loc, Section] = {}
    for loc, kind, core_keys in _plugin_sections(raw):
        section = _check_section(value_at(raw, loc), kind, loc, core_keys, host, source, positions, raw, problems)
        if section is not None:
            sections[loc] = section

    if core is not None and ("model",) in sections:
        players = getattr(host.get("models", core.model.plugin).factory, "players", None)
        if players is not None:
            named = [(("train", "optimizers", p), p) for p in core.train.optimizers]
            named += [(("freeze", p), p) for p in core.freeze]
            if core.init is not None and core.init.players is not None:
                named += [(("init", "players", i), p) for i, p in enumerate(core.init.players)]
            if core.train.prune is not None:
                named += [(("train", "prune", "players", i), p) for i, p in enumerate(core.train.prune.players)]
            for loc, player in named:
                if player not in players:
                    hint = suggest(player, players)
                    fix = f" Did you mean '{hint}'?" if hint else ""
                    problems.append(problem_at(
                        source, positions.find(loc), loc,
                        f"model '{core.model.plugin}' has no player '{player}'.{fix} "
                        f"Its players are: {', '.join(players)}.",
                    ))
    if core is not None and core.train.keep_best is not None:
        names = [m.plugin for m in core.metrics]
        wanted = core.train.keep_best.metric
        if wanted not in names:
            loc = ("train", "keep_best", "metric")
            hint = suggest(wanted, names)
            problems.append(problem_at(
                source, positions.find(loc), loc,
                f"'{wanted}' is not one of the recipe's metrics ({', '.join(names) or 'none'})."
                + (f" Did you mean '{hint}'?" if hint else " Add it to metrics:, with every: N to track it during training."),
            ))
    if core is not None and core.train.ema is not None and ("model",) in sections:
        factory = host.get("models", core.model.plugin).factory
        if isinstance(factory, type) and issubclass(factory, ClassifierModel):
            loc = ("train", "ema")
            problems.append(problem_at(
                source, positions.find(loc), loc,
                f"model '{core.model.plugin}' is a classifier: it has no generator whose weights could be "
                "averaged. Remove train.ema (it is for generative models such as gan and dcgan).",
            ))
    if problems:
        raise RecipeError([p.text for p in sorted(problems, key=lambda p: p.line)])
    assert core is not None
    return Recipe(
        name=core.name,
        seed=core.seed,
        backend=core.backend,
        output=core.output,
        data=sections[("data",)],
        model=sections[("model",)],
        train=core.train,
        metrics=tuple(sections[("metrics", i)] for i in range(len(core.metrics))),
        export=tuple(sections[("export", i)] for i in range(len(core.export))),
        source=source,
        init=core.init,
        freeze={p: list(v) for p, v in core.freeze.items()},
    )


def validate_section(section: Any, kind: str, host: PluginHost, *, source: str) -> Section:
    """Validate one plugin section (``{plugin: NAME, ...params}``) on its own."""
    problems: list[Problem] = []
    result = _check_section(section, kind, (), (), host, source, Positions(), section, problems)
    if problems or result is None:
        raise RecipeError([p.text for p in problems] or [f"{source}: expected a mapping with a 'plugin' key."])
    return result


def _check_section(
    section: Any, kind: str, loc: Loc, core_keys: tuple[str, ...], host: PluginHost,
    source: str, positions: Positions, raw: Any, problems: list[Problem],
) -> Section | None:
    """Validate a plugin section against its plugin's Params; append problems, return the Section."""
    if isinstance(section, str) and kind in ("exporters", "metrics"):
        section = {"plugin": section}
    if not isinstance(section, dict) or not isinstance(section.get("plugin"), str):
        return None  # the core schema reports it
    name = section["plugin"]
    if name not in host.components[kind]:
        message = unknown_name_message(SINGULAR[kind], name, host.names(kind))
        problems.append(problem_at(source, positions.find(loc + ("plugin",)), loc + ("plugin",), message))
        return None
    params_model = host.get(kind, name).params_model
    params = {k: v for k, v in section.items() if k != "plugin" and k not in core_keys}
    try:
        return Section(name, params_model.model_validate(params), section.get("every"), section.get("n"),
                       section.get("features"))
    except ValidationError as exc:
        for item in flatten(exc, loc):
            problems.append(format_error(item, source, positions, params_model, loc, raw, host))
        return None


def _plugin_sections(raw: dict[str, Any]) -> Iterable[tuple[Loc, str, tuple[str, ...]]]:
    yield ("data",), "datasets", ()
    yield ("model",), "models", ()
    for key, kind, core in (("metrics", "metrics", METRIC_CORE), ("export", "exporters", ())):
        items = raw.get(key)
        if isinstance(items, list):
            for index in range(len(items)):
                yield (key, index), kind, core
