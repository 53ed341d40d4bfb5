"""Progress of a long loop: a tqdm bar on a terminal, plain lines anywhere else.

A tqdm bar redraws itself with carriage returns, which fills a server log, a CI log or a job log with one
unreadable line. :func:`track` therefore draws the bar only when the stream is a terminal; otherwise it writes a
whole line (``ingest: 30/72 cases (42%)``) each time another ``every_percent`` of the work is done or
``every_seconds`` have passed since the last line, and one line at the end. Every long command uses it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

from tqdm import tqdm

__all__ = ["track"]

T = TypeVar("T")


def track(items: Iterable[T], *, desc: str, unit: str = "item", total: int | None = None, enabled: bool = True,
          stream: TextIO | None = None, every_percent: float = 10.0, every_seconds: float = 10.0) -> Iterator[T]:
    """Yield ``items`` unchanged while reporting progress on ``stream`` (default: standard error).

    ``unit`` names one item (``"case"``); the lines add an ``s`` for any other count. ``total`` defaults to ``len(items)`` when it has one; without a total, lines are written by time only.
    ``enabled=False`` reports nothing. The lines end in ``\\n`` and never contain ``\\r``.
    """
    out = sys.stderr if stream is None else stream
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if not enabled:
        yield from items
    elif getattr(out, "isatty", lambda: False)():
        yield from tqdm(items, desc=desc, unit=unit, total=total, file=out)
    else:
        yield from _lines(items, desc, unit, total, out, every_percent, every_seconds)


def _lines(items: Iterable[T], desc: str, unit: str, total: int | None, out: TextIO, every_percent: float,
           every_seconds: float) -> Iterator[T]:
    start = last = time.monotonic()
    done, next_percent = 0, every_percent

    def count(n: int) -> str:
        return f"{n} {unit}" if n == 1 else f"{n} {unit}s"

    def write(text: str) -> None:
        out.write(f"{desc}: {text}\n")
        out.flush()

    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        percent = 100.0 * done / total if total else None
        if (percent is not None and percent >= next_percent and done < total) or now - last >= every_seconds:
            write(f"{done}/{count(total)} ({percent:.0f}%)" if percent is not None else count(done))
            last = now
            if percent is not None:
                while next_percent <= percent:
                    next_percent += every_percent
    write(f"done, {count(done)} in {time.monotonic() - start:.1f} s")
