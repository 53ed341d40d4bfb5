"""Retrieval results out as DICOM: a TID 1500 measurement report (Comprehensive 3D SR) and the ROI as a SEG.

What the report holds (built with highdicom, which checks the templates while building):

* the source image (the case's DICOM image, see :mod:`semgraph.exchange.dicom_source` for why NIfTI and PNG cases
  are refused) as evidence, so the SR joins its patient and study;
* one measurement group for the ROI: with a SEG, a planar-ROI group (TID 1410) referencing the SEG's segment; without,
  a TID 1501 group naming the source image. In it, for every term of the vocabulary:
  a qualitative evaluation (TID 1500 row "Qualitative Evaluations": name = the term, value = SCT *Present* when its
  likelihood is at least :data:`PRESENT_AT`, else SCT *Absent*) and a numeric measurement (name = the term, value =
  the likelihood, unit UCUM ``1`` "no units"); and, when a term model made the likelihoods, the model version as
  the group's algorithm identification (name :data:`ALGORITHM_NAME`);
* the similar cases retrieved (HSBD, nearest first) in a container of the local coding scheme ``99SEMGRAPH``
  after the measurements: per case its id (TEXT), its HSBD distance (NUM) and, when its image is DICOM, a reference
  to that image (IMAGE; the instance is then listed as other evidence of the SR).

Terms are coded by their IRI: RadLex ``http://radlex.org/RID/RIDnnnn`` is ``(RIDnnnn, RADLEX, label)``, NCIt and
SNOMED CT likewise (the prefixes of :data:`semgraph.exchange.aim_codes.CODE_SYSTEM_IRIS`); a term of another IRI is
refused. Nothing is written to the graph by an export.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from pydicom import Dataset

from kg import Store
from kg.namespaces import ANNOTATIONS_GRAPH, ID
from semgraph.config import DEFAULT_K
from semgraph.errors import InvalidInput, PacsError
from semgraph.exchange.aim_codes import CODE_SYSTEM_IRIS
from semgraph.exchange.dicom_seg import (
    MANUFACTURER,
    SEGMENT_NUMBER,
    roi_segmentation,
    software_version,
)
from semgraph.exchange.dicom_source import (
    DicomSource,
    case_source,
    dicom_header,
    query_source,
)
from semgraph.exchange.pacs import pacs_call
from semgraph.files import write_atomically
from semgraph.graph.casegraph import case_iri

__all__ = ["ALGORITHM_NAME", "PRESENT_AT", "PRIVATE_SCHEME", "DicomExport", "ReportContent", "SimilarCase",
           "build_report", "case_report", "export_case", "export_query", "term_code"]

#: Likelihood from which a term is reported as present.
PRESENT_AT = 0.5
#: The algorithm name of the measurement group when a term model made the likelihoods.
ALGORITHM_NAME = "semgraph term model"
#: The local coding scheme of the similar-case items (DICOM reserves designators starting with 99 for local codes).
PRIVATE_SCHEME = "99SEMGRAPH"
#: Code-system names of CODE_SYSTEM_IRIS → the DICOM coding scheme designator.
_DESIGNATORS = {"radlex": "RADLEX", "nci": "NCIt", "ncit": "NCIt", "sct": "SCT"}
_MEANING_MAX = 64  # Code Meaning is an LO


def _local(code: str, meaning: str):
    from highdicom.sr import CodedConcept

    return CodedConcept(value=code, scheme_designator=PRIVATE_SCHEME, meaning=meaning)


@dataclass(frozen=True)
class SimilarCase:
    """A retrieved case: its id, HSBD distance to the query, and its DICOM header (None: its image is not DICOM)."""

    case_id: str
    distance: float
    image: object | None = None  # pydicom.Dataset without pixel data


@dataclass(frozen=True)
class ReportContent:
    """What a report says about one ROI: the vocabulary (term IRIs and labels), the likelihoods in that order, the
    term-model version (None: not a model's, e.g. a reader's), the similar cases, and a short name of the subject
    (the tracking identifier: ``case C1`` or ``query``)."""

    terms: tuple[str, ...]
    labels: tuple[str, ...]
    likelihoods: tuple[float, ...]
    model_version: str | None
    similar: tuple[SimilarCase, ...]
    subject: str


@dataclass(frozen=True)
class DicomExport:
    """An SR and, when asked for, the SEG it references."""

    report: object  # highdicom.sr.Comprehensive3DSR
    segmentation: object | None = None  # highdicom.seg.Segmentation

    @property
    def datasets(self) -> list:
        """The objects to store, referenced ones first (SEG, then SR)."""
        return [d for d in (self.segmentation, self.report) if d is not None]

    def write(self, folder) -> list[Path]:
        """Write ``<SOP instance UID>.dcm`` files into ``folder`` (created; each file written atomically)."""
        written = []
        for dataset in self.datasets:
            path = Path(folder) / f"{dataset.SOPInstanceUID}.dcm"
            write_atomically(path, lambda f, d=dataset: d.save_as(f, enforce_file_format=True))
            written.append(path)
        return written

    def stow(self, client) -> list[str]:
        """Store the objects in the PACS of ``client`` (:func:`semgraph.exchange.pacs.connect`) with STOW-RS, one
        request; returns their SOP instance UIDs. A refusal or a failure of the PACS is a
        :class:`~semgraph.errors.PacsError`; nothing is written to the graph either way."""
        uids = [str(d.SOPInstanceUID) for d in self.datasets]
        answer = pacs_call(client, f"store {len(uids)} DICOM object(s) with STOW-RS",
                           lambda: client.store_instances(datasets=self.datasets))
        failed = getattr(answer, "FailedSOPSequence", None) or []  # the answer is a pydicom Dataset
        if failed:
            raise PacsError(f"the PACS at {client.base_url} refused {len(failed)} of the {len(uids)} DICOM object(s) "
                            "sent with STOW-RS")
        return uids


def term_code(iri: str, label: str):
    """A term IRI as a ``highdicom.sr.CodedConcept`` (module notes); :class:`InvalidInput` for an IRI of no known
    code system."""
    from highdicom.sr import CodedConcept

    for system, prefixes in CODE_SYSTEM_IRIS.items():
        for prefix in prefixes:
            code = iri[len(prefix):] if iri.startswith(prefix) else ""
            if code and "/" not in code and "#" not in code:
                return CodedConcept(value=code, scheme_designator=_DESIGNATORS[system],
                                    meaning=(label or code)[:_MEANING_MAX])
    raise InvalidInput(f"term {iri} is not a RadLex, NCIt or SNOMED CT IRI, so it has no code for a DICOM report")


def _similar_container(similar: Sequence[SimilarCase]):
    from highdicom.sr import (
        ContainerContentItem,
        ImageContentItem,
        NumContentItem,
        RelationshipTypeValues,
        TextContentItem,
    )
    from pydicom.sr.codedict import codes

    contains = RelationshipTypeValues.CONTAINS
    outer = ContainerContentItem(name=_local("SIMILAR-CASES", "Similar cases retrieved"), relationship_type=contains)
    outer.ContentSequence = []
    for hit in similar:
        item = ContainerContentItem(name=_local("SIMILAR-CASE", "Similar case"), relationship_type=contains)
        item.ContentSequence = [
            TextContentItem(name=_local("CASE-ID", "Case identifier"), value=hit.case_id, relationship_type=contains),
            NumContentItem(name=_local("HSBD", "HSBD distance"), value=float(hit.distance), unit=codes.UCUM.NoUnits,
                           relationship_type=contains)]
        if hit.image is not None:
            item.ContentSequence.append(ImageContentItem(
                name=_local("CASE-IMAGE", "Image of the similar case"), referenced_sop_class_uid=hit.image.SOPClassUID,
                referenced_sop_instance_uid=hit.image.SOPInstanceUID, relationship_type=contains))
        outer.ContentSequence.append(item)
    return outer


def _measurement_group(source: DicomSource, content: ReportContent, segmentation):
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    codes_ = [term_code(t, label) for t, label in zip(content.terms, content.labels)]
    evaluations = [hd.sr.QualitativeEvaluation(name=code, value=codes.SCT.Present if v >= PRESENT_AT else
                                               codes.SCT.Absent) for code, v in zip(codes_, content.likelihoods)]
    measurements = [hd.sr.Measurement(name=code, value=float(v), unit=codes.UCUM.NoUnits)
                    for code, v in zip(codes_, content.likelihoods)]
    common = {
        "tracking_identifier": hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=content.subject[:64]),
        "finding_type": codes.SCT.Lesion, "measurements": measurements, "qualitative_evaluations": evaluations,
        "algorithm_id": (hd.sr.AlgorithmIdentification(name=ALGORITHM_NAME, version=content.model_version)
                         if content.model_version else None)}
    if segmentation is not None:
        # built here: from_segmentation looks for per-frame segment numbers, which a one-frame SEG keeps shared
        segment = hd.sr.ReferencedSegmentationFrame(
            sop_class_uid=segmentation.SOPClassUID, sop_instance_uid=segmentation.SOPInstanceUID, frame_number=1,
            segment_number=SEGMENT_NUMBER, source_image=hd.sr.SourceImageForSegmentation(
                source.dataset.SOPClassUID, source.dataset.SOPInstanceUID))
        # a Referenced SOP Sequence item names a frame or a segment, not both (PS3.3 C.17.3.2.1): frame 1 is segment 1
        del segment[0].ReferencedSOPSequence[0].ReferencedSegmentNumber
        return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(referenced_segment=segment, **common)
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source.dataset)], **common)


def build_report(source: DicomSource, content: ReportContent, *, segmentation=None, series_number: int = 900):
    """The SR (``highdicom.sr.Comprehensive3DSR``) of ``content`` about the ROI of ``source`` (module notes);
    ``segmentation`` is the SEG of that ROI to reference (:func:`semgraph.exchange.dicom_seg.roi_segmentation`)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    if not content.terms or len(content.likelihoods) != len(content.terms) or len(content.labels) != len(content.terms):
        raise InvalidInput("a report needs one label and one likelihood per term, and at least one term")
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), name="semgraph", manufacturer_name=MANUFACTURER))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=[_measurement_group(source, content, segmentation)])
    report[0].ContentSequence.append(_similar_container(content.similar))
    evidence = [source.dataset] + ([segmentation] if segmentation is not None else [])
    evidence += [hit.image for hit in content.similar if hit.image is not None]
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence, content=report[0], series_instance_uid=generate_uid(), series_number=series_number,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer=MANUFACTURER, is_complete=True,
        series_description="semgraph retrieval report", software_versions=software_version())
    scheme = Dataset()
    scheme.CodingSchemeDesignator = PRIVATE_SCHEME
    scheme.CodingSchemeName = "semgraph local codes"
    scheme.CodingSchemeResponsibleOrganization = "semgraph"
    sr.CodingSchemeIdentificationSequence = [scheme]
    return sr


