"""Progress of long commands: a bar with rate and ETA on a terminal (rich), plain log lines elsewhere."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..core.progress import ProgressFn

log = logging.getLogger("tickvault.progress")
LOG_EVERY_S = 10.0


@contextmanager
def progress(what: str, unit: str, *, terminal: bool | None = None) -> Iterator[ProgressFn]:
    """A ``(done, total)`` callback for ``what``: a rich progress bar on stderr when it is a terminal,
    otherwise a log line at most every ten seconds (and one at the end) with rate and ETA."""
    on_terminal = sys.stderr.isatty() if terminal is None else terminal
    if on_terminal:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task: Task) -> Text:
                return Text(f"{task.speed or 0.0:>7.1f} {unit}/s")

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), Rate(), TimeElapsedColumn(), TextColumn("ETA"),
                   TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
            task = bar.add_task(what, total=None)

            def show(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            yield show
        return
    started = time.monotonic()
    last = [started, -1, 0]

    def lines(done: int, total: int) -> None:
        now = time.monotonic()
        last[1], last[2] = done, total
        if now - last[0] >= LOG_EVERY_S:
            last[0] = now
            log.info("%s", describe(what, unit, done, total, now - started))

    yield lines
    if last[1] >= 0:
        log.info("%s", describe(what, unit, int(last[1]), int(last[2]), time.monotonic() - started))


def describe(what: str, unit: str, done: int, total: int, seconds: float) -> str:
    """'rebuild hot: 120/400 minutes (30%), 12.0 minutes/s, ETA 23s'."""
    rate = done / seconds if seconds > 0 else 0.0
    share = f" ({100 * done // total}%)" if total else ""
    eta = f", ETA {round((total - done) / rate)}s" if rate > 0 and total >= done else ""
    return f"{what}: {done}/{total} {unit}{share}, {rate:.1f} {unit}/s{eta}"
