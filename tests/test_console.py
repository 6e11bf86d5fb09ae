"""What a user reads on the terminal and in a pipe, and the permissions of the files ganctl writes:
the live progress display at several widths, the ETA, tables in a pipe, text printed as it is."""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from ganctl.cli import app
from ganctl.fsutil import atomic_write
from ganctl.training.progress import PlainReporter, Reporter, RichReporter

LOGS = {"discriminator/loss": 1.2345, "generator/loss": 0.54321, "discriminator/real": 0.1, "discriminator/fake": -0.3}


class FakeClock:
    """Seconds that pass only when a test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _resumed(reporter: Reporter, clock: FakeClock) -> None:
    """A run of 30 epochs of 56 steps resumed at epoch 3, step 10 of it; the first step compiles (5 s),
    then 8 more steps take 0.1 s each: 10 steps/s, 1549 steps left."""
    reporter.start(30, 56, 2 * 56 + 10, 2)
    for step_in_epoch in range(11, 20):
        clock.now += 5.0 if step_in_epoch == 11 else 0.1
        reporter.step(2 * 56 + step_in_epoch, 2, step_in_epoch, LOGS, 64)


# -- the live display ------------------------------------------------------------------------------


def _display(width: int) -> tuple[RichReporter, list[str]]:
    """The live display after :func:`_resumed`, as it reads at ``width`` columns (its last frame)."""
    console = Console(file=io.StringIO(), width=width, force_terminal=True, record=True)
    clock = FakeClock()
    reporter = RichReporter(console, clock=clock)
    _resumed(reporter, clock)
    reporter.close()
    console.export_text(clear=True)  # the frames drawn over each other; render the last one alone
    console.print(reporter)
    return reporter, console.export_text().splitlines()


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_the_live_display_keeps_counts_eta_and_speed_on_the_bar_lines_at_any_width(width):
    _, lines = _display(width)
    assert len(lines) == 3 and all(len(line) <= width for line in lines), lines
    epochs, steps, losses = lines
    assert epochs.startswith("epochs ") and " 2/30 " in epochs and "eta 0:02:34" in epochs  # 1549 steps at 10/s
    assert steps.startswith("steps ") and "19/56" in steps and "640 samples/s" in steps
    assert "━" in epochs and "━" in steps  # the bars
    assert losses.startswith("discriminator/loss=1.234  generator/loss=0.5432")
    full = "discriminator/loss=1.234  generator/loss=0.5432  discriminator/real=0.1  discriminator/fake=-0.3"
    assert losses == full if width > len(full) else losses.endswith("…")


def test_a_narrow_display_drops_samples_per_second_then_the_bars():
    _, lines = _display(40)
    assert "━" in lines[0] and "samples/s" in lines[1] and all(len(line) <= 40 for line in lines)
    _, lines = _display(30)
    assert "━" not in "".join(lines) and "samples/s" not in lines[1]
    assert "2/30" in lines[0] and "eta 0:02:34" in lines[0] and "19/56" in lines[1]
    assert all(len(line) <= 30 for line in lines)


def test_notes_print_as_they_are_not_as_markup():
    console = Console(file=io.StringIO(), width=80, force_terminal=True, record=True)
    reporter = RichReporter(console, clock=FakeClock())
    reporter.start(1, 2, 0, 0)
    reporter.note("value [x] of [bold]best[/bold]: pip install 'ganctl[tensorflow]'")
    reporter.close()
    assert "value [x] of [bold]best[/bold]: pip install 'ganctl[tensorflow]'" in console.export_text()


# -- speed and ETA -----------------------------------------------------------------------------------


def test_the_eta_is_for_the_whole_run_and_leaves_out_the_first_step_after_a_resume():
    clock = FakeClock()
    reporter = Reporter(clock=clock)
    reporter.start(10, 10, 50, 5)
    clock.now += 9.0  # the first step compiles
    reporter.step(51, 5, 1, LOGS, 32)
    assert reporter.speed is None and reporter.eta() is None
    clock.now += 0.5
    reporter.step(52, 5, 2, LOGS, 32)
    assert reporter.speed == pytest.approx(2.0) and reporter.eta() == pytest.approx((100 - 52) / 2.0)
    clock.now += 1.5
    reporter.step(55, 5, 5, LOGS, 32)
    assert reporter.speed == pytest.approx(2.0) and reporter.eta() == pytest.approx(45 / 2.0)


def test_plain_lines_show_speed_and_eta_once_there_is_a_rate():
    clock, stream = FakeClock(), io.StringIO()
    reporter = PlainReporter(1, stream, clock=clock)
    _resumed(reporter, clock)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "epoch 3/30 step 123/1680  " + "  ".join(f"{k}={v:.4g}" for k, v in LOGS.items())
    assert lines[-1].endswith("  640 samples/s  eta 0:02:34") and lines[-1].startswith("epoch 3/30 step 131/1680  ")


# -- tables in a pipe, text as it is -----------------------------------------------------------------


def _evaluated_run(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "recipe.yaml").write_text("name: x\n")
    (path / "run.json").write_text(json.dumps({"model": "gan", "backend": "jax", "step": 24, "status": "completed"}))
    record = {"metric": "fid", "values": {"fid": 12.5}, "protocol": {"n_real": 100, "n_fake": 100}}
    (path / "evaluations.jsonl").write_text(json.dumps(record) + "\n")
    return path


def test_a_table_in_a_pipe_keeps_a_long_run_path_on_one_line(runner, tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    run = _evaluated_run(tmp_path / "runs" / ("quickstart-20250101-120000-" + "long-name-" * 12))
    result = runner.invoke(app, ["compare", str(run)])
    assert result.exit_code == 0, result.output
    assert len(str(run)) > 150 and any(str(run) in line and "fid 12.5" in line for line in result.stdout.splitlines())


def test_a_table_in_a_pipe_honours_columns(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "50")
    run = _evaluated_run(tmp_path / "run")
    result = runner.invoke(app, ["compare", str(run), str(run)])
    assert result.exit_code == 0, result.output
    assert all(len(line) <= 50 for line in result.stdout.splitlines()) and "fid 12.5" in result.stdout


TF_MISSING = "needs TensorFlow; install with: pip install 'ganctl[tensorflow]'"


@pytest.fixture
def no_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tf_saved_model exporter as it is where TensorFlow is not installed."""
    from ganctl_export.saved_model import SavedModelExporter

    monkeypatch.setattr(SavedModelExporter, "unavailable", lambda self, backend: TF_MISSING)


