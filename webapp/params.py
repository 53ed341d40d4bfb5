"""Request parameters checked and converted: every bad value becomes :class:`InvalidInput` (400) with a message that
names the parameter and the value it got, never a 500 from a stray ``ValueError``.

The pages and the JSON API share these, so a parameter is read the same way in both.
"""

from __future__ import annotations

import datetime as dt
import json
import re

from semgraph.config import DEFAULT_K, setting
from semgraph.errors import InvalidInput
from semgraph.retrieval.engine import Filters, parse_filter

MAX_K = setting("MAX_K").default

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# --------------------------------------------------------------------------------------------------- values


def whole_number(value, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` (a text or a number) as an int, optionally at least ``minimum`` (and at most ``maximum``)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a whole number, got {value!r}") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise InvalidInput(f"{name} must be {bounds}, got {number}")
    return number


def number(value, name: str) -> float:
    """``value`` (a text or a number) as a float."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number, got {value!r}") from None


def iso_date(value: str, name: str) -> dt.date:
    """``value`` as a date written like 2026-03-01."""
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a date like 2026-03-01, got {value!r}") from None


def check_id(value: str, what: str) -> str:
    """``value`` if it is a valid id of a case, session ... (letters, digits, '-' and '_', at most 64)."""
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidInput(f"{what} {value!r} is not a valid id (letters, digits, '-' and '_' only)")
    return value


# --------------------------------------------------------------------------------------------------- retrieval


def parse_k(value, default: int = DEFAULT_K) -> int:
    """The number of results ``k`` (``default`` when not given)."""
    if value in (None, ""):
        return default
    return whole_number(value, "k", minimum=1, maximum=MAX_K)


def parse_filters(texts) -> tuple[list[str], Filters]:
    """Filter texts (``diagnosis=cyst``, ``term:hypodense>0.5`` ...) → (cleaned texts, Filters)."""
    if texts is None:
        return [], Filters()
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise InvalidInput("filters must be a list of texts such as ['diagnosis=cyst', 'term:hypodense>0.5']")
    clean, out = [], Filters()
    for text in texts:
        if not isinstance(text, str):
            raise InvalidInput(f"filter {text!r} is not a text")
        if text.strip():
            out = parse_filter(text.strip(), out)
            clean.append(text.strip())
    return clean, out


def parse_json_filters(text: str | None) -> list | None:
    """The ``filters`` field of a multipart form: a JSON list of filter texts (None when empty)."""
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise InvalidInput("filters must be a JSON list of filter texts such as "
                           "[\"diagnosis=cyst\", \"term:hypodense>0.5\"]") from None


#: The filter fields of the search forms (and query parameters of the text search), as filters_from_form reads them.
FILTER_FIELDS = ("diagnosis", "term", "term_threshold", "age_min", "age_max", "sex", "date_from", "date_to", "phase",
                 "segment")


def filters_from_form(form) -> list[str]:
    """The search form's filter fields (:data:`FILTER_FIELDS`) as filter texts (empty fields are skipped); a
    malformed number or date is an InvalidInput naming its field."""
    for name in ("age_min", "age_max"):
        if form.get(name, "").strip():
            whole_number(form.get(name).strip(), name, minimum=0)
    for name in ("date_from", "date_to"):
        if form.get(name, "").strip():
            iso_date(form.get(name).strip(), name)
    if form.get("term_threshold", "").strip():
        raw = form.get("term_threshold").strip()
        if not 0.0 <= number(raw, "term_threshold") <= 1.0:
            raise InvalidInput(f"term_threshold must be a number in [0, 1], got {raw!r}")
    texts = []
    diagnoses = [d for d in form.getlist("diagnosis") if d.strip()]
    if diagnoses:
        texts.append("diagnosis=" + ",".join(diagnoses))
    term, threshold = form.get("term", "").strip(), form.get("term_threshold", "").strip()
    if term:
        texts.append(f"term:{term}>{threshold or '0.5'}")
    lo, hi = form.get("age_min", "").strip(), form.get("age_max", "").strip()
    if lo or hi:
        texts.append(f"age={lo}-{hi}")
    for name, key in (("sex", "sex"), ("phase", "phase"), ("segment", "segment")):
        value = form.get(name, "").strip()
        if value:
            texts.append(f"{key}={value}")
    d0, d1 = form.get("date_from", "").strip(), form.get("date_to", "").strip()
    if d0 or d1:
        texts.append(f"date={d0}..{d1}")
    return texts


# --------------------------------------------------------------------------------------------------- sessions


def parse_round(value) -> int | None:
    """The optional ``round`` of a write: the number of the session's last round as the client saw it."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():  # a form field
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise InvalidInput(f"round must be the number of the session's last round you saw (0 before any feedback), "
                       f"got {value!r}")


def parse_shown_round(value) -> int | None:
    """The optional ``round`` of a page showing a session after one of its rounds (None: the current round)."""
    return None if value in (None, "") else whole_number(value, "round")


# --------------------------------------------------------------------------------------------------- images


def parse_hu_range(lo, hi) -> tuple[float, float] | None:
    """The HU values of a PNG's darkest and brightest pixel (None when neither is given)."""
    if lo in (None, "") and hi in (None, ""):
        return None
    try:
        low, high = float(lo), float(hi)
    except (TypeError, ValueError):
        raise InvalidInput("give the HU range of a PNG as two numbers (darkest and brightest pixel value)") from None
    if not low < high:
        raise InvalidInput(f"the HU range must go from low to high, got {low:g} … {high:g}")
    return (low, high)


def parse_slice_index(value) -> int | None:
    """The optional slice of an uploaded volume."""
    return None if value in (None, "") else whole_number(value, "the slice index")
