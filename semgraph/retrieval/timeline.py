"""Patient timeline and temporal filters: a case's earlier and later studies of the same patient.

Pure helpers work on :class:`semgraph.graph.casegraph.Case` lists (:func:`before`, :func:`after`, :func:`within_months`,
:func:`parse_temporal`); :func:`patient_timeline` reads the cases and their likelihoods from a store. Cases without a
study date are never selected by a date filter and sort last in a timeline.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from semgraph.errors import InvalidInput, NotFound
from semgraph.graph.casegraph import Case, read_cases, read_likelihoods

__all__ = ["TemporalFilter", "Timeline", "TimelineEntry", "add_months", "after", "as_date", "before", "build_timeline",
           "parse_temporal", "patient_timeline", "temporal_filter", "within_months"]


def as_date(value, name: str = "date") -> dt.date:
    """``value`` (a date, a datetime or an ISO ``YYYY-MM-DD`` text) as a date; :class:`InvalidInput` otherwise."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise InvalidInput(f"{name} must be a date like 2021-03-04, got {value!r}")


def add_months(date, months: int) -> dt.date:
    """``date`` shifted by ``months`` calendar months (the day is clipped to the month's length).

    >>> add_months(dt.date(2021, 1, 31), 1)
    datetime.date(2021, 2, 28)
    """
    d = as_date(date)
    if isinstance(months, bool) or not isinstance(months, int):
        raise InvalidInput(f"months must be an integer, got {months!r}")
    total = d.year * 12 + (d.month - 1) + months
    year, month = divmod(total, 12)
    if not 1 <= year <= 9999:
        raise InvalidInput("the shifted date is out of range")
    return dt.date(year, month + 1, min(d.day, calendar.monthrange(year, month + 1)[1]))


def before(cases: Iterable[Case], date, *, inclusive: bool = False) -> list[Case]:
    """Cases whose study date is before ``date`` (on it too when ``inclusive``)."""
    d = as_date(date)
    return [c for c in cases if c.study_date is not None and (c.study_date < d or (inclusive and c.study_date == d))]


def after(cases: Iterable[Case], date, *, inclusive: bool = False) -> list[Case]:
    """Cases whose study date is after ``date`` (on it too when ``inclusive``)."""
    d = as_date(date)
    return [c for c in cases if c.study_date is not None and (c.study_date > d or (inclusive and c.study_date == d))]


def within_months(cases: Iterable[Case], date, months: int, *, direction: str = "after") -> list[Case]:
    """Cases dated within ``months`` months of ``date``: ``'after'`` (follow-up, ``date < d <= date + N``),
    ``'before'`` (``date - N <= d < date``) or ``'both'``."""
    if direction not in ("after", "before", "both"):
        raise ValueError(f"Invalid direction: {direction!r}. The supported values are 'after', 'before', 'both'.")
    if isinstance(months, bool) or not isinstance(months, int) or months < 0:
        raise InvalidInput(f"months must be a non-negative integer, got {months!r}")
    d = as_date(date)
    lo, hi = add_months(d, -months), add_months(d, months)
    out = []
    for c in cases:
        s = c.study_date
        if s is None:
            continue
        if (direction in ("after", "both") and d < s <= hi) or (direction in ("before", "both") and lo <= s < d):
            out.append(c)
    return out


_TEMPORAL = re.compile(
    r"^\s*(?:(?P<op>before|after)\s+(?P<date>\d{4}-\d{2}-\d{2})"
    r"|(?:follow-?up\s+)?within\s+(?P<n>\d{1,3})\s+months?(?:\s+(?:of|after)\s+(?P<ref>\d{4}-\d{2}-\d{2}))?)\s*$",
    re.IGNORECASE)


@dataclass(frozen=True)
class TemporalFilter:
    """A parsed temporal filter: ``op`` is 'before', 'after' or 'within'; ``months`` for 'within'."""

    op: str
    date: dt.date | None
    months: int | None = None

    def apply(self, cases: Iterable[Case], reference=None) -> list[Case]:
        """Apply to ``cases``; 'within' without its own date uses ``reference`` (e.g. the query case's date)."""
        if self.op == "before":
            return before(cases, self.date)
        if self.op == "after":
            return after(cases, self.date)
        ref = self.date if self.date is not None else reference
        if ref is None:
            raise InvalidInput("'within N months' needs a reference date (of a case or 'within N months of DATE')")
        return within_months(cases, ref, self.months)


