"""Recipes: the YAML file that declares a run, its schema, and how it is validated.

Validation has two phases, both reported together:

1. the core schema (:class:`RecipeModel`): top-level keys, ``train``, and the shape of each
   plugin section (``plugin:`` plus parameters);
2. each plugin section against the ``Params`` of the plugin it names, plus cross-field checks
   (e.g. per-player optimizers must name players of the model).

Every problem is reported as ``FILE:LINE:COL: dotted.key: what is wrong. How to fix it.``
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from ganctl.api import Params
from ganctl.errors import RecipeError
from ganctl.plugins import SINGULAR, PluginHost, suggest, unknown_name_message
from ganctl.yamlio import Loc, Positions, YamlError, parse, read_text

BACKENDS = ("jax", "tensorflow", "torch")


# --------------------------------------------------------------------------------------------
# Core schema
# --------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PluginRef(BaseModel):
    """A plugin section: ``plugin: NAME`` and that plugin's parameters."""

    model_config = ConfigDict(extra="allow", frozen=True)
    plugin: str = Field(description="Name of the plugin (see `ganctl plugins`).")

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class MetricRef(PluginRef):
    """A metric section: the plugin, how often it runs, and its parameters."""

    every: int | None = Field(
        None, ge=1, description="Compute every N epochs during training; null: only at the end."
    )
    n: int | None = Field(None, ge=2, description="Real and generated images each; null: 2000.")
    features: str | dict[str, Any] | None = Field(
        None, description="Feature extractor: a name or {plugin: NAME, ...}; null: pixels."
    )


METRIC_CORE = ("every", "n", "features")


def _plugin_shorthand(value: Any) -> Any:
    return {"plugin": value} if isinstance(value, str) else value


ExportRef = Annotated[PluginRef, BeforeValidator(_plugin_shorthand)]
MetricItem = Annotated[MetricRef, BeforeValidator(_plugin_shorthand)]

_OPTIMIZER_ONLY = {"beta_1": {"adam"}, "beta_2": {"adam"}, "momentum": {"sgd", "rmsprop"}, "rho": {"rmsprop"}}


class OptimizerConfig(_Strict):
    """One optimizer. ``optimizer`` applies to every player; ``optimizers.PLAYER`` overrides keys."""

    type: Literal["adam", "sgd", "rmsprop"] = Field("adam", description="Algorithm.")
    learning_rate: float = Field(2e-4, gt=0, le=10, description="Step size.")
    beta_1: float = Field(0.5, ge=0, lt=1, description="Adam: decay of the first moment.")
    beta_2: float = Field(0.999, ge=0, lt=1, description="Adam: decay of the second moment.")
    momentum: float = Field(0.0, ge=0, lt=1, description="SGD / RMSprop momentum.")
    rho: float = Field(0.9, gt=0, lt=1, description="RMSprop: decay of the squared-gradient average.")
    weight_decay: float = Field(0.0, ge=0, description="Decoupled weight decay (0: none).")
    clipnorm: float | None = Field(None, gt=0, description="Clip each gradient to this norm.")

    def to_dict(self) -> dict[str, Any]:
        """All settings that apply to this optimizer's type (so the dict validates again)."""
        return {k: v for k, v in self.model_dump(mode="json").items()
                if self.type in _OPTIMIZER_ONLY.get(k, {self.type})}

    @model_validator(mode="after")
    def _keys_fit_type(self) -> OptimizerConfig:
        for key, kinds in _OPTIMIZER_ONLY.items():
            if key in self.model_fields_set and self.type not in kinds:
                raise ValueError(
                    f"'{key}' applies to {' and '.join(sorted(kinds))}, not to {self.type}; "
                    f"remove '{key}' or change 'type'"
                )
        return self


class KeepBest(_Strict):
    """Keep the checkpoint with the best value of one of the recipe's metrics."""

    metric: str = Field(description="A metric plugin of the recipe's metrics: list (its headline value).")
    mode: Literal["min", "max"] = Field("min", description="min: lower is better (fid); max: higher is better.")


