"""``ganctl doctor``: what is installed and what works here."""

from __future__ import annotations

import json
import platform
from typing import Any

import typer

from ganctl import __version__
from ganctl.console import guarded, load_plugins, stdout


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


@guarded
def doctor(
    backend: str = typer.Option(None, "--backend", help="Backend to check: jax, tensorflow or torch."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Check the installation: versions, the backend and its devices, plugins."""
    from importlib import metadata

    from ganctl.engine import backends

    name, origin = backends.resolve(backend)
    problem = backends.missing(name)  # a backend that is not installed is reported, not an error
    report: dict[str, Any] = {
        "ganctl": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "backend": name,
        "backend_origin": origin,
        "backend_installed": problem is None,
        "backend_problem": problem,
        "backend_install": None if problem is None else backends.install_command(name),
        "installed_backends": [b for b in backends.BACKENDS if backends.missing(b) is None],
    }
    if problem is None:
        backends.activate(name)
        import keras

        from ganctl.engine import engine_for

        engine = engine_for(name)
        report.update(keras=keras.__version__, backend_version=engine.framework_version(), devices=engine.devices())
    else:
        report.update(keras=metadata.version("keras"), backend_version=None, devices=[])
    host = load_plugins()
    report["plugins"] = [{"name": p.name, "distribution": p.distribution, "version": p.version,
                          "status": p.status, "error": p.error} for p in host.plugins]
    report["inference"] = _inference_report()
    report["accelerator"] = _accelerator_report(report["installed_backends"], report["inference"]["packages"])
    report["exporters"] = _exporters_report(host, name)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title="ganctl doctor", title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("ganctl", report["ganctl"])
    table.add_row("python", f"{report['python']} ({report['platform']})")
    table.add_row("keras", report["keras"])
    if problem is None:
        table.add_row("backend", f"{name} {report['backend_version']} (from {origin})")
    else:  # Text: the install command's [extra] must print as it is, not as markup
        table.add_row("backend", Text(f"{name} (from {origin}): not installed; install it with: "
                                      f"{report['backend_install']}", style="red"))
    table.add_row("installed backends", ", ".join(report["installed_backends"]) or "none")
    table.add_row("devices", ", ".join(report["devices"]) or f"none: the {name} backend is not installed")
    accelerator = report["accelerator"]
    table.add_row("NVIDIA GPUs", ", ".join(accelerator["gpus"]) or "none found: training runs on the CPU")
    for what, check in accelerator["checks"].items():
        table.add_row(f"{what} on the GPU", "yes" if check["usable"] else Text(
            f"no: {check['problem']}. Fix: {check['fix']}", style="red"))
    loaded = [p["name"] for p in report["plugins"] if p["status"] == "loaded"]
    failed = [f"{p['name']}: {p['error']}" for p in report["plugins"] if p["status"] == "failed"]
    table.add_row("plugins loaded", ", ".join(loaded) or "none")
    table.add_row("plugins failed", "\n".join(failed) or "none")
    runtime = report["inference"]
    packages = ", ".join(f"{k} {v}" for k, v in runtime["packages"].items()) or "none"
    table.add_row("onnxruntime", Text.assemble(packages, (f"\n{runtime['problem']}", "red") if runtime["problem"] else ""))
    table.add_row("inference providers", "\n".join(
        f"{k}: {'yes' if v['available'] else 'no: ' + v['reason']}" for k, v in runtime["providers"].items()))
    table.add_row("exporters", "\n".join(
        f"{k}: {'yes' if v is None else 'no: ' + v}" for k, v in report["exporters"].items()))
    stdout().print(table)


ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino")


def _inference_report() -> dict[str, Any]:
    """Which onnxruntime packages are installed (they overwrite each other) and which providers work."""
    from importlib import metadata

    from ganctl.inference.providers import probe_provider

    packages = {}
    for dist in ORT_DISTRIBUTIONS:
        try:
            packages[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    problem = None
    if len(packages) > 1:
        keep = "onnxruntime-gpu" if "onnxruntime-gpu" in packages else sorted(packages)[0]
        problem = (f"{' and '.join(packages)} are installed together; they overwrite each other's files. "
                   f"Fix: pip uninstall -y {' '.join(packages)} && pip install {keep}")
    elif not packages:
        problem = "no onnxruntime package: reinstall ganctl (pip install -e .)"
    providers = {}
    for provider in ("tensorrt", "cuda", "cpu"):
        status = probe_provider(provider)
        providers[provider] = {"available": status.available, "reason": status.reason}
    return {"packages": packages, "problem": problem, "providers": providers}


def _accelerator_report(installed: list[str], ort_packages: dict[str, str]) -> dict[str, Any]:
    """The machine's NVIDIA GPUs (found without CUDA) and, when there is one, whether each installed
    backend and onnxruntime can use it, with the command that fixes each that cannot."""
    from ganctl.engine import gpu
    from ganctl.inference.nvidia import gpus

    found = gpus()
    checks: dict[str, dict[str, Any]] = {}
    if found:
        checks = {backend: gpu.check(backend) for backend in installed}
        if "onnxruntime-gpu" not in ort_packages:
            checks["onnxruntime"] = {"usable": False, "fix": gpu.ORT_GPU_INSTALL,
                                     "problem": "onnxruntime is the CPU-only build"}
        else:
            from ganctl.inference.providers import probe_provider

            status = probe_provider("cuda")
            checks["onnxruntime"] = {"usable": status.available, "problem": status.reason or None,
                                     "fix": None if status.available else
                                     "install the libraries named above (or: pip install 'onnxruntime-gpu[cuda,cudnn]')"}
    return {"gpus": found, "checks": checks}


def _exporters_report(host: Any, backend: str) -> dict[str, str | None]:
    """Each exporter: None when it can run on ``backend``, else why not."""
    from ganctl.exporting import make_exporter

    report = {}
    for name in host.names("exporters"):
        try:
            report[name] = make_exporter(host, name, source="doctor")[1].unavailable(backend)
        except Exception as exc:  # a broken third-party exporter must not break doctor
            report[name] = f"{type(exc).__name__}: {exc}"
    return report
