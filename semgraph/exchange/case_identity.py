"""Is an incoming case the one the store already holds under its id, or a different case that reuses the id?

Ingest skips the first (a re-run of the same source) and refuses the second: a new cohort numbered like an old one
must never be taken for it. Two cases are the same when their patient, study, diagnosis and the study's metadata
agree and their image and mask files have the same bytes. The stored files are the ones the case records
(``sg:imageFile`` / ``sg:maskFile``); when such a file is gone or outside the data folder (an old or moved data
folder) only the other fields are compared, so old stores stay readable with no new triple.
"""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

from semgraph.errors import InvalidInput
from semgraph.files import data_file
from semgraph.graph.casegraph import Case

__all__ = ["case_differences"]

#: The fields compared, with the words that name them in a message.
_FIELDS = (("patient_id", "patient"), ("study_id", "study"), ("diagnosis", "diagnosis"),
           ("study_date", "study date"), ("age", "age"), ("sex", "sex"), ("contrast_phase", "contrast phase"),
           ("liver_segment", "liver segment"))
_FILES = (("image_file", "image"), ("mask_file", "mask"))


def case_differences(stored: Case, incoming: Case, data_dir, *, only_given: bool = False) -> list[str]:
    """What differs between ``stored`` (read from the store) and ``incoming`` (its files as paths that exist), one
    phrase each (``diagnosis: cyst in the store, metastasis in the input``); empty when they are the same case.

    ``only_given`` compares only the fields ``incoming`` has (not None), for sources that may leave some out.
    """
    found = []
    for name, label in _FIELDS:
        old, new = getattr(stored, name), getattr(incoming, name)
        if old != new and not (only_given and new is None):
            found.append(f"{label}: {_text(old)} in the store, {_text(new)} in the input")
    for name, label in _FILES:
        old, new = getattr(stored, name), getattr(incoming, name)
        if only_given and new is None:
            continue
        if (old is None) != (new is None):
            found.append(f"{label}: {'none' if old is None else 'a file'} in the store, "
                         f"{'none' if new is None else 'a file'} in the input")
        elif old is not None and not _same_bytes(old, Path(new), data_dir):
            found.append(f"{label}: the file {new} has other content than the stored case's")
    return found


def _text(value) -> str:
    return "(none)" if value is None else str(value)


def _same_bytes(recorded: str, incoming: Path, data_dir) -> bool:
    """Whether the file a case records has the bytes of ``incoming``; True when the recorded file cannot be read
    (nothing to compare with)."""
    try:
        kept = data_file(recorded, data_dir)
    except InvalidInput:
        return True
    if not kept.is_file():
        return True
    if os.path.samefile(kept, incoming):
        return True
    return filecmp.cmp(kept, incoming, shallow=False)
