"""Exporting a trained generator (or classifier): run an exporter plugin, check the result against Keras, move it into place.

Every export, whatever its format, goes through the same steps:

1. the exporter writes into a scratch folder beside the destination;
2. the written file is run (``exporter.load``) on fixed inputs at batch sizes 1, 7 and 64 —
   latents for a generator, images for a classifier — and compared with the Keras network in
   inference mode; the largest absolute difference must be at most ``atol``;
3. only then is it moved to its destination, replacing an older export in one rename, and
   recorded in the run's ``run.json`` under ``exports``.

A failed export leaves the destination (and any earlier export there) untouched.

A model of a table (API 1.7) exports the same way, through exporters whose ``data_kinds``
include ``"table"`` (ganctl's: ``onnx``): its generator's rows are checked against Keras, and
its :class:`ganctl.api.TableSpec` travels in the metadata (``ganctl.table``, contract format 2),
so that the file alone decodes into the table's columns (docs/export.md#models-of-tables).

A quantised export (docs/export.md) is written and checked in float32 first, then quantised by
the exporter and checked for quality instead: its images against Keras's, and the change in FID
and C2ST (a ``judge`` from :mod:`ganctl.evaluation.quantised`); FID may rise by ``max_fid_increase``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganctl import __version__, api
from ganctl.errors import ConfigError, GanctlError, PluginError
from ganctl.fsutil import replace_path, sha256, why_unwritable
from ganctl.inference.contract import FORMAT, TABLE_FORMAT
from ganctl.plugins import PluginHost
from ganctl.recipe.load import Section, validate_section
from ganctl.runs.rundir import RunDir, export_path, recipe_hash
from ganctl.sampling import inputs
from ganctl.session.assemble import Session

PARITY_BATCHES = (1, 7, 64)
PARITY_SEED = 20_241_129
DEFAULT_ATOL = 1e-4
DEFAULT_MAX_FID_INCREASE = 1.0  # what FID a quantised export may add to float32's (docs/export.md says why)

Judge = Callable[[Callable[[np.ndarray, np.ndarray | None], np.ndarray]], dict[str, tuple[float, float]]]
"""Scores a draw function ``(z, labels) -> images``: ``{metric: (float32's, its)}``, FID first."""


@dataclass(frozen=True)
class Quality:
    """What a quantised export gives up against the float32 generator."""

    mode: str
    max_abs_diff: float
    mean_abs_diff: float
    metrics: dict[str, tuple[float, float]]
    max_fid_increase: float

    @property
    def fid_increase(self) -> float:
        """The rise of the first metric (FID), the one ``max_fid_increase`` limits."""
        before, after = next(iter(self.metrics.values()))
        return after - before

    def to_dict(self) -> dict[str, Any]:
        return {"quantization": self.mode, "max_abs_diff": self.max_abs_diff, "mean_abs_diff": self.mean_abs_diff,
                "metrics": {k: {"float32": a, "quantized": b} for k, (a, b) in self.metrics.items()},
                "max_fid_increase": self.max_fid_increase}


@dataclass(frozen=True)
class Exported:
    """What an export wrote and how closely it matches Keras."""

    format: str
    path: Path
    max_abs_diff: float
    diffs: dict[int, float]
    atol: float
    seconds: float
    quality: Quality | None = None
    """For a quantised export: its quality check (the parity fields are the float32 file's)."""

    @property
    def key(self) -> str:
        """Its entry in run.json's ``exports``: the format, and the quantisation when there is one."""
        return self.format if self.quality is None else f"{self.format}-{self.quality.mode}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "max_abs_diff": self.max_abs_diff, "atol": self.atol,
                "batch_sizes": list(self.diffs), "seconds": round(self.seconds, 2),
                **({"quality": self.quality.to_dict()} if self.quality else {})}


def metadata(session: Session, step: int) -> dict[str, str]:
    """The ``ganctl.*`` metadata every export carries (docs/export.md): for a model of a table,
    its ``TableSpec`` (``ganctl.table``, as run.json's ``data_spec``) instead of the images' keys."""
    import json

    spec = session.spec
    labelled = session.model.conditional or session.model.kind == "classifier"
    table = isinstance(spec, api.TableSpec)
    data = {"ganctl.table": json.dumps(spec.to_dict())} if table else {
        "ganctl.value_range": json.dumps([float(v) for v in spec.value_range]),
        "ganctl.layout": spec.layout,
        "ganctl.data_shape": json.dumps(list(spec.shape)),
    }
    return {
        "ganctl.format": TABLE_FORMAT if table else FORMAT,
        "ganctl.version": __version__,
        "ganctl.kind": session.model.kind,
        "ganctl.model": session.recipe.model.plugin,
        "ganctl.latent_dim": str(session.model.latent_dim),
        "ganctl.num_classes": str(spec.num_classes if labelled else 0),
        "ganctl.class_names": json.dumps(list(spec.class_names) if labelled else []),
        **data,
        "ganctl.recipe_hash": recipe_hash(session.recipe.to_dict()),
        "ganctl.data": json.dumps(session.recipe.data.to_dict()),
        "ganctl.backend": session.backend,
        "ganctl.step": str(step),
        **({"ganctl.weights": session.engine.weights} if session.engine.weights else {}),
    }


def export_source(session: Session, step: int) -> api.ExportSource:
    """What an exporter is given for ``session``'s network (the weights of ``step``): the network,
    called once, its data spec and the ``ganctl.*`` metadata."""
    return api.ExportSource(
        generator=_called_network(session), spec=session.spec, latent_dim=session.model.latent_dim,
        conditional=session.model.conditional, backend=session.backend, metadata=metadata(session, step),
        kind=session.model.kind,
    )


def make_exporter(host: PluginHost, section: Section | dict[str, Any] | str, *, source: str) -> tuple[str, api.Exporter]:
    """The exporter for a recipe section, a ``{plugin: NAME, ...}`` mapping or a bare name."""
    if not isinstance(section, Section):
        section = validate_section(section, "exporters", host, source=source)
    return section.plugin, host.build("exporters", section.plugin, section.params, expected=api.Exporter)


def onnx_exporter(host: PluginHost) -> str:
    """The exporter that writes ONNX files (``suffix = ".onnx"``, the format ganctl's inference
    runs): what ``--onnx`` and ``ganctl bench`` use. Among several, a default one first, then the
    first registered."""
    found = host.declaring("exporters", "suffix", ".onnx")
    if not found:
        raise PluginError("no installed exporter plugin writes ONNX files (none has suffix = '.onnx'); see "
                          "`ganctl export --list` and `ganctl plugins`.")
    defaults = host.declaring("exporters", "default")
    return min(found, key=lambda name: name not in defaults)


def export(session: Session, run: RunDir, step: int, name: str, exporter: api.Exporter, *,
           out: Path | None = None, atol: float = DEFAULT_ATOL, judge: Judge | None = None,
           max_fid_increase: float = DEFAULT_MAX_FID_INCREASE) -> Exported:
    """Export ``session``'s generator (weights of ``step``) with ``exporter``; see the module
    docstring. ``judge`` scores a quantised export (required when ``exporter`` quantises)."""
    reason = unavailable(session, exporter) or cannot_quantize(session, name, exporter)
    if reason:
        raise ConfigError(f"the {name} exporter cannot run here: {reason}.")
    if not atol > 0:
        raise ConfigError(f"--atol must be positive, got {atol}.")
    if not max_fid_increase >= 0:
        raise ConfigError(f"--max-fid-increase must be 0 or more, got {max_fid_increase}.")
    kind, mode = session.model.kind, exporter.quantization
    if mode and judge is None:  # every caller that exports with a quantising exporter gives one
        raise GanctlError(f"a {mode} export needs its quality check (a judge); this is a bug in ganctl.")
    destination = Path(out) if out is not None else export_path(run.path, kind, exporter.suffix)
    if mode and out is None:
        destination = destination.with_name(f"{destination.stem}-{mode}{destination.suffix}")
    if exporter.suffix and destination.suffix.lower() != exporter.suffix:
        raise ConfigError(f"--out {destination}: a {name} export must end in {exporter.suffix}.")
    _make_parent(destination)
    began = time.perf_counter()
    source = export_source(session, step)
    scratch = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    quality = None
    try:
        written = scratch / destination.name
        first = scratch / f"float32-{destination.name}" if mode else written
        try:
            exporter.export(source, first)
        except GanctlError:
            raise
        except Exception as exc:  # a converter's own failure: a clear message, not a traceback
            raise GanctlError(
                f"the {name} exporter failed on this model ({type(exc).__name__}: {_first_line(exc)}). "
                f"Nothing was written to {destination}. Try another --backend or format (ganctl export --list)."
            ) from None
        if not first.exists():
            raise GanctlError(f"the {name} exporter wrote nothing to {first}; this is a bug in the plugin.")
        try:
            diffs = parity(session, exporter.load(first), source)
        except GanctlError:
            raise
        except Exception as exc:  # the converter wrote something its own runtime cannot run
            raise GanctlError(
                f"the {name} export was written but cannot be run back for the check against Keras "
                f"({type(exc).__name__}: {_first_line(exc)}). Nothing was written to {destination}. "
                "This model may use an operation the format does not support: try another format or --backend."
            ) from None
        worst = max(diffs.values())
        if not worst <= atol:  # also catches NaN
            detail = ", ".join(f"batch {b}: {d:.3g}" for b, d in diffs.items())
            raise GanctlError(
                f"the {name} export does not compute what Keras computes: max abs difference "
                f"{worst:.3g} > --atol {atol:g} ({detail}). Nothing was written to {destination}. "
                "Try another --opset, another --backend, or (if the difference is harmless) a larger --atol."
            )
        if mode and judge is not None:
            quality = quantized(session, exporter, source, first, written, judge, max_fid_increase)
            if quality.fid_increase > max_fid_increase:  # also written nowhere: the scratch folder goes
                before, after = next(iter(quality.metrics.values()))
                raise GanctlError(
                    f"the {mode} export draws worse images: FID {after:.4g} against the float32 generator's "
                    f"{before:.4g} (+{quality.fid_increase:.3g} > --max-fid-increase {max_fid_increase:g}; images "
                    f"differ by up to {quality.max_abs_diff:.3g}, {quality.mean_abs_diff:.3g} on average). Nothing "
                    f"was written to {destination}. Try a milder quantisation (fp16, then int8-static), or accept "
                    "the loss with a larger --max-fid-increase."
                )
        replace_path(written, destination)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result = Exported(name, destination, worst, diffs, atol, time.perf_counter() - began, quality)
    _record(run, result, step, session.backend, session.engine.weights)
    return result


def quantized(session: Session, exporter: api.Exporter, source: api.ExportSource, exported: Path, path: Path,
              judge: Judge, max_fid_increase: float) -> Quality:
    """Quantise ``exported`` (float32, checked) into ``path`` and measure what it gives up."""
    try:
        exporter.quantize(source, exported, path)
        runner = exporter.load(path)
    except GanctlError:
        raise
    except Exception as exc:  # onnxruntime's own failure: a clear message, not a traceback
        raise GanctlError(f"{exporter.quantization} quantisation failed ({type(exc).__name__}: {_first_line(exc)}); "
                          "nothing was written. Try another --quantize mode on this model.") from None
    diffs = differences(session, runner, source)  # each batch's images weigh by its size
    mean = sum(size * m for size, (_, m) in diffs.items()) / sum(diffs)
    metrics = judge(lambda z, labels: np.asarray(runner(z, None if labels is None else labels.astype(np.int64))))
    return Quality(exporter.quantization or "", max(w for w, _ in diffs.values()), mean, metrics, max_fid_increase)


def cannot_quantize(session: Session, name: str, exporter: api.Exporter) -> str | None:
    """Why ``exporter``'s quantisation cannot apply to this model; None when it can or does not quantise."""
    mode = exporter.quantization
    if mode is None:
        return None
    if mode not in exporter.quantizations:
        known = ", ".join(exporter.quantizations) or "none"
        return f"it does not write {mode!r} quantisations (it writes: {known})"
    if session.spec.kind == "table":
        return ("ganctl checks what quantisation costs in image quality (FID, C2ST), and this model makes a "
                "table's rows, which have neither: export it in float32, without --quantize or quantize:")
    if session.model.kind != "generator":
        return (f"quantisation is for generators, and this model is a {session.model.kind}: ganctl checks what "
                "quantisation costs in image quality, which a classifier does not draw. Export it without quantize")
    return None


def parity(session: Session, runner: api.Runner, source: api.ExportSource) -> dict[int, float]:
    """Max abs difference between ``runner`` and Keras, per batch size, on fixed inputs."""
    return {size: worst for size, (worst, _) in differences(session, runner, source).items()}


def differences(session: Session, runner: api.Runner, source: api.ExportSource) -> dict[int, tuple[float, float]]:
    """The max and mean abs difference between ``runner`` and Keras, per batch size, on fixed inputs."""
    diffs = {}
    classifier = source.kind == "classifier"
    names = ("probabilities", "features") if classifier else ("images",)
    for size in PARITY_BATCHES:
        first, labels = source.example_inputs(size, seed=[PARITY_SEED, size])
        if classifier:
            expected = session.engine.classify(first)
            got = runner(first, None)
        else:
            expected = (session.engine.generate(first, labels),)
            got = (runner(first, None if labels is None else labels.astype(np.int64)),)
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            raise GanctlError(f"the export's runner returns {type(got).__name__}; a {source.kind}'s returns "
                              f"{' and '.join(names)}. This is a bug in the exporter plugin.")
        worst, total, count = 0.0, 0.0, 0
        for what, want, have in zip(names, expected, got, strict=True):
            have = np.asarray(have)
            if have.shape != want.shape:
                raise GanctlError(
                    f"the export returns {what} of shape {list(have.shape)} for batch {size}; "
                    f"Keras returns {list(want.shape)}."
                )
            error = np.abs(have.astype(np.float64) - want.astype(np.float64))
            worst, total, count = max(worst, float(np.max(error))), total + float(error.sum()), count + error.size
        diffs[size] = (worst, total / max(count, 1))
    return diffs


# -- helpers ------------------------------------------------------------------------------------


def unavailable(session: Session, exporter: api.Exporter) -> str | None:
    """Why ``exporter`` cannot export this session's model here; None when it can."""
    data_kind = session.spec.kind
    if data_kind not in exporter.data_kinds:
        return (f"it exports models of {' and '.join(k + 's' for k in exporter.data_kinds)}, and this model's data "
                f"is a {data_kind}. A model of a table exports to ONNX (ganctl export RUN --onnx, or export: "
                "[onnx] in the recipe), whose file carries the table's columns and encodings, so that "
                "`ganctl generate model.onnx --out synthetic.csv` decodes it")
    kind = session.model.kind
    if kind not in exporter.kinds:
        return (f"it exports {' and '.join(k + 's' for k in exporter.kinds)}, and this model is a {kind} "
                "(export it as ONNX: ganctl export RUN --onnx)")
    return exporter.unavailable(session.backend)


def _called_network(session: Session) -> Any:
    """The network to export, called once: Keras exports only models that have been called."""
    if session.model.kind == "classifier":
        session.engine.classify(np.zeros((2, *session.spec.shape), np.float32))
        return session.model.extractor  # type: ignore[attr-defined]
    made = session.engine.generate(*inputs(0, 2, session.model.latent_dim,
                                           session.spec.num_classes if session.model.conditional else 0))
    if isinstance(session.spec, api.TableSpec) and made.shape != (2, session.spec.width):
        raise GanctlError(f"the {session.recipe.model.plugin} model's generator returns {list(made.shape)} for 2 "
                          f"latents; a model of a table's returns its encoded rows, [2, {session.spec.width}] here "
                          "(docs/plugins.md#tables-api-17). This is a bug in the model plugin.")
    return session.model.generator  # type: ignore[attr-defined]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else "no message"


def _make_parent(destination: Path) -> None:
    if destination.exists() and destination.is_dir() and destination.suffix:
        raise ConfigError(f"--out {destination} is a folder; give a file path.")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=destination.parent, prefix=".ganctl-probe-")
        probe.close()
    except OSError as exc:
        raise ConfigError(
            f"cannot write to {destination.parent}: {why_unwritable(destination, exc)}. "
            "Choose a writable --out."
        ) from None


def _record(run: RunDir, result: Exported, step: int, backend: str, weights: str | None) -> None:
    info = run.read_info()
    exports = dict(info.get("exports", {}))
    exports[result.key] = {**result.to_dict(), "step": step, "backend": backend,
                              **({"weights": weights} if weights else {}),
                              "sha256": sha256(result.path), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    run.update_info(exports=exports)
