"""The core schema of a recipe (phase 1 of validation): top-level keys, ``train``, and the shape
of each plugin section (``plugin:`` plus parameters, which the plugin's ``Params`` check later)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from ganctl.engine.backends import BACKENDS
from ganctl.recipe.messages import NestedError
from ganctl.recipe.precision import Precision, check_precision_name
from ganctl.recipe.pruning import PruneConfig, check_window


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
        None, description="Feature extractor: a name or {plugin: NAME, ...}; null: the data's default "
                          "features (a classifier of the data, trained once and cached)."
    )


METRIC_CORE = ("every", "n", "features")
"""The keys of a metric section that are ganctl's, not the metric plugin's parameters."""


def _plugin_shorthand(value: Any) -> Any:
    return {"plugin": value} if isinstance(value, str) else value


ExportRef = Annotated[PluginRef, BeforeValidator(_plugin_shorthand)]
MetricItem = Annotated[MetricRef, BeforeValidator(_plugin_shorthand)]

_OPTIMIZER_ONLY = {"beta_1": {"adam"}, "beta_2": {"adam"}, "momentum": {"sgd", "rmsprop"}, "rho": {"rmsprop"}}

_SCHEDULE_KEYS = {
    "constant": ((), ()),
    "warmup": (("warmup_steps",), ()),
    "cosine": (("decay_steps",), ("warmup_steps", "final_fraction")),
    "exponential": (("decay_steps", "decay_rate"), ("warmup_steps",)),
}
"""Per schedule type: the keys it requires, and the ones it may take."""


class ScheduleConfig(_Strict):
    """How the learning rate changes with the optimizer's update count (its ``iterations``)."""

    type: Literal["constant", "warmup", "cosine", "exponential"] = Field(
        "constant",
        description=(
            "constant: the rate throughout; warmup: linear from 0 over warmup_steps, then constant; "
            "cosine: optional warm-up, then cosine decay to final_fraction of the rate over decay_steps; "
            "exponential: optional warm-up, then times decay_rate every decay_steps."
        ),
    )
    warmup_steps: int | None = Field(
        None, ge=1, description="Updates over which the rate rises linearly from 0 (warmup, cosine, exponential)."
    )
    decay_steps: int | None = Field(
        None, ge=1, description="cosine: updates of the decay (after the warm-up); exponential: its period."
    )
    final_fraction: float | None = Field(
        None, ge=0, le=1, description="cosine: the rate at the end, as a fraction of the rate (default 0)."
    )
    decay_rate: float | None = Field(
        None, gt=0, le=1, description="exponential: the factor applied every decay_steps updates."
    )

    @model_validator(mode="after")
    def _keys_fit_type(self) -> ScheduleConfig:
        required, optional = _SCHEDULE_KEYS[self.type]
        for key in ("warmup_steps", "decay_steps", "final_fraction", "decay_rate"):
            given = getattr(self, key) is not None
            if given and key not in required + optional:
                takers = sorted(t for t, (r, o) in _SCHEDULE_KEYS.items() if key in r + o)
                raise ValueError(
                    f"'{key}' applies to the {' and '.join(takers)} schedules, not to {self.type}; "
                    f"remove '{key}' or change 'schedule.type'"
                )
            if not given and key in required:
                example = {"warmup_steps": 500, "decay_steps": 10000, "decay_rate": 0.5}[key]
                raise ValueError(
                    f"the {self.type} schedule needs '{key}' (updates of this player's optimizer, "
                    f"e.g. {key}: {example}); add it to the schedule"
                )
        return self

    def to_dict(self) -> dict[str, Any]:
        """The keys that are set (so the dict validates again)."""
        return {k: v for k, v in self.model_dump(mode="json").items() if v is not None}



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
    schedule: ScheduleConfig = Field(
        default_factory=ScheduleConfig,
        description="Learning-rate schedule ({type: cosine, decay_steps: 10000}); default: constant.",
    )

    def to_dict(self) -> dict[str, Any]:
        """All settings that apply to this optimizer's type (so the dict validates again)."""
        out = {k: v for k, v in self.model_dump(mode="json").items()
               if self.type in _OPTIMIZER_ONLY.get(k, {self.type})}
        out.pop("schedule")
        if self.schedule.type != "constant":  # runs without a schedule keep their resolved recipe
            out["schedule"] = self.schedule.to_dict()
        return out

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


