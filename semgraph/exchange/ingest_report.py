"""What an ingest did (:class:`IngestReport`), and which cases the store already holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kg import Store
from kg.namespaces import ANNOTATIONS_GRAPH

__all__ = ["DEFAULT_BATCH", "IngestReport", "existing_case_ids"]

#: Cases written per store transaction by the ingests (manifest and reader CSV).
DEFAULT_BATCH = 200


@dataclass
class IngestReport:
    """What an ingest did: ids ingested, ids already in the store, (id, reason) of failed cases, and the image and
    mask files copied into the data folder because they were outside it
    (:func:`semgraph.exchange.case_files.keep_in_data_folder`)."""

    ingested: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    copied: list[Path] = field(default_factory=list)
    collection: str | None = None

    def summary(self) -> str:
        into = f" into collection {self.collection}" if self.collection else ""
        text = (f"ingested {len(self.ingested)}{into}, skipped (already in the store) {len(self.skipped)}, "
                f"failed {len(self.failed)}")
        return text + (f", copied into the data folder {len(self.copied)}" if self.copied else "")


def existing_case_ids(store: Store) -> set[str]:
    """Ids of every case in the store (one query)."""
    rows = store.select("SELECT ?id WHERE { GRAPH $g { ?c a sg:Case ; rdfs:label ?id } }", {"g": ANNOTATIONS_GRAPH})
    return {str(r["id"]) for r in rows}
