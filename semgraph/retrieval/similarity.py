"""Term dissimilarities: image-based δΓ, ontological δΘ, their combination, and the baseline in the graph.

The k×k matrix ``D`` ("Mtsim") that HSBD builds its dendrogram from is (docs/algorithms.md §3)

.. math:: D = w\\,\\delta_\\Gamma + (1 - w)\\,\\delta_\\Theta ,

with ``δΓ`` the normalised Euclidean distance between the unit-normalised term signatures (the linear-SVM
direction vectors of the term models) and ``δΘ`` an ontological measure (:func:`ontology.dissimilarity_matrix`,
Kurtz's normalised cluster-based measure by default). ``w = 1`` gives the image part only, ``w = 0`` the
ontology part only, ``w = ½`` the paper's matrix.

The shared baseline ``D0`` is stored in the ``BASELINE_GRAPH`` named graph, one ``sg:TermSimilarity`` resource per
unordered pair of terms, so curators can query it with SPARQL::

    id:similarity/baseline/pair/<hash>  a sg:TermSimilarity ;
        sg:termA rid:RID5707 ; sg:termB rid:RID5715 ;            # termA = the smaller IRI
        sg:dissimilarity 0.62 ; sg:kind "combined" ; sg:measure "kurtz" ;
        dcterms:isPartOf id:similarity/baseline ;
        prov:generatedAtTime "..."^^xsd:dateTime ; prov:wasAttributedTo id:model/v1 .
    id:similarity/baseline  a prov:Entity ; rdfs:label "term dissimilarity baseline" ;
        sg:kind "combined" ; sg:measure "kurtz" ; sg:parameters "{...}"^^rdf:JSON ; prov:generatedAtTime "..." .

Errors: malformed matrices or parameters raise :class:`semgraph.errors.InvalidInput` (nothing is written); reading a
baseline that does not exist raises :class:`semgraph.errors.NotFound`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Mapping, Sequence

import numpy as np
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, PROV, RDF, RDFS, XSD

import ontology
from kg import Store
from kg.namespaces import BASELINE_GRAPH, GRAPH, ID, SG
from semgraph.errors import InvalidInput, NotFound
from semgraph.graph.casegraph import model_iri

__all__ = [
    "BASELINE_IRI",
    "BASES",
    "MODES",
    "baseline_iri",
    "combine",
    "image_dissimilarity",
    "read_baseline",
    "read_baseline_info",
    "term_dissimilarity",
    "write_baseline",
]

#: Allowed values of ``mode`` in :func:`term_dissimilarity`.
MODES = ("combined", "image", "ontology")
#: The resource describing the baseline (its parameters and provenance).
BASELINE_IRI = ID["similarity/baseline"]
#: What a data-driven term dissimilarity δΓ is computed from (``sg:similarityBasis``): the term models' signatures,
#: or, without term models, the co-occurrence of the terms in the cases' likelihoods (correlation of their columns).
BASES = ("signatures", "cooccurrence")


def baseline_iri(graph=BASELINE_GRAPH) -> URIRef:
    """The resource describing the baseline held in ``graph`` (``id:similarity/baseline[/<collection>]``)."""
    return ID[str(graph)[len(str(GRAPH)):]]

# Symmetry / zero-diagonal / range checks accept rounding noise of this size.
_TOL = 1e-9


def _matrix(value, name: str) -> np.ndarray:
    """A finite float64 square matrix, or InvalidInput."""
    try:
        m = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be a numeric k x k array ({exc}).") from None
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise InvalidInput(f"{name} must be a non-empty square (k x k) matrix; got shape {m.shape}.")
    if not np.all(np.isfinite(m)):
        raise InvalidInput(f"{name} contains NaN or infinite values.")
    return m


def _check_unit_dissimilarity(m: np.ndarray, name: str) -> np.ndarray:
    """Check symmetry, zero diagonal and range [0, 1]; return the exactly symmetric, zero-diagonal matrix."""
    asym = np.abs(m - m.T)
    if np.any(asym > _TOL):
        i, j = np.unravel_index(int(np.argmax(asym)), m.shape)
        raise InvalidInput(f"{name} must be symmetric; [{i}, {j}] = {m[i, j]!r} but [{j}, {i}] = {m[j, i]!r}.")
    diag = np.abs(np.diag(m))
    if np.any(diag > _TOL):
        i = int(np.argmax(diag))
        raise InvalidInput(f"{name} must have a zero diagonal; [{i}, {i}] = {m[i, i]!r}.")
    if np.any(m < -_TOL) or np.any(m > 1 + _TOL):
        bad = np.argwhere((m < -_TOL) | (m > 1 + _TOL))[0]
        raise InvalidInput(f"{name} must lie in [0, 1]; [{bad[0]}, {bad[1]}] = {m[bad[0], bad[1]]!r}.")
    out = np.clip(0.5 * (m + m.T), 0.0, 1.0)
    np.fill_diagonal(out, 0.0)
    return out


def image_dissimilarity(signatures) -> np.ndarray:
    """Image-based term dissimilarity δΓ from the term signatures (docs/algorithms.md §3.1).

    Parameters
    ----------
    signatures : array_like, shape (k, U)
        One signature per term: the direction vector ``w_i`` of term ``i``'s linear model in feature space.

    Returns
    -------
    ndarray, shape (k, k)
        ``δΓ[i, j] = ||Γ_i - Γ_j||_2 / ω_Γ`` with ``Γ_i = w_i / ||w_i||_2``; symmetric, zero diagonal, in [0, 1].

    Raises
    ------
    semgraph.errors.InvalidInput
        If ``signatures`` is not a finite 2-D array with at least one row, or a row is all zeros (no direction).

    Notes
    -----
    Rows are unit-normalised first, so the distance measures the angle between the term directions only
    (``||Γ_i - Γ_j|| = sqrt(2 - 2 cos θ_ij)`` ∈ [0, 2]) and not the norm of ``w`` (which depends on the SVM's C and
    on how separable a term is). The normaliser is the **observed** maximum ``ω_Γ = max_{i≠j} ||Γ_i - Γ_j||``, so
    the most dissimilar pair gets exactly 1 (docs/algorithms.md §3.1; the fixed bound ω = 2 would leave most
    entries well below 1 and weaken the image part against δΘ, whose maximum is 1 too). When every pair is at
    distance 0 (identical directions, or k = 1) the result is all zeros.

    Examples
    --------
    >>> image_dissimilarity([[1, 0], [0, 2], [-3, 0]]).round(4).tolist()
    [[0.0, 0.7071, 1.0], [0.7071, 0.0, 0.7071], [1.0, 0.7071, 0.0]]
    """
    try:
        w = np.array(signatures, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"signatures must be a numeric k x U array ({exc}).") from None
    if w.ndim != 2 or w.shape[0] == 0 or w.shape[1] == 0:
        raise InvalidInput(f"signatures must be a k x U array with k, U >= 1; got shape {w.shape}.")
    if not np.all(np.isfinite(w)):
        raise InvalidInput("signatures contain NaN or infinite values.")
    norms = np.linalg.norm(w, axis=1)
    if np.any(norms == 0):
        raise InvalidInput(f"signature of term {int(np.argmin(norms))} is all zeros: it has no direction.")
    unit = w / norms[:, None]
    gram = np.clip(unit @ unit.T, -1.0, 1.0)
    e = np.sqrt(np.maximum(2.0 - 2.0 * gram, 0.0))
    np.fill_diagonal(e, 0.0)
    e = 0.5 * (e + e.T)
    omega = float(e.max())
    return e / omega if omega > 0 else np.zeros_like(e)


def combine(delta_gamma, delta_theta, weight: float = 0.5) -> np.ndarray:
    """The combined term dissimilarity ``D = weight·δΓ + (1 − weight)·δΘ``.

    Parameters
    ----------
    delta_gamma, delta_theta : array_like, shape (k, k)
        Image-based and ontological dissimilarities: symmetric, zero diagonal, entries in [0, 1].
    weight : float in [0, 1], default 0.5
        Weight of the image part: 1 → δΓ only, 0 → δΘ only, ½ → the paper.

    Returns
    -------
    ndarray, shape (k, k)
        Symmetric, zero diagonal, in [0, 1].

    Raises
    ------
    semgraph.errors.InvalidInput
        On a shape mismatch, an asymmetric matrix, a non-zero diagonal, an entry outside [0, 1], or a weight
        outside [0, 1].

    Examples
    --------
    >>> combine([[0, 1], [1, 0]], [[0, 0.5], [0.5, 0]], weight=0.25).tolist()
    [[0.0, 0.625], [0.625, 0.0]]
    """
    if isinstance(weight, bool) or not isinstance(weight, (int, float, np.floating, np.integer)):
        raise InvalidInput(f"weight must be a number in [0, 1]; got {weight!r}.")
    if not (math.isfinite(weight) and 0.0 <= weight <= 1.0):
        raise InvalidInput(f"weight must be a number in [0, 1]; got {weight!r}.")
    g = _check_unit_dissimilarity(_matrix(delta_gamma, "delta_gamma"), "delta_gamma")
    t = _check_unit_dissimilarity(_matrix(delta_theta, "delta_theta"), "delta_theta")
    if g.shape != t.shape:
        raise InvalidInput(f"delta_gamma {g.shape} and delta_theta {t.shape} must have the same shape.")
    if weight == 1:
        return g
    if weight == 0:
        return t
    out = weight * g + (1.0 - weight) * t
    np.fill_diagonal(out, 0.0)
    return out


def _terms(terms: Sequence[str]) -> list[str]:
    if isinstance(terms, str) or not isinstance(terms, Sequence) or not terms:
        raise InvalidInput("terms must be a non-empty sequence of term IRIs.")
    out = [str(t) for t in terms]
    if len(set(out)) != len(out):
        dup = next(t for t in out if out.count(t) > 1)
        raise InvalidInput(f"terms must be distinct; {dup} appears twice.")
    return out


def term_dissimilarity(store: Store, terms: Sequence[str], *, signatures=None, mode: str = "combined",
                       weight: float = 0.5, measure: str = "kurtz", ontology_name: str | None = None) -> np.ndarray:
    """The k×k term dissimilarity matrix ``D`` for ``terms`` (the baseline ``D0`` of retrieval).

    Parameters
    ----------
    store : kg.Store
        Store holding the ontology (see ``semgraph ontology load``).
    terms : sequence of str, length k
        Term IRIs in vector order.
    signatures : array_like, shape (k, U), optional
        Term signatures (rows in the order of ``terms``); needed for ``mode`` 'image' and 'combined'.
    mode : {'combined', 'image', 'ontology'}, default 'combined'
        ``'combined'``: ``weight·δΓ + (1 − weight)·δΘ``; ``'image'``: δΓ; ``'ontology'``: δΘ.
    weight : float in [0, 1], default 0.5
        Weight of δΓ in the combined mode (ignored otherwise).
    measure : str, default 'kurtz'
        Ontological measure, see :func:`ontology.dissimilarity_matrix`; must give values in [0, 1].
    ontology_name : str, optional
        Which loaded ontology to use (default: the first one holding every term).

    Raises
    ------
    ValueError
        If ``mode`` is unknown.
    semgraph.errors.InvalidInput
        If signatures are missing or malformed, or the measure gives values outside [0, 1].
    ontology.OntologyError
        If no ontology is loaded or a term is unknown.
    """
    if mode not in MODES:
        raise ValueError(f"Invalid mode: {mode!r}. The supported values are {', '.join(map(repr, MODES))}.")
    names = _terms(terms)
    delta_gamma = None
    if mode in ("combined", "image"):
        if signatures is None:
            raise InvalidInput(f"mode {mode!r} needs the term signatures (one row per term); without trained term "
                               "models use mode='ontology'.")
        delta_gamma = image_dissimilarity(signatures)
        if delta_gamma.shape[0] != len(names):
            raise InvalidInput(f"signatures have {delta_gamma.shape[0]} rows but there are {len(names)} terms.")
        if mode == "image":
            return delta_gamma
    delta_theta = ontology.dissimilarity_matrix(store, names, measure=measure, ontology=ontology_name)
    delta_theta = _check_unit_dissimilarity(_matrix(delta_theta, f"the {measure!r} matrix"), f"the {measure!r} matrix")
    if mode == "ontology":
        return delta_theta
    return combine(delta_gamma, delta_theta, weight)


def _pair_iri(head: URIRef, term_a: str, term_b: str) -> URIRef:
    digest = hashlib.sha1(f"{term_a}\n{term_b}".encode()).hexdigest()[:20]
    return URIRef(f"{head}/pair/{digest}")


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def baseline_graph(terms: Sequence[str], D, *, kind: str, provenance: Mapping | None = None,
                   generated_at: dt.datetime | None = None, graph=BASELINE_GRAPH, basis: str | None = None) -> Graph:
    """The triples of a baseline (see :func:`write_baseline`), without writing them."""
    if basis is not None and basis not in BASES:
        raise InvalidInput(f"basis must be one of {', '.join(BASES)}; got {basis!r}.")
    names = _terms(terms)
    m = _check_unit_dissimilarity(_matrix(D, "D"), "D")
    if m.shape[0] != len(names):
        raise InvalidInput(f"D is {m.shape[0]} x {m.shape[0]} but there are {len(names)} terms.")
    if not isinstance(kind, str) or not kind.strip():
        raise InvalidInput("kind must be a non-empty string (e.g. 'combined', 'image', 'ontology').")
    prov_in = dict(provenance or {})
    measure = prov_in.get("measure")
    version = prov_in.get("model_version")
    if measure is not None and (not isinstance(measure, str) or not measure):
        raise InvalidInput(f"provenance['measure'] must be a non-empty string; got {measure!r}.")
    if version is not None and (not isinstance(version, str) or not version):
        raise InvalidInput(f"provenance['model_version'] must be a non-empty string; got {version!r}.")
    try:
        parameters = json.dumps({**prov_in, "kind": kind, "terms": names}, sort_keys=True, default=_json_default,
                                allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"provenance must be JSON-serialisable ({exc}).") from None
    when = Literal((generated_at or dt.datetime.now(dt.UTC)).isoformat(), datatype=XSD.dateTime)
    agent = model_iri(version) if version else None

    g = Graph()
    b = baseline_iri(graph)
    g.add((b, RDF.type, PROV.Entity))
    g.add((b, RDFS.label, Literal("term dissimilarity baseline")))
    g.add((b, SG.kind, Literal(kind)))
    g.add((b, SG.parameters, Literal(parameters, datatype=RDF.JSON)))
    g.add((b, PROV.generatedAtTime, when))
    if measure:
        g.add((b, SG.measure, Literal(measure)))
    if basis:
        g.add((b, SG.similarityBasis, Literal(basis)))
    if agent is not None:
        g.add((b, PROV.wasAttributedTo, agent))
    k = len(names)
    for i in range(k):
        for j in range(i + 1, k):
            a_iri, b_iri = sorted((names[i], names[j]))
            s = _pair_iri(b, a_iri, b_iri)
            g.add((s, RDF.type, SG.TermSimilarity))
            g.add((s, SG.termA, URIRef(a_iri)))
            g.add((s, SG.termB, URIRef(b_iri)))
            g.add((s, SG.dissimilarity, Literal(float(m[i, j]), datatype=XSD.double)))
            g.add((s, SG.kind, Literal(kind)))
            if measure:
                g.add((s, SG.measure, Literal(measure)))
            g.add((s, DCTERMS.isPartOf, b))
            g.add((s, PROV.generatedAtTime, when))
            if agent is not None:
                g.add((s, PROV.wasAttributedTo, agent))
    return g


def write_baseline(store: Store, terms: Sequence[str], D, *, kind: str, provenance: Mapping | None = None,
                   graph=BASELINE_GRAPH, basis: str | None = None) -> int:
    """Write ``D`` as the shared baseline of a collection into ``graph`` (its
    :attr:`~semgraph.graph.collection.Collection.baseline_graph`), atomically replacing the previous one; return the
    number of triples.

    Parameters
    ----------
    store : kg.Store
        A writable store.
    terms : sequence of str, length k
        Distinct term IRIs in the order of the rows of ``D``.
    D : array_like, shape (k, k)
        Symmetric, zero diagonal, entries in [0, 1].
    kind : str
        What the matrix is: ``'combined'``, ``'image'`` or ``'ontology'`` (stored as ``sg:kind``).
    provenance : mapping, optional
        JSON-serialisable parameters, all stored as ``sg:parameters`` of the baseline resource. Two keys are also
        stored as triples: ``'measure'`` (the ontological measure → ``sg:measure``) and ``'model_version'`` (the
        term-model version → ``prov:wasAttributedTo id:model/<version>``). Other useful keys: ``'ontology'``,
        ``'weight'``, ``'mode'``, ``'omega_gamma'``.
    basis : {'signatures', 'cooccurrence'}, optional
        What the data-driven part δΓ was computed from (``sg:similarityBasis``; see :data:`BASES`).

    Raises
    ------
    semgraph.errors.InvalidInput
        If the terms, the matrix, ``kind`` or ``provenance`` are invalid (nothing is written).
    """
    g = baseline_graph(terms, D, kind=kind, provenance=provenance, graph=graph, basis=basis)
    store.load(g, str(graph), replace=True)
    return len(g)


_READ = """
SELECT ?a ?b ?d WHERE { GRAPH $g { ?s a sg:TermSimilarity ; sg:termA ?a ; sg:termB ?b ; sg:dissimilarity ?d } }
"""
_HINT = ("compute one with semgraph.retrieval.similarity.term_dissimilarity() and store it with write_baseline() "
         "(or load the ontology with `semgraph ontology load radlex-liver` and use mode='ontology')")


def read_baseline(store: Store, terms: Sequence[str], *, graph=BASELINE_GRAPH) -> np.ndarray:
    """The baseline ``D0`` stored in ``graph``, restricted to ``terms`` (k×k, in the order of ``terms``).

    Raises
    ------
    semgraph.errors.NotFound
        If no baseline is stored, or a pair of ``terms`` is missing from it (the message names the pair).
    """
    names = _terms(terms)
    rows = store.select(_READ, {"g": graph})
    if not rows:
        raise NotFound(f"no term dissimilarity baseline in the store; {_HINT}.")
    values = {(str(r["a"]), str(r["b"])): float(r["d"]) for r in rows}
    k = len(names)
    out = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            key = tuple(sorted((names[i], names[j])))
            if key not in values:
                raise NotFound(f"the stored baseline has no dissimilarity between {key[0]} and {key[1]}; "
                               f"it was computed for another vocabulary; {_HINT}.")
            out[i, j] = out[j, i] = values[key]
    return out


def read_baseline_info(store: Store, *, graph=BASELINE_GRAPH) -> dict:
    """The ``kind``, ``measure``, ``basis``, ``generated_at``, ``attributed_to`` and ``parameters`` (dict) of the
    baseline stored in ``graph``.

    Raises :class:`semgraph.errors.NotFound` when no baseline is stored.
    """
    rows = store.select(
        "SELECT ?kind ?measure ?basis ?when ?agent ?params WHERE { GRAPH $g { $b sg:kind ?kind ; "
        "sg:parameters ?params ; prov:generatedAtTime ?when OPTIONAL { $b sg:measure ?measure } "
        "OPTIONAL { $b sg:similarityBasis ?basis } OPTIONAL { $b prov:wasAttributedTo ?agent } } }",
        {"g": graph, "b": baseline_iri(graph)})
    if not rows:
        raise NotFound(f"no term dissimilarity baseline in the store; {_HINT}.")
    r = rows[0]
    return {
        "kind": str(r["kind"]),
        "measure": str(r["measure"]) if "measure" in r else None,
        "basis": str(r["basis"]) if "basis" in r else None,
        "generated_at": str(r["when"]),
        "attributed_to": str(r["agent"]) if "agent" in r else None,
        "parameters": json.loads(str(r["params"])),
    }