def test_export_list_prints_install_commands_as_they_are(runner, no_tensorflow):
    result = runner.invoke(app, ["export", "--list", "--backend", "jax"])
    assert result.exit_code == 0, result.output
    assert "pip install 'ganctl[tensorflow]'" in result.stdout


def test_doctor_prints_install_commands_as_they_are(runner, no_tensorflow):
    result = runner.invoke(app, ["doctor", "--backend", "jax"])
    assert result.exit_code == 0, result.output
    assert f"tf_saved_model: no: {TF_MISSING}" in result.stdout


def test_plugins_statuses_print_as_they_are(runner, host):
    from ganctl.plugins import PluginInfo

    host.plugins.append(PluginInfo("broken", "ganctl-broken", "1.0", status="failed",
                                   error="ImportError: needs [extra] (pip install 'ganctl-broken[gpu]')"))
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "failed: ImportError: needs [extra] (pip install 'ganctl-broken[gpu]')" in result.stdout
    assert "loaded (built-in)" in result.stdout


# -- file permissions --------------------------------------------------------------------------------


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_gives_the_permissions_of_a_new_file(tmp_path, umask_022):
    assert _mode(atomic_write(tmp_path / "a.txt", b"x")) == 0o644
    os.umask(0o077)
    assert _mode(atomic_write(tmp_path / "a.txt", b"y")) == 0o600  # the umask, not a fixed mode
    assert (tmp_path / "a.txt").read_bytes() == b"y" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


RECIPE = """\
name: tiny
seed: 7
data: {plugin: digits, limit: 64}
model: {plugin: gan, latent_dim: 4, hidden: [8]}
train: {epochs: 1, batch_size: 32}
"""


def test_a_run_and_what_is_made_from_it_get_the_permissions_of_new_files(runner, write, tmp_path, umask_022):
    recipe, run = write("tiny.yaml", RECIPE), tmp_path / "run"
    result = runner.invoke(app, ["train", str(recipe), "--out", str(run), "-q"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["generate", str(run), "-n", "4", "--seed", "0", "--out", str(run / "out.png")])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["report", str(run)]).exit_code == 0
    # bench exports the run first; its success line is no warning
    result = runner.invoke(app, ["bench", str(run), "--batch", "1", "--provider", "cpu", "--repeats", "1",
                                 "--warmup", "0"])
    assert result.exit_code == 0, result.output
    assert f"\nwrote {run / 'exports' / 'generator.onnx'} (max abs difference" in "\n" + result.stderr
    assert "warning: wrote" not in result.stderr and "warning: " in result.stderr  # the export itself is one
    files = [p for p in run.rglob("*") if p.is_file()]
    names = {p.relative_to(run).as_posix() for p in files}
    assert {"run.json", "recipe.yaml", "metrics.jsonl", "samples/final.png", "out.png", "report.html",
            "exports/generator.onnx"} <= names and any(n.startswith("checkpoints/ckpt-") for n in names)
    assert {p.relative_to(run).as_posix(): oct(_mode(p)) for p in files if _mode(p) != 0o644} == {}
