"""``ganctl export``: write a trained generator in a deployable format, checked against Keras."""

from __future__ import annotations

from pathlib import Path

import typer

from ganctl.console import guarded, load_plugins, stdout


def register(app: typer.Typer) -> None:
    app.command("export")(export)


@guarded
def export(
    run_dir: Path = typer.Argument(None, metavar="RUN_DIR", help="A run directory made by ganctl train.",
                                   show_default=False),
    onnx: bool = typer.Option(False, "--onnx", help="Export to ONNX (the same as --format onnx)."),
    formats: list[str] = typer.Option([], "--format", metavar="NAME", help="Exporter plugin to use (repeatable); see --list."),
    out_file: Path = typer.Option(None, "--out", help="Where to write (default: RUN_DIR/exports/generator.EXT, or classifier.EXT for a classifier; EXT: the format's suffix)."),
    opset: int = typer.Option(None, "--opset", help="ONNX opset to target (default: the converter's)."),
    atol: float = typer.Option(None, "--atol", help="Largest abs difference from Keras allowed [default: 1e-4]."),
    backend: str = typer.Option(None, "--backend", help="Backend to export from (default: the run's; weights are portable)."),
    which: str = typer.Option("auto", "--checkpoint", help="auto (best if train.keep_best kept one, else latest), "
                              "best or latest."),
    weights: str = typer.Option(None, "--weights", metavar="ema|raw",
                                help="The generator's weights: ema (the moving average that train.ema keeps) or "
                                     "raw (as trained). [default: ema when the run keeps one, else raw]"),
    quantize: str = typer.Option(None, "--quantize", metavar="fp16|int8-dynamic|int8-static",
                                 help="ONNX: write a quantised generator (RUN_DIR/exports/generator-MODE.onnx), "
                                      "checked for quality against the float32 one."),
    max_fid_increase: float = typer.Option(None, "--max-fid-increase", help="Quantised exports: refuse when FID "
                                           "rises by more than this over the float32 generator's [default: 1.0]."),
    quality_n: int = typer.Option(None, "--quality-n", help="Quantised exports: images for the FID and C2ST "
                                  "check [default: 1000, or the real images when fewer]."),
    list_: bool = typer.Option(False, "--list", help="List the exporters and whether each can run on the backend."),
) -> None:
    """Export a run's generator or classifier (ONNX, .keras, ...), checked against Keras before it is written.

    Without --onnx or --format, the recipe's export: list is used, or ONNX when it is empty.
    """
    from ganctl import exporting
    from ganctl.errors import ConfigError

    host = load_plugins()
    if list_:
        _list(host, run_dir, backend)
        return
    if run_dir is None:
        raise ConfigError("give the run directory to export: ganctl export RUN_DIR --onnx")
    from ganctl.runs.trained import check_weights, open_trained

    sections: list = [{"plugin": name} for name in dict.fromkeys(([exporting.onnx_exporter(host)] if onnx else []) + formats)]
    if opset is not None:
        onnx_name = exporting.onnx_exporter(host)
        if not any(s["plugin"] == onnx_name for s in sections):
            raise ConfigError("--opset is an ONNX setting: use it with --onnx.")
        sections = [{**s, "opset": opset} if s["plugin"] == onnx_name else s for s in sections]
    if quantize is not None:
        onnx_name = exporting.onnx_exporter(host)
        if not any(s["plugin"] == onnx_name for s in sections) or len(sections) != 1:
            raise ConfigError("--quantize is an ONNX setting: use it with --onnx alone (other formats do not quantise).")
        modes = host.get("exporters", onnx_name).factory.quantizations
        if quantize not in modes:
            raise ConfigError(f"--quantize {quantize!r} is not a quantisation; choose one of {', '.join(modes)}.")
        sections = [{**sections[0], "quantize": quantize}]
    if out_file is not None and len(sections) != 1:
        raise ConfigError("--out names one file: use it with exactly one format (--onnx or one --format).")
    # check the names and exporters before the (slow) model build
    exporters = [exporting.make_exporter(host, s, source="--format") for s in sections]
    trained = open_trained(run_dir, host, backend, which, check_weights(weights or "auto"))
    session = trained.session
    if not exporters:
        exporters = [exporting.make_exporter(host, s, source=f"{trained.run.recipe_path}: export")
                     for s in session.recipe.export] or [
            exporting.make_exporter(host, name, source="default") for name in host.defaults(
                "exporters", "name one with --onnx or --format, or list them in the recipe's export:")]
    for name, exporter in exporters:  # all or nothing: refuse before writing anything
        reason = exporting.unavailable(session, exporter) or exporting.cannot_quantize(session, name, exporter)
        if reason:
            raise ConfigError(f"the {name} exporter cannot run on the {session.backend} backend here: {reason}.")
    scorer = None
    if any(e.quantization for _, e in exporters):
        from ganctl.evaluation.quantised import judge
        from ganctl.training.default_classifier import for_quality_check
        from ganctl.training.loop import Trainer

        scorer = judge(session, host, quality_n, default=for_quality_check(session, host, Trainer))
    elif max_fid_increase is not None or quality_n is not None:
        raise ConfigError("--max-fid-increase and --quality-n check quantised exports: use them with --quantize "
                          "(or on a run whose recipe's export: list quantises).")
    step = trained.checkpoint.progress.step
    for name, exporter in exporters:
        result = exporting.export(
            session, trained.run, step, name, exporter, out=out_file,
            atol=exporting.DEFAULT_ATOL if atol is None else atol, judge=scorer if exporter.quantization else None,
            max_fid_increase=exporting.DEFAULT_MAX_FID_INCREASE if max_fid_increase is None else max_fid_increase)
        if result.quality is not None:
            _quality_table(name, result)
            continue
        typer.echo(
            f"{name}: wrote {result.path} (step {step}{', best' if 'best' in trained.checkpoint.meta else ''}, "
            f"{session.backend}{f', {trained.weights} weights' if trained.weights else ''}); max abs difference from Keras "
            f"{result.max_abs_diff:.2g} <= {result.atol:g} at batch sizes "
            f"{', '.join(map(str, result.diffs))}; {result.seconds:.1f} s"
        )
        if session.recipe.train.prune is not None:
            _report_pruning(session, result.path)


