"""Progress of long work as a plain callback: ``on_progress(done, total)``, in the caller's units.

Library code reports through it (and never prints); the CLI turns it into a bar or log lines
(``cli/progress.py``). None means nobody is watching.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[int, int], None]


def report(on_progress: ProgressFn | None, done: int, total: int) -> None:
    """Call ``on_progress`` when someone watches."""
    if on_progress is not None:
        on_progress(done, total)