def parse_temporal(text: str) -> TemporalFilter:
    """Parse ``before 2020-01-01``, ``after 2020-01-01``, ``within 6 months [of 2020-01-01]`` or
    ``follow-up within 6 months``."""
    m = _TEMPORAL.match(text) if isinstance(text, str) else None
    if m is None:
        raise InvalidInput(f"unrecognised temporal filter {text!r}; use 'before DATE', 'after DATE' or "
                           "'follow-up within N months [of DATE]'")
    if m.group("op"):
        return TemporalFilter(m.group("op").lower(), as_date(m.group("date")))
    ref = as_date(m.group("ref")) if m.group("ref") else None
    return TemporalFilter("within", ref, int(m.group("n")))


def temporal_filter(cases: Iterable[Case], text: str, reference=None) -> list[Case]:
    """Shortcut: ``parse_temporal(text).apply(cases, reference)``."""
    return parse_temporal(text).apply(cases, reference)


@dataclass(frozen=True)
class TimelineEntry:
    """One study of the patient: the case, its likelihoods (term IRI → value) and days from the focus case."""

    case: Case
    likelihoods: dict
    days: int | None  # None when either date is unknown

    def as_dict(self) -> dict:
        c = self.case
        return {"case_id": c.case_id, "study_id": c.study_id, "study_date": c.study_date.isoformat()
                if c.study_date else None, "diagnosis": c.diagnosis, "days": self.days,
                "likelihoods": self.likelihoods}


@dataclass(frozen=True)
class Timeline:
    """A case and the same patient's other cases, split by date."""

    focus: TimelineEntry
    earlier: tuple[TimelineEntry, ...]
    same_day: tuple[TimelineEntry, ...]
    later: tuple[TimelineEntry, ...]
    undated: tuple[TimelineEntry, ...]

    def as_dict(self) -> dict:
        return {k: (v.as_dict() if isinstance(v, TimelineEntry) else [e.as_dict() for e in v])
                for k, v in self.__dict__.items()}


def build_timeline(cases: Sequence[Case], case_id: str, likelihoods: dict[str, dict] | None = None) -> Timeline:
    """The timeline of ``case_id`` from a list of cases (pure; ``likelihoods``: id → {term: value})."""
    by_id = {c.case_id: c for c in cases}
    if case_id not in by_id:
        raise NotFound(f"no case {case_id!r}")
    focus = by_id[case_id]
    lk = likelihoods or {}

    def entry(c: Case) -> TimelineEntry:
        days = (c.study_date - focus.study_date).days if c.study_date and focus.study_date else None
        return TimelineEntry(c, dict(lk.get(c.case_id, {})), days)

    others = sorted((c for c in cases if c.patient_id == focus.patient_id and c.case_id != case_id),
                    key=lambda c: (c.study_date is None, c.study_date or dt.date.min, c.case_id))
    entries = [entry(c) for c in others]
    return Timeline(
        entry(focus),
        tuple(e for e in entries if e.days is not None and e.days < 0),
        tuple(e for e in entries if e.days == 0),
        tuple(e for e in entries if e.days is not None and e.days > 0),
        tuple(e for e in entries if e.days is None),
    )


def patient_timeline(store, case_id: str, terms: Sequence[str] | None = None, *,
                     kinds: Sequence[str] = ("predicted", "reader")) -> Timeline:
    """The timeline of ``case_id`` read from the store, with likelihoods of ``terms`` (default: paper terms).

    Raises NotFound for an unknown case.
    """
    if terms is None:
        from ontology.paper_terms import paper_terms

        terms = [t.iri for t in paper_terms()]
    cases = read_cases(store)
    ids, A = read_likelihoods(store, list(terms), kinds=tuple(kinds))
    lk = {i: {t: float(v) for t, v in zip(terms, row)} for i, row in zip(ids, A)}
    return build_timeline(cases, case_id, lk)