class TrainConfig(_Strict):
    """How long and how to train, and how often to write samples and checkpoints."""

    epochs: int = Field(10, ge=1, le=1_000_000, description="Passes over the dataset.")
    batch_size: int = Field(64, ge=1, le=1_000_000, description="Examples per step.")
    steps_per_epoch: int | None = Field(
        None, ge=1, description="Steps per epoch; null: one full pass over the data."
    )
    optimizer: OptimizerConfig = Field(
        default_factory=OptimizerConfig, description="Optimizer of every player."
    )
    optimizers: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per-player overrides of `optimizer`, keyed by player (e.g. discriminator).",
    )
    jit: Literal["auto"] | bool = Field(
        "auto", description="Compile steps: auto picks the fastest per backend and device."
    )
    sample_every: int = Field(1, ge=1, description="Write a sample grid every N epochs.")
    checkpoint_every: int = Field(1, ge=1, description="Write a checkpoint every N epochs.")
    keep_checkpoints: int = Field(3, ge=1, description="How many recent checkpoints to keep.")
    log_every: int = Field(50, ge=1, description="Log losses every N steps.")
    keep_best: KeepBest | None = Field(
        None, description="Keep the best checkpoint by a metric ({metric: fid, mode: min}); export uses it."
    )

    @model_validator(mode="after")
    def _check_overrides(self) -> TrainConfig:
        base = self.optimizer.model_dump(exclude_unset=True)
        for player, override in self.optimizers.items():
            try:
                OptimizerConfig.model_validate({**base, **override})
            except ValidationError as exc:
                raise _NestedError(("optimizers", player), exc) from None
        return self

    def optimizer_for(self, player: str) -> OptimizerConfig:
        """The resolved optimizer of ``player``: ``optimizer`` with its override applied."""
        base = self.optimizer.model_dump(exclude_unset=True)
        return OptimizerConfig.model_validate({**base, **self.optimizers.get(player, {})})

    def to_dict(self) -> dict[str, Any]:
        """Every setting, with each player's override fully resolved."""
        out = self.model_dump(mode="json")
        out["optimizer"] = self.optimizer.to_dict()
        out["optimizers"] = {p: self.optimizer_for(p).to_dict() for p in self.optimizers}
        return out


