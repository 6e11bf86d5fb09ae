"""``ganctl bench``: how fast a generator samples, on onnxruntime and, for a run directory, on Keras.

Given an ONNX model it times :class:`ganctl.inference.generator.Generator` (onnxruntime). Given a run
directory it also times the same weights on Keras, two ways: ``model.predict`` and the direct
call ``generator(inputs, training=False)`` (what ``ganctl generate RUN_DIR`` runs, through
``session.engine.generate``). A run directory without ``exports/generator.onnx`` is exported
first, with the same parity-checked path as ``ganctl export RUN_DIR --onnx``.

Every path gets the same latents and labels, is warmed up (the first Keras calls compile), and
is then timed call by call in interleaved slices (A B C, then C B A, ...), so that whatever else
the machine does slows every path alike.

Only light imports here: this module is on the path of ``ganctl --help``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from ganctl.console import guarded, load_plugins, stdout, warn

DEFAULT_BATCHES = "1,64,256"
DEFAULT_SECONDS = 1.0
SLICES = 5
"""Each path's budget is spent in this many interleaved slices."""
SETTLE = 0.05
"""Untimed seconds before each slice: after other threads had the CPUs, onnxruntime's first calls
run 2-3x slower for 50-100 ms (bench/README.md)."""

ONNXRUNTIME, PREDICT, DIRECT = "onnxruntime", "keras predict", "keras direct"


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


