"""semgraph.progress.track: whole lines when the stream is not a terminal, a tqdm bar when it is."""

from __future__ import annotations

import io

from semgraph.progress import track


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_every_quarter_and_a_closing_line():
    out = io.StringIO()
    assert list(track(range(20), desc="ingest", unit="case", stream=out, every_percent=25,
                      every_seconds=3600)) == list(range(20))
    lines = out.getvalue().splitlines()
    assert lines[:3] == ["ingest: 5/20 cases (25%)", "ingest: 10/20 cases (50%)", "ingest: 15/20 cases (75%)"]
    assert len(lines) == 4 and lines[3].startswith("ingest: done, 20 cases in ") and "\r" not in out.getvalue()


def test_without_a_total_lines_come_by_time_and_disabled_writes_nothing():
    out = io.StringIO()
    assert list(track((i for i in range(3)), desc="annotate", unit="case", stream=out, every_seconds=0)) == [0, 1, 2]
    assert out.getvalue().splitlines()[:3] == ["annotate: 1 case", "annotate: 2 cases", "annotate: 3 cases"]
    quiet = io.StringIO()
    assert list(track(range(3), desc="x", stream=quiet, enabled=False)) == [0, 1, 2]
    assert quiet.getvalue() == ""


def test_a_terminal_gets_the_tqdm_bar():
    out = Terminal()
    assert list(track(range(3), desc="cohort", unit="case", stream=out)) == [0, 1, 2]
    assert "\r" in out.getvalue() and "3/3" in out.getvalue()