_MODEL = "SELECT ?agent WHERE { GRAPH $g { ?a sg:annotates $c ; sg:annotationKind $kind ; prov:wasAttributedTo ?agent } }"


def _model_version(store: Store, case_id: str) -> str | None:
    """The term-model version that made the case's predicted likelihoods (None: the case has none)."""
    rows = store.select(_MODEL, {"g": ANNOTATIONS_GRAPH, "c": case_iri(case_id), "kind": "predicted"})
    prefix = f"{ID}model/"
    agents = [str(r["agent"]) for r in rows if str(r["agent"]).startswith(prefix)]
    return unquote(agents[0][len(prefix):]) if agents else None


def _similar(engine, data_dir, hits) -> tuple[SimilarCase, ...]:
    return tuple(SimilarCase(h.case_id, h.distance, dicom_header(data_dir, engine.case(h.case_id))) for h in hits)


_DEIDENTIFIED = "source marked de-identified; method not recorded"  # an LO: at most 64 characters


def _declare_deidentification(dataset, source: DicomSource) -> None:
    """A source marked de-identified (Patient Identity Removed YES) passes that mark on to the derived objects; the
    Patient module then needs a De-identification Method: the source's, or a text saying it gave none."""
    if dataset.get("PatientIdentityRemoved") == "YES" and "DeidentificationMethod" not in dataset:
        dataset.DeidentificationMethod = source.dataset.get("DeidentificationMethod") or _DEIDENTIFIED