class RecipeModel(_Strict):
    """The top level of a recipe."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        max_length=100,
        description="Run name; used in the run directory's name.",
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed of every random choice.")
    backend: Literal["jax", "tensorflow", "torch"] | None = Field(
        None, description="Keras backend; overridden by --backend, defaults to KERAS_BACKEND or jax."
    )
    output: str = Field("runs", min_length=1, description="Folder that holds run directories.")
    data: PluginRef = Field(description="The dataset plugin and its parameters.")
    model: PluginRef = Field(description="The model plugin and its parameters.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Training settings.")
    metrics: list[MetricItem] = Field(
        default_factory=list, description="Metrics to compute: names, or {plugin: NAME, every: N, n: N, ...}."
    )
    export: list[ExportRef] = Field(
        default_factory=list, description="Exports made at the end of training (e.g. [onnx])."
    )


class _NestedError(ValueError):
    """A ValidationError of a nested model, raised from a validator, with its location kept."""

    def __init__(self, loc: Loc, error: ValidationError) -> None:
        super().__init__(str(error))
        self.loc, self.error = loc, error


# --------------------------------------------------------------------------------------------
# The resolved recipe
# --------------------------------------------------------------------------------------------


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
        }


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_recipe(path: str | Path, host: PluginHost, overrides: Sequence[str] = ()) -> Recipe:
    """Read, override and validate the recipe at ``path``. Raises RecipeError."""
    source = str(path)
    positions = Positions()
    try:
        raw = parse(read_text(Path(path)), positions)
    except YamlError as exc:
        raise RecipeError([_at(source, (exc.line, exc.column) if exc.line else None, None, exc.message).text]) from None
    if raw is None:
        raise RecipeError([
            f"{source}: the recipe is empty. A recipe needs at least `name`, `data` and `model`; "
            "see recipes/quickstart.yaml for a complete example."
        ])
    if not isinstance(raw, dict):
        raise RecipeError([
            f"{source}: the top level of a recipe must be a mapping of keys (name, data, model, "
            f"train, ...), but it is {_kind_of(raw)}."
        ])
    apply_overrides(raw, overrides, positions, source)
    return validate(raw, host, source=source, positions=positions)


def validate(raw: dict[str, Any], host: PluginHost, *, source: str = "<recipe>", positions: Positions | None = None) -> Recipe:
    """Validate already-parsed recipe data. Raises RecipeError listing every problem."""
    positions = positions or Positions()
    problems: list[Problem] = []

    def report(error: ValidationError, prefix: Loc, model: type[BaseModel]) -> None:
        for item in _flatten(error, prefix):
            problems.append(_format_error(item, source, positions, model, prefix, raw, host))

    core: RecipeModel | None = None
    try:
        core = RecipeModel.model_validate(raw)
    except ValidationError as exc:
        report(exc, (), RecipeModel)

    sections: dict[Loc, Section] = {}
    for loc, kind, core_keys in _plugin_sections(raw):
        section = _check_section(_get(raw, loc), kind, loc, core_keys, host, source, positions, raw, problems)
        if section is not None:
            sections[loc] = section

    if core is not None and ("model",) in sections:
        players = getattr(host.get("models", core.model.plugin).factory, "players", None)
        if players is not None:
            for player in core.train.optimizers:
                if player not in players:
                    loc = ("train", "optimizers", player)
                    hint = suggest(player, players)
                    fix = f" Did you mean '{hint}'?" if hint else ""
                    problems.append(_at(
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
            problems.append(_at(
                source, positions.find(loc), loc,
                f"'{wanted}' is not one of the recipe's metrics ({', '.join(names) or 'none'})."
                + (f" Did you mean '{hint}'?" if hint else " Add it to metrics:, with every: N to track it during training."),
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
        problems.append(_at(source, positions.find(loc + ("plugin",)), loc + ("plugin",), message))
        return None
    params_model = host.get(kind, name).params_model
    params = {k: v for k, v in section.items() if k != "plugin" and k not in core_keys}
    try:
        return Section(name, params_model.model_validate(params), section.get("every"), section.get("n"),
                       section.get("features"))
    except ValidationError as exc:
        for item in _flatten(exc, loc):
            problems.append(_format_error(item, source, positions, params_model, loc, raw, host))
        return None


def _plugin_sections(raw: dict[str, Any]) -> Iterable[tuple[Loc, str, tuple[str, ...]]]:
    yield ("data",), "datasets", ()
    yield ("model",), "models", ()
    for key, kind, core in (("metrics", "metrics", METRIC_CORE), ("export", "exporters", ())):
        items = raw.get(key)
        if isinstance(items, list):
            for index in range(len(items)):
                yield (key, index), kind, core


def _get(data: Any, loc: Loc) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


# --------------------------------------------------------------------------------------------
# --set overrides
# --------------------------------------------------------------------------------------------

_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str], positions: Positions, source: str) -> None:
    """Apply ``key.path=value`` overrides in place; values are parsed as YAML."""
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not key.strip() or not all(_SEGMENT.match(p) for p in parts):
            raise RecipeError([
                f"--set {item!r}: expected KEY.PATH=VALUE with a dotted key of letters, digits, "
                "'_' or '-' (e.g. --set train.epochs=5 or --set data.plugin=idx)."
            ])
        label = f"--set {item}"
        try:
            value = parse(text) if text.strip() else ""
        except YamlError as exc:
            raise RecipeError([f"{label}: the value is not valid YAML: {exc.message}."]) from None
        target: Any = raw
        path: list[str | int] = []
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(target, list):
                if not part.isdigit() or int(part) > len(target):
                    raise RecipeError([
                        f"{label}: {'.'.join(map(str, path)) or 'the recipe'} is a list of "
                        f"{len(target)} items; use an index from 0 to {len(target)} (to append)."
                    ])
                index = int(part)
                if index == len(target):
                    target.append({} if not last else value)
                elif last:
                    target[index] = value
                path.append(index)
            elif isinstance(target, dict):
                if last:
                    target[part] = value
                elif target.get(part) is None:
                    target[part] = {}
                path.append(part)
            else:
                raise RecipeError([
                    f"{label}: cannot set '{part}' inside {'.'.join(map(str, path))}, "
                    f"which is {_kind_of(target)}, not a mapping or list."
                ])
            positions.places[tuple(path)] = label
            if not last:
                target = target[path[-1]]


# --------------------------------------------------------------------------------------------
# Error messages
# --------------------------------------------------------------------------------------------


def _flatten(error: ValidationError, prefix: Loc) -> list[dict[str, Any]]:
    """Pydantic errors with locations relative to the recipe root; nested validator errors expanded."""
    items: list[dict[str, Any]] = []
    for item in error.errors():
        nested = (item.get("ctx") or {}).get("error")
        loc = prefix + tuple(item["loc"])
        if isinstance(nested, _NestedError):
            items.extend(_flatten(nested.error, loc + nested.loc))
        else:
            items.append({**item, "loc": loc})
    return items


def dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class Problem(NamedTuple):
    """One formatted problem and the line it points at (0: none), for ordering."""

    line: int
    text: str


def _at(source: str, place: tuple[int, int] | str | None, loc: Loc | None, message: str) -> Problem:
    if isinstance(place, tuple):
        where = f"{source}:{place[0]}:{place[1]}"
    elif isinstance(place, str):
        where = f"{source} ({place})"
    else:
        where = source
    text = f"{where}: {dotted(loc)}: {message}" if loc else f"{where}: {message}"
    return Problem(place[0] if isinstance(place, tuple) else 0, text)


_SECTION_KINDS = {"data": "datasets", "model": "models", "metrics": "metrics", "export": "exporters"}


def _format_error(
    item: dict[str, Any], source: str, positions: Positions, model: type[BaseModel], prefix: Loc, raw: Any,
    host: PluginHost,
) -> Problem:
    loc: Loc = item["loc"]
    kind = item["type"]
    relative = loc[len(prefix):]
    if kind == "extra_forbidden":
        valid = _valid_keys(model, relative[:-1], _get(raw, loc[:-1]))
        hint = suggest(str(loc[-1]), valid)
        message = f"unknown key '{loc[-1]}'."
        if hint:
            message += f" Did you mean '{hint}'?"
        message += f" Valid keys here: {', '.join(valid)}." if valid else " No keys are accepted here."
    elif kind == "missing":
        message = f"required key '{loc[-1]}' is missing; add it"
        if len(loc) > 1:
            message += f" under '{dotted(loc[:-1])}'"
        message += "."
        kind = _SECTION_KINDS.get(str(loc[0]))
        if loc[-1] == "plugin" and kind and len(loc) <= 3:
            names = host.names(kind)
            message += f" Installed {SINGULAR[kind]} plugins: {', '.join(names) or 'none'}."
    elif kind == "literal_error":
        choices = re.findall(r"'([^']*)'", item["ctx"].get("expected", ""))
        hint = suggest(str(item.get("input")), choices)
        message = f"{item['msg']}, got {_show(item.get('input'))}."
        if hint:
            message += f" Did you mean '{hint}'?"
    elif kind in ("model_type", "dict_type", "model_attributes_type"):
        message = f"expected a mapping of keys, got {_kind_of(item.get('input'))}."
    elif kind == "value_error":
        message = item["msg"].removeprefix("Value error, ").rstrip(".") + "."
    elif kind == "string_pattern_mismatch" and relative == ("name",):
        message = (f"{_show(item.get('input'))} is not a valid run name: use letters, digits, "
                   "'.', '_' or '-', starting with a letter or digit.")
    else:
        message = f"{item['msg']}, got {_show(item.get('input'))}."
    return _at(source, positions.find(loc), loc, message)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind_of(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "text", bool: "true/false", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _valid_keys(model: type[BaseModel], loc: Loc, value: Any) -> list[str]:
    """The field names of the model found at ``loc`` below ``model``."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            field = current.model_fields.get(part)
            if field is None:
                return []
            current = field.annotation
        elif get_origin(current) in (list, tuple) and isinstance(part, int):
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is types.UnionType:
            options = [a for a in get_args(annotation) if a is not type(None)]
            models = [a for a in options if isinstance(a, type) and issubclass(a, BaseModel)]
            annotation = models[0] if models else options[0]
        else:
            return annotation