@guarded
def bench(
    sources: list[Path] = typer.Argument(..., metavar="MODEL.onnx|RUN_DIR", show_default=False,
                                         help="An ONNX export, timed on onnxruntime; or a run directory, timed on "
                                              "onnxruntime (its export) and on Keras (its newest checkpoint); or "
                                              "several ONNX files (e.g. float32 and quantised), side by side."),
    batch: str = typer.Option(DEFAULT_BATCHES, "--batch", help="Batch sizes to time, comma-separated."),
    seconds: float = typer.Option(None, "--seconds", help="Seconds of timed calls per path and batch size "
                                                          f"[default: {DEFAULT_SECONDS:g}]."),
    repeats: int = typer.Option(None, "--repeats", help="Timed calls per path and batch size "
                                                        "(instead of --seconds)."),
    warmup: int = typer.Option(3, "--warmup", help="Untimed calls per path and batch size first (Keras compiles "
                                                   "in the first ones)."),
    provider: str = typer.Option("auto", "--provider", help="onnxruntime's execution provider: auto, cpu, cuda "
                                                            "or tensorrt."),
    threads: int = typer.Option(None, "--threads", help="onnxruntime's CPU threads per operator [default: the "
                                                        "physical cores]. Keras uses its backend's own."),
    backend: str = typer.Option(None, "--backend", help="Run directories: the Keras backend to time "
                                                        "(default: the run's)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Time sampling: samples/s and latency per call, on onnxruntime and (run directories) on Keras.

    A run directory without an ONNX export is exported first (as ganctl export RUN_DIR --onnx).
    Several ONNX files are compared side by side: latency, samples/s and file size.
    """
    from ganctl.errors import ConfigError

    sizes = parse_batches(batch)
    if seconds is not None and repeats is not None:
        raise ConfigError("give --seconds or --repeats, not both.")
    if seconds is not None and not seconds > 0:
        raise ConfigError(f"--seconds must be more than 0, got {seconds:g}.")
    if repeats is not None and repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {repeats}.")
    if warmup < 0:
        raise ConfigError(f"--warmup must be 0 or more, got {warmup}.")
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}.")
    budget = (None if repeats is not None else DEFAULT_SECONDS) if seconds is None else seconds
    provider = provider.strip().lower()
    if len(sources) > 1:
        if backend is not None:
            raise ConfigError("--backend is for one run directory; several ONNX files are timed on onnxruntime only.")
        results, info = _compare(sources, sizes, provider=provider, threads=threads, budget=budget,
                                 repeats=repeats, warmup=warmup)
        if as_json:
            typer.echo(json.dumps({**info, "results": results}, indent=2))
        else:
            _table(results, info, reference=results[0]["path"], sizes=info["sizes"])
        return
    source = sources[0]
    if not source.exists():
        raise ConfigError(f"{source} does not exist; give an ONNX model file or a run directory made by ganctl train.")
    from ganctl.runs.rundir import is_run_dir

    run_dir = is_run_dir(source)
    if backend is not None and not run_dir:
        raise ConfigError(f"--backend is for run directories; {source} is an ONNX model, timed on onnxruntime only.")

    keras_paths: dict[str, Callable[[Any, Any], Any]] = {}
    info: dict[str, Any] = {}
    if run_dir:
        onnx_path, keras_paths, info = _open_run(source, backend)
    else:
        onnx_path = source
    from ganctl.inference.generator import Generator

    generator = Generator.open(onnx_path, provider=provider, threads=threads)
    info = {"model": str(generator.path), "providers": generator.providers, "threads": generator.threads, **info}

    results = []
    for size in sizes:
        z, labels = _inputs(generator, size)
        paths = {ONNXRUNTIME: lambda z=z, labels=labels: generator.run(z, labels)}
        keras_labels = None if labels is None else labels.astype("int32")
        for name, call in keras_paths.items():
            paths[name] = lambda call=call, z=z, labels=keras_labels: call(z, labels)
        timings = measure(paths, seconds=budget, repeats=repeats, warmup=warmup, settle=SETTLE)
        results += [summarise(name, size, times) for name, times in timings.items()]
    _speedups(results)
    if as_json:
        typer.echo(json.dumps({**info, "results": results}, indent=2))
        return
    _table(results, info)


# -- arguments --------------------------------------------------------------------------------------


def parse_batches(text: str) -> list[int]:
    """``"1,64,256"`` to ``[1, 64, 256]``; a ConfigError for anything else."""
    from ganctl.errors import ConfigError

    parts = [p.strip() for p in text.split(",")]
    sizes = []
    for part in parts:
        value = int(part) if part.isascii() and part.isdigit() else 0
        if value < 1:
            raise ConfigError(f"--batch {text!r}: each batch size must be a whole number of at least 1, "
                              f"separated by commas (e.g. --batch {DEFAULT_BATCHES}); {part!r} is not.")
        sizes.append(value)
    return list(dict.fromkeys(sizes))


# -- the paths --------------------------------------------------------------------------------------


def _open_run(path: Path, backend: str | None) -> tuple[Path, dict[str, Callable[[Any, Any], Any]], dict[str, Any]]:
    """The run's ONNX export (written first when missing) and its Keras paths on the newest checkpoint."""
    from ganctl import exporting
    from ganctl.runs.rundir import export_path
    from ganctl.runs.trained import open_trained

    host = load_plugins()
    trained = open_trained(path, host, backend)
    session, step = trained.session, trained.checkpoint.progress.step
    if session.model.kind != "generator":
        from ganctl.runs.trained import not_a_generator

        raise not_a_generator(path)
    onnx_path = export_path(path)
    name = exporting.onnx_exporter(host)
    exported = trained.run.read_info().get("exports", {}).get(name, {})
    if not onnx_path.is_file():
        name, exporter = exporting.make_exporter(host, name, source="ganctl bench")
        reason = exporter.unavailable(session.backend)
        if reason:
            from ganctl.errors import ConfigError

            raise ConfigError(f"{path} has no ONNX export ({onnx_path}), and the {name} exporter cannot run on the "
                              f"{session.backend} backend here: {reason}. Export it on another backend "
                              f"(ganctl export {path} --onnx --backend jax), or time an .onnx file.")
        warn(f"{path} has no ONNX export: exporting it first (as `ganctl export {path} --onnx`) ...")
        result = exporting.export(session, trained.run, step, name, exporter)
        typer.echo(f"wrote {result.path} (max abs difference from Keras {result.max_abs_diff:.2g})", err=True)
    elif exported.get("step") not in (None, step):
        warn(f"{onnx_path} was exported at step {exported['step']}, Keras runs the checkpoint of step {step}; "
             "the timings do not depend on the weights, but re-export (ganctl export RUN_DIR --onnx) to ship them.")
    import keras
    import numpy as np

    engine, model = session.engine, session.model
    engine.sync()  # the Keras variables now hold the checkpoint's weights
    network = model.generator

    def predict(z: Any, labels: Any) -> Any:
        inputs = z if labels is None else [z, labels]
        return network.predict(inputs, batch_size=len(z), verbose=0)

    def direct(z: Any, labels: Any) -> Any:  # session.engine.generate, less its one-off sync
        with engine.inference():
            return np.asarray(keras.ops.convert_to_numpy(model.generate(z, labels)))

    info = {"run": str(path), "backend": session.backend, "step": step}
    return onnx_path, {PREDICT: predict, DIRECT: direct}, info


def _compare(sources: list[Path], sizes: list[int], *, provider: str, threads: int | None, budget: float | None,
             repeats: int | None, warmup: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Several ONNX files timed on the same inputs, interleaved; each row's speed-up is over the first file."""
    from ganctl.errors import ConfigError
    from ganctl.inference.generator import Generator
    from ganctl.runs.rundir import is_run_dir

    for path in sources:
        if not path.is_file() or is_run_dir(path):
            raise ConfigError(f"{path} is not an ONNX file: several sources are compared as ONNX files "
                              "(e.g. RUN/exports/generator.onnx RUN/exports/generator-int8-static.onnx); "
                              "bench a run directory on its own.")
    labels = [_label(path, sources) for path in sources]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{' '.join(map(str, sources))}: the same file is given twice.")
    generators = {label: Generator.open(path, provider=provider, threads=threads)
                  for label, path in zip(labels, sources, strict=True)}
    first = generators[labels[0]]
    for label, generator in generators.items():
        if (generator.latent_dim, generator.num_classes) != (first.latent_dim, first.num_classes):
            raise ConfigError(
                f"{label} takes latents of {generator.latent_dim} and {generator.num_classes} classes, {labels[0]} "
                f"{first.latent_dim} and {first.num_classes}: only exports of the same generator compare.")
    results = []
    for size in sizes:
        z, y = _inputs(first, size)
        paths = {label: lambda g=g, z=z, y=y: g.run(z, y) for label, g in generators.items()}
        timings = measure(paths, seconds=budget, repeats=repeats, warmup=warmup, settle=SETTLE)
        results += [summarise(label, size, times) for label, times in timings.items()]
    size_of = {label: path.stat().st_size for label, path in zip(labels, sources, strict=True)}
    for row in results:
        row["bytes"] = size_of[row["path"]]
        row["quantization"] = generators[row["path"]].metadata.get("ganctl.quantization", "")
    _speedups(results, reference=labels[0])
    info = {"models": [str(p) for p in sources], "providers": first.providers, "threads": first.threads,
            "sizes": True}
    return results, info


def _label(path: Path, sources: list[Path]) -> str:
    """A file's name, or its path when two files share a name."""
    return path.name if sum(p.name == path.name for p in sources) == 1 else str(path)


def _inputs(generator: Any, size: int) -> tuple[Any, Any]:
    """The latents and labels ``Generator.sample(size, seed=0)`` draws."""
    import numpy as np

    from ganctl.sampling import inputs

    return inputs(0, size, generator.latent_dim, generator.num_classes, label_dtype=np.int64)


# -- timing -----------------------------------------------------------------------------------------


def measure(paths: dict[str, Callable[[], Any]], *, seconds: float | None, repeats: int | None,
            warmup: int, slices: int = SLICES, settle: float = 0.0) -> dict[str, list[float]]:
    """Seconds per call of each path: ``warmup`` untimed calls each, then interleaved slices.

    The budget (``seconds`` of calls, or ``repeats`` calls, per path) is spent in ``slices``
    slices; each slice runs every path in turn, the order reversed every other slice, and
    starts with ``settle`` seconds of untimed calls (none when 0).
    """
    import time

    for call in paths.values():
        for _ in range(warmup):
            call()
    times: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for index in range(slices):
        for name in names if index % 2 == 0 else names[::-1]:
            call, spent = paths[name], times[name]
            if settle > 0:
                until = time.perf_counter() + settle
                while time.perf_counter() < until:
                    call()
            if repeats is not None:
                count = repeats * (index + 1) // slices - repeats * index // slices
                for _ in range(count):
                    began = time.perf_counter()
                    call()
                    spent.append(time.perf_counter() - began)
                continue
            assert seconds is not None
            deadline = time.perf_counter() + seconds / slices
            while True:
                began = time.perf_counter()
                call()
                ended = time.perf_counter()
                spent.append(ended - began)
                if ended >= deadline:
                    break
    return times


def summarise(name: str, size: int, times: list[float]) -> dict[str, Any]:
    """samples/s (over all timed calls) and the median and 90th percentile latency of one call."""
    import numpy as np

    values = np.asarray(times)
    return {"path": name, "batch": size, "calls": len(values), "samples_per_s": size * len(values) / values.sum(),
            "median_ms": float(np.median(values)) * 1e3, "p90_ms": float(np.percentile(values, 90)) * 1e3}


def _speedups(results: list[dict[str, Any]], reference: str = ONNXRUNTIME) -> None:
    """Each row's speed-up: ``reference``'s samples/s over this path's, at the same batch size
    (``onnxruntime_speedup`` for a run directory's paths; ``speedup`` over the first of several files,
    how much faster each file is than it)."""
    base = {r["batch"]: r["samples_per_s"] for r in results if r["path"] == reference}
    for row in results:
        if reference == ONNXRUNTIME:
            row["onnxruntime_speedup"] = base[row["batch"]] / row["samples_per_s"]
        else:
            row["speedup"] = row["samples_per_s"] / base[row["batch"]]


def _table(results: list[dict[str, Any]], info: dict[str, Any], reference: str = ONNXRUNTIME,
           sizes: bool = False) -> None:
    from rich.table import Table

    where = f"{info['providers'][0].removesuffix('ExecutionProvider')}, {info['threads']} thread(s)"
    title = f"{info.get('model') or ', '.join(info['models'])}: onnxruntime on {where}"
    if "backend" in info:
        title += f"; Keras on {info['backend']} (step {info['step']})"
    caption = ("speed-up: onnxruntime's samples/s over the path's, at the same batch size" if reference == ONNXRUNTIME
               else f"speed-up: the file's samples/s over {reference}'s, at the same batch size")
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    table.add_column("path" if reference == ONNXRUNTIME else "file", no_wrap=True)
    columns = ("batch", "samples/s", "median ms", "p90 ms", "calls", "speed-up") + (("size KB",) if sizes else ())
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    previous = None
    for row in results:
        if previous is not None and row["batch"] != previous:
            table.add_section()
        previous = row["batch"]
        speedup = row.get("onnxruntime_speedup", row.get("speedup"))
        cells = [row["path"], str(row["batch"]), f"{row['samples_per_s']:,.0f}", f"{row['median_ms']:.3f}",
                 f"{row['p90_ms']:.3f}", str(row["calls"]),
                 "" if row["path"] == reference else f"{speedup:.2f}x"]
        table.add_row(*cells, *([f"{row['bytes'] / 1024:,.0f}"] if sizes else []))
    stdout().print(table)
