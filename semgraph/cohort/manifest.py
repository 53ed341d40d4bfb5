"""The cohort manifest: one JSON file and one CSV file listing every case.

Both are written row by row while the cohort is generated (nothing is accumulated), and both carry the same
information: case id, image and mask paths relative to the manifest, patient and study metadata, the diagnosis,
and two 0/1 labels per vocabulary term IRI: the reader's (with reader noise) and the noiseless ground truth.
CSV label columns are named ``reader:<IRI>`` and ``true:<IRI>``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from ontology.paper_terms import paper_terms
from semgraph.errors import InvalidInput

MANIFEST_FORMAT = "semgraph-cohort"
MANIFEST_VERSION = 1
BASE_COLUMNS = (
    "case_id", "image", "mask", "image_format", "patient_id", "diagnosis", "age", "sex", "study_date",
    "study_uid", "series_uid", "sop_uid", "study_number", "lesion_number", "phase", "liver_segment",
    "diameter_mm", "centre_row", "centre_col", "pixel_spacing_mm", "appearance_profile",
)
_INT_COLUMNS = {"age", "study_number", "lesion_number", "centre_row", "centre_col"}
_FLOAT_COLUMNS = {"diameter_mm", "pixel_spacing_mm"}


@dataclass
class CaseRecord:
    """One manifest row; ``image`` and ``mask`` are absolute paths once read."""

    case_id: str
    image: Path
    mask: Path
    diagnosis: str
    patient_id: str
    metadata: dict
    reader_labels: dict[str, int]
    true_labels: dict[str, int]


@dataclass
class Manifest:
    """A read manifest: generation parameters, the term IRIs in label order, and the cases."""

    path: Path
    params: dict
    term_iris: tuple[str, ...]
    cases: list[CaseRecord] = field(default_factory=list)


def case_row(case, image_rel: str, mask_rel: str, image_format: str) -> dict:
    """The manifest entry of a generated case (JSON form: labels as ``{IRI: 0/1}`` dicts)."""
    meta = case.metadata.as_dict()
    return {
        "case_id": case.case_id,
        "image": image_rel,
        "mask": mask_rel,
        "image_format": image_format,
        "diagnosis": case.diagnosis,
        **meta,
        "reader_labels": case.labels("reader"),
        "true_labels": case.labels("true"),
    }


class ManifestWriter:
    """Streams manifest rows to ``manifest.json`` and ``manifest.csv`` in ``out_dir``; use as a context manager."""

    def __init__(self, out_dir: Path, params: dict):
        self.out_dir = Path(out_dir)
        self.iris = tuple(t.iri for t in paper_terms())
        self.json_path = self.out_dir / "manifest.json"
        self.csv_path = self.out_dir / "manifest.csv"
        self._params = params
        self._n = 0

    def __enter__(self) -> Self:
        self._json = open(self.json_path, "w", encoding="utf-8", newline="\n")
        self._csv_file = open(self.csv_path, "w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._csv_file, lineterminator="\n")
        self._csv.writerow([*BASE_COLUMNS, *(f"reader:{i}" for i in self.iris), *(f"true:{i}" for i in self.iris)])
        terms = [
            {"iri": t.iri, "rid": t.rid, "label": t.label, "paper_label": t.paper_label, "category": t.category}
            for t in paper_terms()
        ]
        head = json.dumps({"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, **self._params, "terms": terms},
                          indent=1)
        self._json.write(head[:-2] + ',\n "cases": [')
        return self

    def add(self, row: dict) -> None:
        self._json.write(("\n  " if self._n == 0 else ",\n  ") + json.dumps(row, sort_keys=False))
        self._csv.writerow(
            [row[c] for c in BASE_COLUMNS]
            + [row["reader_labels"][i] for i in self.iris]
            + [row["true_labels"][i] for i in self.iris]
        )
        self._n += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        self._json.write("\n ]\n}\n")
        self._json.close()
        self._csv_file.close()


def _record(row: dict, root: Path) -> CaseRecord:
    meta = {k: row[k] for k in BASE_COLUMNS if k not in {"case_id", "image", "mask", "diagnosis", "patient_id"}}
    return CaseRecord(
        case_id=row["case_id"],
        image=(root / row["image"]).resolve(),
        mask=(root / row["mask"]).resolve(),
        diagnosis=row["diagnosis"],
        patient_id=row["patient_id"],
        metadata=meta,
        reader_labels={k: int(v) for k, v in row["reader_labels"].items()},
        true_labels={k: int(v) for k, v in row["true_labels"].items()},
    )


def read_manifest(path: str | Path) -> Manifest:
    """Read ``manifest.json`` or ``manifest.csv``; paths in the records are resolved against its folder.

    Raises
    ------
    InvalidInput
        If the file is missing, has another extension, or is not a semgraph cohort manifest.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"manifest {path} does not exist")
    root = path.parent
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise InvalidInput(f"manifest {path} is not valid JSON: {e}") from e
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise InvalidInput(f"{path} is not a {MANIFEST_FORMAT} manifest")
        params = {k: v for k, v in data.items() if k not in {"cases", "terms"}}
        iris = tuple(t["iri"] for t in data["terms"])
        return Manifest(path, params, iris, [_record(r, root) for r in data["cases"]])
    if path.suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            cols = reader.fieldnames or []
            if list(cols[: len(BASE_COLUMNS)]) != list(BASE_COLUMNS):
                raise InvalidInput(f"{path} is not a {MANIFEST_FORMAT} manifest (unexpected columns)")
            iris = tuple(c.split(":", 1)[1] for c in cols if c.startswith("reader:"))
            cases = []
            for r in reader:
                row = {
                    c: int(r[c]) if c in _INT_COLUMNS else float(r[c]) if c in _FLOAT_COLUMNS else r[c]
                    for c in BASE_COLUMNS
                }
                row["reader_labels"] = {i: int(r[f"reader:{i}"]) for i in iris}
                row["true_labels"] = {i: int(r[f"true:{i}"]) for i in iris}
                cases.append(_record(row, root))
        return Manifest(path, {}, iris, cases)
    raise InvalidInput(f"manifest {path}: expected a .json or .csv file")