def _report_pruning(session, path: Path) -> None:
    """A pruned run's export (``train.prune``): the zeros of each kernel it carries, and the size
    of the file compressed (zeros compress; dense kernels compute no faster for them)."""
    import zlib

    from ganctl.session.pruning import kernel_sparsity

    network = session.model.extractor if session.model.kind == "classifier" else session.model.generator
    for kernel, fraction in kernel_sparsity(network).items():
        typer.echo(f"  sparsity {fraction:6.1%}  {kernel}")
    if path.is_file():
        compressor, packed = zlib.compressobj(9), 0
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                packed += len(compressor.compress(chunk))
        packed += len(compressor.flush())
        size = path.stat().st_size
        typer.echo(f"  size {_size(size)}, {_size(packed)} compressed (zlib level 9, as gzip and zip store it): "
                   f"{packed / size:.0%}")


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _quality_table(name: str, result) -> None:
    """A quantised export's check: what it gives up against the float32 generator."""
    from rich.table import Table

    quality = result.quality
    table = Table(title=f"{name} ({quality.mode}): wrote {result.path}; the float32 export matched Keras within "
                        f"{result.max_abs_diff:.2g}", title_justify="left")
    for column in ("check", "float32", quality.mode, "change"):
        table.add_column(column, justify="left" if column == "check" else "right", no_wrap=True)
    table.add_row("images: max abs difference", "", f"{quality.max_abs_diff:.3g}", "")
    table.add_row("images: mean abs difference", "", f"{quality.mean_abs_diff:.3g}", "")
    for index, (metric, (before, after)) in enumerate(quality.metrics.items()):
        limit = "" if index else f" (limit +{quality.max_fid_increase:g})"  # the first: FID
        table.add_row(metric, f"{before:.4g}", f"{after:.4g}", f"{after - before:+.3g}{limit}")
    stdout().print(table)


def _list(host, run_dir: Path | None, backend: str | None) -> None:
    from rich.table import Table

    from ganctl.engine import backends
    from ganctl.exporting import make_exporter
    from ganctl.runs.rundir import RunDir

    chosen = backend or (RunDir.open(run_dir).read_info()["backend"] if run_dir else None)
    chosen, _ = backends.resolve(chosen)
    table = Table(title=f"exporters on the {chosen} backend")
    for column in ("name", "writes", "available", "description"):
        table.add_column(column)
    for name in host.names("exporters"):
        component = host.get("exporters", name)
        _, exporter = make_exporter(host, name, source="--list")
        reason = exporter.unavailable(chosen)
        kinds = [k + "s" for k in exporter.kinds] + (["generators of tables"] if "table" in exporter.data_kinds else [])
        writes = (f"file *{exporter.suffix}" if exporter.suffix else "folder") + f" ({', '.join(kinds)})" + \
            (f"; --quantize {'|'.join(exporter.quantizations)}" if exporter.quantizations else "")
        table.add_row(name, writes, "yes" if reason is None else f"no: {reason}", component.description)
    stdout().print(table)
