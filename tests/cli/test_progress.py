"""Progress without a terminal: whole lines at an interval (OIPSCOPE_PROGRESS_SECONDS), an estimate, a done line."""

from __future__ import annotations

import io
import time

from rich.console import Console

from oipscope.cli.progress import PROGRESS_SECONDS_ENV, PlainProgress, progress_display, progress_seconds


def _log_console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=10_000, soft_wrap=True), buffer


def _wait_for(buffer: io.StringIO, count: int, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(lines := buffer.getvalue().splitlines()) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return lines


def test_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(PROGRESS_SECONDS_ENV, "0.5")
    assert progress_seconds() == 0.5
    for bad in ("", "soon", "0", "-3"):
        monkeypatch.setenv(PROGRESS_SECONDS_ENV, bad)
        assert progress_seconds() == 30.0


def test_a_log_gets_plain_lines_and_a_terminal_a_bar():
    console, _ = _log_console()
    assert isinstance(progress_display(console), PlainProgress)
    terminal = Console(file=io.StringIO(), force_terminal=True)
    assert not isinstance(progress_display(terminal), PlainProgress)


def test_a_line_comes_while_nothing_is_done_then_an_estimate_then_done():
    console, buffer = _log_console()
    with PlainProgress(console, interval=0.05) as progress:
        hidden = progress.add_task("examples", total=10, visible=False)  # not begun: never shown
        task = progress.add_task("c2 (1/2) OIPs", total=8)
        progress.update(task, completed=0, total=8)  # a segment ended, no OIP finished yet
        first = _wait_for(buffer, 1)[0]
        assert first.startswith("progress: c2 (1/2) OIPs 0/8, ") and " elapsed" in first, first
        progress.update(task, completed=2)
        time.sleep(0.12)
        progress.update(task, completed=8)
        progress.update(task, completed=8)  # reported once
        progress.update(hidden, completed=3)
    lines = buffer.getvalue().splitlines()
    assert any(line.startswith("progress: c2 (1/2) OIPs 2/8, ") and "left in this phase" in line
               for line in lines), lines
    assert sum(line.startswith("c2 (1/2) OIPs 8/8 done in ") for line in lines) == 1, lines
    assert not any("examples" in line for line in lines), lines
    count = len(lines)
    time.sleep(0.15)
    assert len(buffer.getvalue().splitlines()) == count, "no line after the display stopped"


def test_a_phase_made_early_counts_its_time_from_the_end_of_the_one_before(monkeypatch):
    """find makes its examples' task with its OIPs' task; the examples' done line tells their own time."""
    clock = [time.monotonic()]  # tasks take their start from the real clock
    monkeypatch.setattr("oipscope.cli.progress.time.monotonic", lambda: clock[0])
    console, buffer = _log_console()
    progress = PlainProgress(console, interval=3600)
    oips = progress.add_task("c2 OIPs", total=4)
    examples = progress.add_task("photos examples", total=10, visible=False)
    clock[0] += 120  # the search takes two minutes
    progress.update(oips, completed=4)
    clock[0] += 15  # the examples fifteen seconds
    progress.update(examples, completed=10, visible=True)
    assert buffer.getvalue().splitlines() == ["c2 OIPs 4/4 done in 2 min", "photos examples 10/10 done in 15 s"]