# --------------------------------------------------------------------------------------------
# JSON Schema
# --------------------------------------------------------------------------------------------


def json_schema(host: PluginHost) -> dict[str, Any]:
    """A JSON Schema of recipes: the core keys plus every installed plugin's parameters."""

    def union(kind: str, base: type[BaseModel]) -> Any:
        variants = []
        for name in host.names(kind):
            params = host.get(kind, name).params_model
            fields: dict[str, Any] = {"plugin": (Literal[name], Field(description=f"{SINGULAR[kind]} plugin"))}
            if base is MetricRef:
                for key in METRIC_CORE:
                    fields[key] = (MetricRef.model_fields[key].annotation, MetricRef.model_fields[key])
            model = create_model(f"{kind}.{name}", __base__=params, **fields)
            model.__doc__ = host.get(kind, name).description or None
            variants.append(model)
        if not variants:
            return base
        if len(variants) == 1:
            return variants[0]
        return Annotated[Union[tuple(variants)], Field(discriminator="plugin")]  # noqa: UP007

    def or_name(kind: str, sections: Any) -> Any:
        names = host.names(kind)
        return Union[Literal[tuple(names)], sections] if names else Union[str, sections]  # noqa: UP007

    export_item = or_name("exporters", union("exporters", PluginRef))
    metric_item = or_name("metrics", union("metrics", MetricRef))
    schema_model = create_model(
        "Recipe",
        __base__=RecipeModel,
        data=(union("datasets", PluginRef), RecipeModel.model_fields["data"]),
        model=(union("models", PluginRef), RecipeModel.model_fields["model"]),
        metrics=(list[metric_item], RecipeModel.model_fields["metrics"]),
        export=(list[export_item], RecipeModel.model_fields["export"]),
    )
    schema = schema_model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ganctl recipe"
    return schema