def _export(source: DicomSource, content: ReportContent, seg: bool) -> DicomExport:
    segmentation = roi_segmentation(source) if seg else None
    exported = DicomExport(build_report(source, content, segmentation=segmentation), segmentation)
    for dataset in exported.datasets:
        _declare_deidentification(dataset, source)
    return exported


def export_case(store: Store, engine, data_dir, case_id: str, *, similar: int = DEFAULT_K,
                seg: bool = False) -> DicomExport:
    """The SR (and with ``seg`` the SEG) of a stored case: its likelihoods in ``engine`` (built with the default
    likelihood kinds, so the predicted ones when it has them), the version of the model that predicted them, and its
    ``similar`` nearest cases."""
    case = engine.case(case_id)  # NotFound for a case without likelihoods
    source = case_source(data_dir, case)
    likelihoods = engine.vector(case_id)
    hits = engine.search_case(case_id, similar) if similar > 0 else []
    content = ReportContent(engine.terms, engine.labels, tuple(float(v) for v in likelihoods),
                            _model_version(store, case_id),
                            _similar(engine, data_dir, hits), f"case {case_id}")
    return _export(source, content, seg)


def case_report(store: Store, engine, data_dir, case_id: str, *, similar: int = DEFAULT_K):
    """The SR of a stored case (without a SEG; :func:`export_case`)."""
    return export_case(store, engine, data_dir, case_id, similar=similar).report


def export_query(engine, data_dir, image_path, roi: Mapping, model, *, similar: int = DEFAULT_K,
                 seg: bool = False) -> DicomExport:
    """The SR (and with ``seg`` the SEG) of a query that is not in the store: a DICOM image and its ROI
    (``{"mask"|"polygon"|"rectangle": ...}``), the likelihoods ``model`` predicts there, and the ``similar`` nearest
    stored cases."""
    source = query_source(image_path, roi)
    vector = engine.image_vector(image_path, {"mask": source.mask}, model=model)
    hits = engine.search_vector(vector, similar) if similar > 0 else []
    content = ReportContent(engine.terms, engine.labels, tuple(float(v) for v in np.asarray(vector)),
                            str(model.version_), _similar(engine, data_dir, hits), "query")
    return _export(source, content, seg)
