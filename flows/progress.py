"""Progress of a build, per stage: logged to the flow run, and drawn on a terminal when asked.

Flows report through `current()`; the CLI (`python -m flows.build_dataset`) installs a rich
display with `use(RichProgress())`, deployments keep the logging-only default. Updates come
from the task thread that drives the Ray pool, so the reporter is a plain module global
rather than a context variable (task threads do not inherit the CLI's context).
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time

STAGES = ("ingest", "units", "release", "training")


def _logger():
    try:
        from prefect.logging import get_run_logger

        return get_run_logger()
    except Exception:  # outside a flow or task run
        return logging.getLogger("flows.progress")


class LogProgress:
    """Log each stage's start and end, and unit progress at most every `every_s` seconds."""

    def __init__(self, every_s: float = 5.0):
        self.every_s = every_s
        self.totals: dict[str, int | None] = {}
        self.done: dict[str, int] = {}
        self._last = 0.0
        self._lock = threading.Lock()

    def start(self, stage: str, total: int | None = None, done: int = 0, note: str = "") -> None:
        with self._lock:
            self.totals[stage], self.done[stage] = total, done
        extra = f" ({note})" if note else ""
        _logger().info(f"{stage}: started, {done}/{total} done{extra}" if total is not None
                       else f"{stage}: started{extra}")

    def advance(self, stage: str, n: int = 1) -> None:
        with self._lock:
            self.done[stage] = self.done.get(stage, 0) + n
            now = time.monotonic()
            due = now - self._last >= self.every_s or self.done[stage] == self.totals.get(stage)
            if due:
                self._last = now
            msg = f"{stage}: {self.done[stage]}/{self.totals.get(stage)} done"
        if due:
            _logger().info(msg)

    def finish(self, stage: str, note: str = "") -> None:
        _logger().info(f"{stage}: finished" + (f" - {note}" if note else ""))


class RichProgress(LogProgress):
    """LogProgress plus a live rich display: one bar per stage with units done/total."""

    def __init__(self, console=None):
        super().__init__()
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.bars = Progress(SpinnerColumn(), TextColumn("{task.description:<9}"), BarColumn(),
                             MofNCompleteColumn(), TextColumn("{task.fields[note]}"), TimeElapsedColumn(),
                             console=console, transient=False)
        self.ids: dict[str, int] = {}

    def __enter__(self):
        self.bars.start()
        return self

    def __exit__(self, *exc):
        self.bars.stop()

    def start(self, stage, total=None, done=0, note=""):
        super().start(stage, total, done, note)
        self.ids[stage] = self.bars.add_task(stage, total=total, completed=done, note=note)

    def advance(self, stage, n=1):
        super().advance(stage, n)
        if stage in self.ids:
            self.bars.advance(self.ids[stage], n)

    def finish(self, stage, note=""):
        super().finish(stage, note)
        if stage in self.ids:
            task = self.bars.tasks[self.ids[stage]]
            total = task.total if task.total is not None else max(task.completed, 1)
            self.bars.update(self.ids[stage], total=total, completed=total, note=note)


_current: LogProgress = LogProgress()


def current() -> LogProgress:
    return _current


@contextlib.contextmanager
def use(progress: LogProgress):
    global _current
    previous, _current = _current, progress
    try:
        yield progress
    finally:
        _current = previous