class DistributionConfig(_Strict):
    """Split each step's batch over several devices of one process (JAX only)."""

    devices: Literal["auto"] | StrictInt = Field(
        "auto", json_schema_extra={"minimum": 1},
        description="How many devices the batch is split over: auto (all of them) or a number.",
    )

    @field_validator("devices", mode="before")
    @classmethod
    def _device_count(cls, value: Any) -> Any:
        if value != "auto" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"devices is the number of devices the batch is split over, 1 or more, got {value!r}; "
                             "use a whole number such as 2, or auto for every device")
        return value


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
    prefetch: Literal["auto"] | StrictInt = Field(
        "auto", json_schema_extra={"minimum": 0, "maximum": 16},
        description=(
            "Prepare the next N steps' batches and latents in a background thread and start their copy to the "
            "device during the current step (0: off); auto: 2 on a GPU, 0 on CPUs. Results are the same."
        ),
    )
    steps_per_execution: Literal["auto"] | StrictInt = Field(
        "auto", json_schema_extra={"minimum": 1},
        description=(
            "Steps run per call into the backend (JAX, TensorFlow: k steps in one compiled function), to cut "
            "per-step overhead on small models; an epoch's last call takes what is left. auto: 4 where the steps "
            "compile into one function (JAX or TensorFlow on one device), 1 elsewhere. Same results, up to rounding."
        ),
    )
    sample_every: int = Field(1, ge=1, description="Write a sample grid every N epochs.")
    checkpoint_every: int = Field(1, ge=1, description="Write a checkpoint every N epochs.")
    keep_checkpoints: int = Field(3, ge=1, description="How many recent checkpoints to keep.")
    log_every: int = Field(50, ge=1, description="Log losses every N steps.")
    keep_best: KeepBest | None = Field(
        None, description="Keep the best checkpoint by a metric ({metric: fid, mode: min}); export uses it."
    )
    ema: float | None = Field(
        None, json_schema_extra={"exclusiveMinimum": 0, "exclusiveMaximum": 1},
        description=(
            "Keep an exponential moving average of the generator's weights with this momentum (e.g. 0.999; "
            "null: none); sample grids, metrics, generate, evaluate and export use it unless --weights raw."
        ),
    )
    precision: Precision = Field(
        "float32",
        description=(
            "Numeric precision of the networks (Keras dtype policy): float32; mixed_bfloat16 or mixed_float16 "
            "(compute in 16 bits, weights float32; float16 adds loss scaling); bfloat16 (weights too). "
            "Losses and last layers stay float32; generate, evaluate and exports are float32."
        ),
    )

    prune: PruneConfig | None = Field(
        None, description=(
            "Gradual magnitude pruning of players' Dense and Conv kernels ({sparsity: 0.8, players: [generator], "
            "begin_epoch: 0, end_epoch: 10, every: 100}); null: none."
        ),
    )
    distribution: DistributionConfig | None = Field(
        None, description=(
            "Split each step's batch over several devices, JAX only ({devices: auto} or {devices: 2}; null: one "
            "device). batch_size is the global batch; it must divide evenly over the devices."
        ),
    )

    @field_validator("prefetch")
    @classmethod
    def _prefetch_depth(cls, value: str | int) -> str | int:
        if value != "auto" and not 0 <= value <= 16:
            raise ValueError(f"prefetch is the number of steps prepared ahead, 0 to 16, got {value}; use 2 "
                             "(double buffering), 0 to prepare each step in the loop, or auto")
        return value

    @field_validator("steps_per_execution")
    @classmethod
    def _steps_per_execution(cls, value: str | int) -> str | int:
        if value != "auto" and value < 1:
            raise ValueError(f"steps_per_execution is the number of steps run per call, 1 or more, got {value}; "
                             "use auto (the default), 1 (one step per call) or more, e.g. 8, to fuse steps")
        return value

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_name(cls, value: Any) -> Any:
        return check_precision_name(value)

    @field_validator("ema")
    @classmethod
    def _ema_momentum(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value < 1:
            raise ValueError(
                f"the momentum of the moving average must be between 0 and 1, exclusive, got {value}; use a value "
                "close to 1 such as 0.999 (each step keeps that fraction of the average), or null for none"
            )
        return value

    @model_validator(mode="after")
    def _batch_over_devices(self) -> TrainConfig:
        devices = None if self.distribution is None else self.distribution.devices
        if isinstance(devices, int) and self.batch_size % devices:
            raise ValueError(
                f"batch_size {self.batch_size} does not split evenly over distribution.devices {devices}; "
                f"use a batch_size that is a multiple of {devices} (e.g. {max(1, self.batch_size // devices) * devices})"
            )
        return self

    @model_validator(mode="after")
    def _prune_within_run(self) -> TrainConfig:
        if self.prune is not None:
            try:
                check_window(self.prune, self.epochs)
            except ValueError as exc:  # pointed at train.prune.end_epoch
                line = {"type": "value_error", "loc": ("end_epoch",), "input": self.prune.end_epoch, "ctx": {"error": exc}}
                raise NestedError(("prune",), ValidationError.from_exception_data("PruneConfig", [line])) from None
        return self

    @model_validator(mode="after")
    def _check_overrides(self) -> TrainConfig:
        base = self.optimizer.model_dump(exclude_unset=True)
        for player, override in self.optimizers.items():
            try:
                OptimizerConfig.model_validate({**base, **override})
            except ValidationError as exc:
                raise NestedError(("optimizers", player), exc) from None
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
        if self.ema is None:  # runs without an average keep their resolved recipe
            out.pop("ema")
        if self.prune is None:  # and so do runs that prune nothing
            out.pop("prune")
        if self.precision == "float32":  # and so do runs in full precision
            out.pop("precision")
        if self.distribution is None:  # and so do runs on one device
            out.pop("distribution")
        if self.prefetch == "auto":  # and so do runs that leave feeding as it is
            out.pop("prefetch")
        if self.steps_per_execution == "auto":  # and so do runs that leave it to ganctl
            out.pop("steps_per_execution")
        return out


class InitConfig(_Strict):
    """Start a new run from another run's weights (fine-tuning)."""

    from_: str = Field(
        alias="from", min_length=1,
        description="The run directory whose checkpoint gives the starting weights (any backend).",
    )
    players: list[str] | None = Field(
        None, min_length=1, description="The players whose weights are copied; null: every player."
    )
    checkpoint: Literal["best", "latest"] = Field(
        "latest", description="latest: the run's newest checkpoint; best: the one train.keep_best kept."
    )
    optimizer: bool = Field(
        False, description="Copy the players' optimizer state too (its update count included); false: fresh."
    )

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


LayerPatterns = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


class RecipeModel(_Strict):
    """The top level of a recipe."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        max_length=100,
        description="Run name; used in the run directory's name.",
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed of every random choice.")
    backend: Literal[BACKENDS] | None = Field(  # type: ignore[valid-type]  # the backend names, from one place
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
    init: InitConfig | None = Field(
        None, description="Start from another run's weights: {from: RUN_DIR, players, checkpoint, optimizer}."
    )
    freeze: dict[str, LayerPatterns] = Field(
        default_factory=dict,
        description="Layers kept fixed, per player: {generator: [g_project*, ...]} (layer-name glob patterns).",
    )
