"""Ingest studies of a PACS (DICOMweb) as cases, through the manifest ingest.

One study becomes one case whose id is its StudyInstanceUID. The slice is the image instance the study's first
SEG (else RTSTRUCT, else SR with an image region) object refers to, and the region is that object's (:func:`~semgraph.exchange.pacs_studies.
study_slice`). The slice (``<SOPInstanceUID>.dcm``) and its mask (``<SOPInstanceUID>-roi.png``) are written to a
temporary folder and handed to :func:`semgraph.exchange.ingest.ingest_manifest` as one manifest record, which copies
them into ``DATA_DIR/images/<case id>/`` and writes the case in one store write: same rules as any ingest
(resumable, all or nothing per case). Cases already in the store are skipped before anything is retrieved.

What the graph keeps of the PACS: the StudyInstanceUID (the case id and the study's label), and the SOP Instance UID
in the name of the recorded image file. Not the PACS address and never its credentials.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from kg import Store
from semgraph.cohort.manifest import CaseRecord, Manifest
from semgraph.cohort.writers import write_mask
from semgraph.errors import InvalidInput, NotFound
from semgraph.exchange.ingest import ingest_manifest
from semgraph.exchange.ingest_report import IngestReport, existing_case_ids
from semgraph.exchange.pacs_studies import (
    PacsSlice,
    search_studies,
    studies_of_series,
    study_slice,
)
from semgraph.imaging import DEFAULT_MAX_SIZE
from semgraph.terms.models import TermModels

__all__ = ["ingest_pacs"]


def _record(pacs_slice: PacsSlice, folder: Path) -> CaseRecord:
    """The manifest record of a retrieved slice, its files written into ``folder``."""
    ds = pacs_slice.dataset
    image = folder / f"{pacs_slice.sop_uid}.dcm"
    mask = folder / f"{pacs_slice.sop_uid}-roi.png"
    ds.save_as(image, enforce_file_format=True)
    write_mask(mask, pacs_slice.mask)
    date = str(ds.get("StudyDate", "") or "")
    age = str(ds.get("PatientAge", "") or "")
    metadata = {
        "study_uid": pacs_slice.study_uid,
        "study_date": f"{date[:4]}-{date[4:6]}-{date[6:8]}" if len(date) == 8 and date.isdigit() else None,
        "age": int(age[:3]) if age[:3].isdigit() and age.endswith("Y") else None,
        "sex": str(ds.get("PatientSex", "") or "") or None,
    }
    patient = str(ds.get("PatientID", "") or "") or f"{pacs_slice.study_uid}-patient"
    return CaseRecord(case_id=pacs_slice.study_uid, image=image, mask=mask, diagnosis="", patient_id=patient,
                      metadata=metadata, reader_labels={}, true_labels={})


def ingest_pacs(store: Store, client, data_dir, *, study_uids: Sequence[str] = (), series_uids: Sequence[str] = (),
                patient: str | None = None, date_range=None, model: TermModels | None = None,
                collection: str | None = None,
                new_collection: Mapping | None = None, max_size: int = DEFAULT_MAX_SIZE,
                progress: bool = False) -> IngestReport:
    """Ingest the studies of the PACS behind ``client`` that match the filters (see
    :func:`~semgraph.exchange.pacs_studies.search_studies`; ``series_uids`` keeps the studies that hold those series)
    into ``collection``; ``model`` adds predicted likelihoods. A study or series given by UID that the PACS does not
    have is NotFound; a study without a SEG, RTSTRUCT or SR region
    (or with one that cannot be read) is reported as failed. A PACS that fails mid-way raises PacsError; the cases
    written before stay, and a re-run skips them."""
    studies = search_studies(client, patient=patient, date_range=date_range, study_uids=study_uids)
    missing = sorted(set(study_uids) - {s.study_uid for s in studies})
    if missing:
        raise NotFound(f"study {missing[0]} is not on the PACS {client.base_url}")
    if series_uids:
        holding = set(studies_of_series(client, series_uids))
        studies = [s for s in studies if s.study_uid in holding]
    existing = existing_case_ids(store)
    skipped = [s.study_uid for s in studies if s.study_uid in existing]
    failed: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="semgraph-pacs-") as tmp:
        records = []
        for study in (s for s in studies if s.study_uid not in existing):
            folder = Path(tmp) / f"study{len(records) + len(failed)}"
            folder.mkdir()
            try:
                records.append(_record(study_slice(client, study.study_uid, max_size=max_size), folder))
            except (InvalidInput, NotFound) as exc:
                failed.append((study.study_uid, exc.message))
        report = ingest_manifest(store, Manifest(path=None, params={}, term_iris=(), cases=records), data_dir,
                                 model=model, copy_outside=True, collection=collection,
                                 new_collection=new_collection, progress=progress)
    report.skipped[:0] = skipped
    report.failed[:0] = failed
    return report
