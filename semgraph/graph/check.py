"""Integrity check of a store: are the cases, feedback rounds, baseline and ontology graphs complete?

:func:`check_store` reads the store (it never writes) and returns a :class:`CheckReport` listing every problem:

* **cases** (annotations graph): each ``sg:Case`` has exactly one ``rdfs:label``, a ``sg:study`` that is a
  ``sg:Study`` with a ``sg:patient`` that is a labelled ``sg:Patient``; each ``sg:Annotation`` annotates a case and has
  one ``sg:annotationKind`` (reader | predicted | truth), a ``prov:generatedAtTime`` and likelihoods, each with one
  ``sg:term`` IRI and one numeric ``sg:value`` in [0, 1]. A likelihood without its annotation, or an annotation
  of a missing case, is an orphan. Each annotation's compact copy (``sg:termValues``) equals its likelihoods
  (kind ``copy``; :func:`semgraph.graph.casegraph.rebuild_term_values` repairs it).
* **feedback rounds** (``feedback/*`` graphs): each ``sg:FeedbackRound`` has one ``sg:session``, one integer
  ``sg:roundNumber``, a user (``prov:wasAssociatedWith``), start and end times, one ``sg:algorithm`` and at least one
  complete ``sg:Mark``; no two rounds of a session share a number, and a session's recorded rounds are numbered
  1, 2, 3 ... without a gap; a round still ``sg:pending`` longer than :data:`semgraph.graph.rounds.CLAIM_LEASE` is the
  leftover of a crashed process. Each learned edge (``sg:kind "learned"``) has
  ``sg:termA``, ``sg:termB``, ``sg:dissimilarity`` in [0, 1], ``sg:previous``, ``prov:wasGeneratedBy`` (a round
  in the same graph), ``prov:wasAttributedTo`` and ``prov:generatedAtTime``; an edge whose round is missing is
  an orphan.
* **baseline** (each collection's baseline graph): when stored, every pair of its vocabulary (the ``terms`` of its
  ``sg:parameters``) has exactly one value in [0, 1].
* **collections**: each stored ``sg:Collection`` has a name and terms at positions 0..k-1, each with one
  ``sg:term``, a non-empty ``sg:category`` and a label, all in its ontology; once a collection is stored, every case
  is ``sg:inCollection`` exactly one defined collection, and no likelihood of a case names a term outside it.
* **ontologies**: every ``ontology/*`` graph carries its catalog description (``sg:OntologyGraph``, name, root,
  source, load time, triple count).
* **case files** (when a data folder is given; ``semgraph check`` always gives it): every ``sg:imageFile`` and
  ``sg:maskFile`` of a case resolves inside the data folder (relative paths against it, symbolic links followed,
  :func:`semgraph.files.data_file`) and names an existing file. Cases without such paths (reader CSV, AIM) are fine.

Every query is a fixed text (no user input); problems are capped per kind (:data:`MAX_PER_KIND`) so that a badly
broken store still gives a readable report, while the counts stay exact.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import URIRef

from kg import Store
from kg.namespaces import (
    ANNOTATIONS_GRAPH,
    BASELINE_GRAPH,
    COLLECTIONS_GRAPH,
    GRAPH,
    SG,
)
from kg.sparql import joined_patterns
from semgraph.errors import InvalidInput
from semgraph.files import data_file
from semgraph.graph.casegraph import (
    ANNOTATION_KINDS,
    annotation_batches,
    stale_term_values,
)
from semgraph.graph.rounds import CLAIM_LEASE, FEEDBACK_PREFIX, RELEVANCE, recorded

__all__ = ["MAX_PER_KIND", "CheckReport", "Problem", "check_store"]

#: At most this many problems of one kind are listed (the count of each kind is always exact).
MAX_PER_KIND = 50

_ONTOLOGY_PREFIX = str(GRAPH["ontology/"])


@dataclass(frozen=True)
class Problem:
    """One integrity problem: its kind, the resource concerned and what is wrong."""

    kind: str
    subject: str
    message: str

    def as_dict(self) -> dict:
        return {"kind": self.kind, "subject": self.subject, "message": self.message}


@dataclass
class CheckReport:
    """What :func:`check_store` found: the problems (capped per kind), their exact counts, and what was checked."""

    problems: list[Problem] = field(default_factory=list)
    problem_counts: dict[str, int] = field(default_factory=dict)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problem_counts

    @property
    def total(self) -> int:
        return sum(self.problem_counts.values())

    def add(self, kind: str, subject, message: str) -> None:
        n = self.problem_counts.get(kind, 0)
        self.problem_counts[kind] = n + 1
        if n < MAX_PER_KIND:
            self.problems.append(Problem(kind, str(subject), message))

    def kinds(self) -> set[str]:
        return set(self.problem_counts)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "checked": dict(self.checked), "problem_counts": dict(self.problem_counts),
                "problems": [p.as_dict() for p in self.problems]}

    def format_text(self) -> str:
        lines = ["checked: " + ", ".join(f"{n:,} {what}" for what, n in self.checked.items())]
        if self.ok:
            lines.append("no problems found")
            return "\n".join(lines)
        lines.append(f"{self.total:,} problem(s): " + ", ".join(f"{k} {n:,}" for k, n in
                                                                 sorted(self.problem_counts.items())))
        for p in self.problems:
            lines.append(f"  [{p.kind}] {p.subject}: {p.message}")
        hidden = self.total - len(self.problems)
        if hidden:
            lines.append(f"  ... and {hidden:,} more (at most {MAX_PER_KIND} listed per kind)")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- cases

_CASES = """
SELECT ?c (COUNT(DISTINCT ?label) AS ?labels) (COUNT(DISTINCT ?s) AS ?studies) (SAMPLE(?s) AS ?study)
WHERE { GRAPH $g { ?c a sg:Case OPTIONAL { ?c rdfs:label ?label } OPTIONAL { ?c sg:study ?s } } } GROUP BY ?c
"""
_UNTYPED_CASES = """
SELECT DISTINCT ?c WHERE { GRAPH $g { { ?c sg:study ?s } UNION { ?a sg:annotates ?c } FILTER NOT EXISTS { ?c a sg:Case } } }
"""
_STUDIES = """
SELECT ?s (COUNT(DISTINCT ?p) AS ?patients) (SAMPLE(?p) AS ?patient) WHERE { GRAPH $g {
  { SELECT DISTINCT ?s WHERE { ?c a sg:Case ; sg:study ?s } } OPTIONAL { ?s sg:patient ?p } } } GROUP BY ?s
"""
_STUDY_TYPES = """
SELECT ?s ?p ?studyTyped ?patientTyped ?patientLabel WHERE { GRAPH $g {
  { SELECT DISTINCT ?s WHERE { ?c a sg:Case ; sg:study ?s } } ?s sg:patient ?p .
  BIND(EXISTS { ?s a sg:Study } AS ?studyTyped) BIND(EXISTS { ?p a sg:Patient } AS ?patientTyped)
  BIND(EXISTS { ?p rdfs:label ?l } AS ?patientLabel) } }
"""
_ANNOTATIONS = """
SELECT ?a (COUNT(DISTINCT ?c) AS ?cases) (SAMPLE(?c) AS ?case) (COUNT(DISTINCT ?kind) AS ?kinds) (SAMPLE(?kind) AS ?k)
       (COUNT(DISTINCT ?t) AS ?times) (COUNT(DISTINCT ?l) AS ?items) (SAMPLE(?typed) AS ?isTyped)
       (SAMPLE(?caseTyped) AS ?caseIsCase)
WHERE { GRAPH $g {
  { SELECT DISTINCT ?a WHERE { { ?a a sg:Annotation } UNION { ?a sg:annotates ?x } UNION { ?a sg:likelihood ?y } } }
  OPTIONAL { ?a sg:annotates ?c BIND(EXISTS { ?c a sg:Case } AS ?caseTyped) }
  OPTIONAL { ?a sg:annotationKind ?kind } OPTIONAL { ?a prov:generatedAtTime ?t }
  OPTIONAL { ?a sg:likelihood ?l } BIND(EXISTS { ?a a sg:Annotation } AS ?typed)
} } GROUP BY ?a
"""
_LIKELIHOOD_COUNT = ("SELECT (COUNT(DISTINCT ?l) AS ?n) WHERE { GRAPH $g { "
                     "{ ?l a sg:TermLikelihood } UNION { ?x sg:likelihood ?l } } }")
#: The likelihood nodes (``%s``: the pattern that picks them, binding ``?l``) that break a rule below, only: the
#: store tests the rules, so a sound graph sends no rows.
_LIKELIHOODS = """
SELECT ?l (COUNT(DISTINCT ?t) AS ?terms) (SAMPLE(?t) AS ?term) (COUNT(DISTINCT ?v) AS ?values) (SAMPLE(?v) AS ?value)
       (COUNT(DISTINCT ?a) AS ?parents)
WHERE { GRAPH $g {
  { SELECT DISTINCT ?l WHERE { %s } }
  OPTIONAL { ?l sg:term ?t } OPTIONAL { ?l sg:value ?v } OPTIONAL { ?a sg:likelihood ?l . ?a a sg:Annotation }
} } GROUP BY ?l
HAVING (COUNT(DISTINCT ?t) != 1 || COUNT(DISTINCT ?v) != 1 || COUNT(DISTINCT ?a) = 0 || !isIRI(SAMPLE(?t))
        || !isNumeric(SAMPLE(?v)) || SAMPLE(?v) < 0 || SAMPLE(?v) > 1)
"""
#: Typed likelihood nodes that nothing links to (the batches by subject cannot see them).
_LOOSE_LIKELIHOODS = "SELECT ?l WHERE { GRAPH $g { ?l a sg:TermLikelihood FILTER NOT EXISTS { ?x sg:likelihood ?l } } }"


def _unit_number(term) -> float | None:
    """The value of a numeric literal in [0, 1], else None."""
    try:
        value = float(term.toPython()) if hasattr(term, "toPython") else None
    except (TypeError, ValueError):
        return None
    if value is None or isinstance(term.toPython(), (str, bool)) or not 0.0 <= value <= 1.0:
        return None
    return value


def _true(term) -> bool:
    return term is not None and str(term).lower() in ("true", "1")


def _check_cases(store: Store, report: CheckReport) -> None:
    g = {"g": ANNOTATIONS_GRAPH}
    cases = store.select(_CASES, g)
    report.checked["cases"] = len(cases)
    for r in cases:
        c = r["c"]
        if int(r["labels"]) != 1:
            report.add("case", c, f"has {int(r['labels'])} rdfs:label values (expected 1)")
        if int(r["studies"]) != 1:
            report.add("case", c, f"has {int(r['studies'])} sg:study values (expected 1)")
    for r in store.select(_UNTYPED_CASES, g):
        report.add("case", r["c"], "is described (study or annotation) but is not typed sg:Case")
    for r in store.select(_STUDIES, g):
        if int(r["patients"]) != 1:
            report.add("case", r["s"], f"study has {int(r['patients'])} sg:patient values (expected 1)")
    for r in store.select(_STUDY_TYPES, g):
        if not _true(r.get("studyTyped")):
            report.add("case", r["s"], "study is not typed sg:Study")
        if not _true(r.get("patientTyped")):
            report.add("case", r["p"], "patient is not typed sg:Patient")
        if not _true(r.get("patientLabel")):
            report.add("case", r["p"], "patient has no rdfs:label")
    annotations = store.select(_ANNOTATIONS, g)
    report.checked["annotations"] = len(annotations)
    for r in annotations:
        a = r["a"]
        if not _true(r.get("isTyped")):
            report.add("annotation", a, "is not typed sg:Annotation")
        if int(r["cases"]) != 1:
            report.add("annotation", a, f"annotates {int(r['cases'])} cases (expected 1)")
        elif not _true(r.get("caseIsCase")):
            report.add("orphan", a, f"annotates {r['case']}, which is not a case in the store")
        if int(r["kinds"]) != 1 or str(r.get("k")) not in ANNOTATION_KINDS:
            report.add("annotation", a, f"needs one sg:annotationKind of {', '.join(ANNOTATION_KINDS)}")
        if int(r["times"]) != 1:
            report.add("annotation", a, f"has {int(r['times'])} prov:generatedAtTime values (expected 1)")
        if int(r["items"]) == 0:
            report.add("annotation", a, "has no sg:likelihood")
    report.checked["likelihoods"] = int(store.select_values(_LIKELIHOOD_COUNT, g)[0][0])
    loose = " ".join(URIRef(row[0]).n3() for row in store.select_values(_LOOSE_LIKELIHOODS, g))
    batches = list(annotation_batches(store))  # read once, for the rules and for the copies below
    picks = [f"VALUES ?x {{ {' '.join(iris)} }} ?x sg:likelihood ?l" for iris in batches]
    broken = [r for pick in picks + ([f"VALUES ?l {{ {loose} }}"] if loose else [])
              for r in store.select(_LIKELIHOODS % pick, g)]  # a batch at a time: bounded memory
    for r in broken:
        item = r["l"]
        if int(r["terms"]) != 1 or not isinstance(r.get("term"), URIRef):
            report.add("likelihood", item, "needs exactly one sg:term (a term IRI)")
        if int(r["values"]) != 1 or _unit_number(r.get("value")) is None:
            report.add("likelihood", item, f"needs exactly one numeric sg:value in [0, 1] (got {r.get('value')!s})")
        if int(r["parents"]) == 0:
            report.add("orphan", item, "likelihood without its sg:Annotation")
    for annotation, problem in stale_term_values(store, batches=batches):
        report.add("copy", URIRef(annotation), f"{problem} (`semgraph check --repair` rebuilds it)")


# ----------------------------------------------------------------------------------------------- rounds

_ROUNDS = """
SELECT ?r ?g (COUNT(DISTINCT ?s) AS ?sessions) (COUNT(DISTINCT ?n) AS ?numbers) (SAMPLE(?n) AS ?number)
       (COUNT(DISTINCT ?u) AS ?users) (COUNT(DISTINCT ?t0) AS ?starts) (COUNT(DISTINCT ?t1) AS ?ends)
       (COUNT(DISTINCT ?alg) AS ?algorithms) (COUNT(DISTINCT ?m) AS ?marks) (SAMPLE(?s) AS ?session)
WHERE { GRAPH ?g { ?r a sg:FeedbackRound
  OPTIONAL { ?r sg:session ?s } OPTIONAL { ?r sg:roundNumber ?n } OPTIONAL { ?r prov:wasAssociatedWith ?u }
  OPTIONAL { ?r prov:startedAtTime ?t0 } OPTIONAL { ?r prov:endedAtTime ?t1 } OPTIONAL { ?r sg:algorithm ?alg }
  OPTIONAL { ?r sg:mark ?m }
} } GROUP BY ?r ?g
"""
_MARKS = """
SELECT ?m (COUNT(DISTINCT ?c) AS ?cases) (COUNT(DISTINCT ?v) AS ?values) (SAMPLE(?v) AS ?value) WHERE {
  GRAPH ?g { ?r a sg:FeedbackRound ; sg:mark ?m OPTIONAL { ?m sg:markedCase ?c } OPTIONAL { ?m sg:relevance ?v } }
} GROUP BY ?m
"""
_EDGES = """
SELECT ?e ?g (COUNT(DISTINCT ?a) AS ?as) (COUNT(DISTINCT ?b) AS ?bs) (COUNT(DISTINCT ?d) AS ?ds) (SAMPLE(?d) AS ?dv)
       (COUNT(DISTINCT ?prev) AS ?prevs) (COUNT(DISTINCT ?k) AS ?kinds) (COUNT(DISTINCT ?r) AS ?rounds)
       (SAMPLE(?r) AS ?round) (COUNT(DISTINCT ?who) AS ?agents) (COUNT(DISTINCT ?t) AS ?times)
       (SAMPLE(?roundHere) AS ?roundInGraph)
WHERE {
  { SELECT DISTINCT ?e ?g WHERE { GRAPH ?g {
      { ?e sg:kind "learned" } UNION { ?e prov:wasGeneratedBy ?x . ?x a sg:FeedbackRound } } } }
  OPTIONAL { GRAPH ?g { ?e sg:termA ?a } } OPTIONAL { GRAPH ?g { ?e sg:termB ?b } }
  OPTIONAL { GRAPH ?g { ?e sg:dissimilarity ?d } } OPTIONAL { GRAPH ?g { ?e sg:previous ?prev } }
  OPTIONAL { GRAPH ?g { ?e sg:kind ?k } } OPTIONAL { GRAPH ?g { ?e prov:wasAttributedTo ?who } }
  OPTIONAL { GRAPH ?g { ?e prov:generatedAtTime ?t } }
  OPTIONAL { GRAPH ?g { ?e prov:wasGeneratedBy ?r BIND(EXISTS { ?r a sg:FeedbackRound } AS ?roundHere) } }
} GROUP BY ?e ?g
"""
_RECORDED_NUMBERS = f"""
SELECT DISTINCT ?s ?n WHERE {{ GRAPH ?g {{ ?r a sg:FeedbackRound ; sg:session ?s ; sg:roundNumber ?n
  {recorded("r")} }} }}
"""
_PENDING = "SELECT ?r ?end WHERE { GRAPH ?g { ?r a sg:FeedbackRound ; sg:pending ?p OPTIONAL { ?r prov:endedAtTime ?end } } }"
_DUPLICATE_NUMBERS = """
SELECT ?s ?n (COUNT(DISTINCT ?r) AS ?rounds) WHERE { GRAPH ?g { ?r a sg:FeedbackRound ; sg:session ?s ; sg:roundNumber ?n } }
GROUP BY ?s ?n HAVING (COUNT(DISTINCT ?r) > 1)
"""


def _check_rounds(store: Store, report: CheckReport) -> None:
    rounds = store.select(_ROUNDS)
    report.checked["feedback rounds"] = len(rounds)
    required = (("sessions", "sg:session"), ("numbers", "sg:roundNumber"), ("users", "prov:wasAssociatedWith"),
                ("starts", "prov:startedAtTime"), ("ends", "prov:endedAtTime"), ("algorithms", "sg:algorithm"))
    for r in rounds:
        subject = r["r"]
        if not str(r["g"]).startswith(FEEDBACK_PREFIX):
            report.add("round", subject, f"is in the graph {r['g']}, not in a feedback graph")
        for var, name in required:
            if int(r[var]) != 1:
                report.add("round", subject, f"has {int(r[var])} {name} values (expected 1)")
        if int(r["numbers"]) == 1:
            number = r["number"].toPython()
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                report.add("round", subject, f"sg:roundNumber {r['number']} is not a positive integer")
        if int(r["marks"]) == 0:
            report.add("round", subject, "has no sg:mark")
    for r in store.select(_MARKS):
        if int(r["cases"]) != 1:
            report.add("round", r["m"], f"mark has {int(r['cases'])} sg:markedCase values (expected 1)")
        if int(r["values"]) != 1 or str(r.get("value")) not in RELEVANCE:
            report.add("round", r["m"], f"mark needs one sg:relevance of {', '.join(RELEVANCE)}")
    for r in store.select(_DUPLICATE_NUMBERS):
        report.add("round", r["s"], f"session has {int(r['rounds'])} rounds numbered {r['n']} (a lost conflict)")
    numbers: dict = {}
    for r in store.select(_RECORDED_NUMBERS):
        number = r["n"].toPython()
        if isinstance(number, int) and not isinstance(number, bool):
            numbers.setdefault(r["s"], set()).add(number)
    for session, present in numbers.items():
        missing = sorted(set(range(1, max(present) + 1)) - present)
        if missing:
            report.add("round", session, f"session's recorded rounds skip number(s) {missing[:10]} (a round was "
                                         "recorded on one that was withdrawn or dropped)")
    now = dt.datetime.now(dt.UTC)
    for r in store.select(_PENDING):
        end = r["end"].toPython() if "end" in r else None
        age = (now - end).total_seconds() if isinstance(end, dt.datetime) and end.tzinfo else None
        if age is None or age > CLAIM_LEASE:
            report.add("round", r["r"], "is a claim still pending long after it was computed: the leftover of a "
                                        "crashed process (the next round of its session drops it)")
    edges = store.select(_EDGES)
    report.checked["learned edges"] = len(edges)
    required = (("as", "sg:termA"), ("bs", "sg:termB"), ("ds", "sg:dissimilarity"), ("prevs", "sg:previous"),
                ("kinds", "sg:kind"), ("agents", "prov:wasAttributedTo"), ("times", "prov:generatedAtTime"))
    for r in edges:
        e = r["e"]
        for var, name in required:
            if int(r[var]) != 1:
                report.add("edge", e, f"has {int(r[var])} {name} values (expected 1)")
        if int(r["ds"]) == 1 and _unit_number(r["dv"]) is None:
            report.add("edge", e, f"sg:dissimilarity {r['dv']} is not a number in [0, 1]")
        if int(r["rounds"]) == 0:
            report.add("orphan", e, "learned edge without prov:wasGeneratedBy (its round)")
        elif int(r["rounds"]) > 1:
            report.add("edge", e, f"has {int(r['rounds'])} prov:wasGeneratedBy values (expected 1)")
        elif not _true(r.get("roundInGraph")):
            report.add("orphan", e, f"learned edge whose round {r['round']} is not in its graph {r['g']}")


# ----------------------------------------------------------------------------------------------- baseline

_BASELINE_HEAD = "SELECT ?params WHERE { GRAPH $g { ?b a prov:Entity ; sg:parameters ?params } }"
_BASELINE_PAIRS = """
SELECT ?a ?b (COUNT(DISTINCT ?d) AS ?n) (SAMPLE(?d) AS ?value) (COUNT(DISTINCT ?e) AS ?nodes) WHERE { GRAPH $g {
  ?e a sg:TermSimilarity OPTIONAL { ?e sg:termA ?a } OPTIONAL { ?e sg:termB ?b } OPTIONAL { ?e sg:dissimilarity ?d }
} } GROUP BY ?a ?b
"""


_BASELINE_GRAPHS = "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } FILTER(?g = $base || STRSTARTS(STR(?g), $prefix)) }"


def _check_baseline(store: Store, report: CheckReport) -> None:
    report.checked["baseline pairs"] = 0
    graphs = store.select(_BASELINE_GRAPHS, {"base": BASELINE_GRAPH, "prefix": str(BASELINE_GRAPH) + "/"})
    for row in sorted(graphs, key=lambda r: str(r["g"])):
        _check_one_baseline(store, report, row["g"])


def _check_one_baseline(store: Store, report: CheckReport, graph) -> None:
    g = {"g": graph}
    pairs = store.select(_BASELINE_PAIRS, g)
    heads = store.select(_BASELINE_HEAD, g)
    report.checked["baseline pairs"] += len(pairs)
    if not pairs and not heads:
        return
    if len(heads) != 1:
        report.add("baseline", graph, f"has {len(heads)} baseline descriptions with sg:parameters "
                                               "(expected 1)")
        return
    try:
        terms = list(json.loads(str(heads[0]["params"]))["terms"])
    except (ValueError, KeyError, TypeError):
        report.add("baseline", graph, "sg:parameters is not JSON with the list of its terms")
        return
    found = {}
    for r in pairs:
        if "a" not in r or "b" not in r:
            report.add("baseline", graph, f"{int(r['nodes'])} sg:TermSimilarity without sg:termA/termB")
            continue
        key = (str(r["a"]), str(r["b"]))
        found[key] = r
        if int(r["nodes"]) != 1 or int(r["n"]) != 1:
            report.add("baseline", f"{key[0]} / {key[1]}", f"{int(r['nodes'])} nodes with {int(r['n'])} values "
                                                           "(expected one value)")
        elif _unit_number(r["value"]) is None:
            report.add("baseline", f"{key[0]} / {key[1]}", f"dissimilarity {r['value']} is not in [0, 1]")
    for i, a in enumerate(terms):
        for b in terms[i + 1:]:
            if tuple(sorted((a, b))) not in found:
                report.add("baseline", f"{min(a, b)} / {max(a, b)}", "pair of the vocabulary has no value")


# ----------------------------------------------------------------------------------------------- collections

_COLLECTION_TERMS = """
SELECT ?c ?name ?item (COUNT(DISTINCT ?t) AS ?terms) (SAMPLE(?t) AS ?term) (COUNT(DISTINCT ?n) AS ?positions)
       (SAMPLE(?n) AS ?position) (COUNT(DISTINCT ?cat) AS ?categories) (SAMPLE(?cat) AS ?category)
       (COUNT(DISTINCT ?label) AS ?labels)
WHERE { GRAPH $g { ?c a sg:Collection OPTIONAL { ?c rdfs:label ?name } OPTIONAL { ?c sg:collectionTerm ?item
  OPTIONAL { ?item sg:term ?t } OPTIONAL { ?item sg:position ?n } OPTIONAL { ?item sg:category ?cat }
  OPTIONAL { ?item rdfs:label ?label } } } } GROUP BY ?c ?name ?item
"""
_MEMBERSHIPS = """
SELECT ?case (COUNT(DISTINCT ?c) AS ?n) (SAMPLE(?c) AS ?collection) WHERE { GRAPH $a {
  ?case a sg:Case OPTIONAL { ?case sg:inCollection ?c } } } GROUP BY ?case
"""
#: The (collection, term) pairs that the likelihoods of the collections' cases name.
_USED_TERMS = "SELECT DISTINCT ?c ?t WHERE { GRAPH $a { " + joined_patterns(
    "?case sg:inCollection ?c", "?an sg:annotates ?case", "?an sg:likelihood ?l", "?l sg:term ?t") + " } }"
_OUTSIDE_EXAMPLE = """SELECT (COUNT(DISTINCT ?l) AS ?n) (SAMPLE(?case) AS ?example) WHERE {
  GRAPH $a { ?case sg:inCollection $c . ?an sg:annotates ?case ; sg:likelihood ?l . ?l sg:term $t } }"""


def _check_collections(store: Store, report: CheckReport) -> None:
    """Each stored collection: terms at positions 0..k-1, each with one term IRI, category and label; its terms in
    its ontology; every case in exactly one collection (once any is stored); no likelihood of a case naming a term
    outside its collection."""
    import ontology
    from semgraph.graph.collection import stored_collections

    rows = store.select(_COLLECTION_TERMS, {"g": COLLECTIONS_GRAPH})
    by_collection: dict[str, list] = {}
    for r in rows:
        by_collection.setdefault(str(r["c"]), []).append(r)
    report.checked["collections"] = len(by_collection)
    for c, items in by_collection.items():
        if "name" not in items[0]:
            report.add("collection", c, "has no rdfs:label (its name)")
        if "item" not in items[0]:
            report.add("collection", c, "has no sg:collectionTerm")
            continue
        positions = []
        for r in items:
            for var, name in (("terms", "sg:term"), ("positions", "sg:position"), ("categories", "sg:category"),
                              ("labels", "rdfs:label")):
                if int(r[var]) != 1:
                    report.add("collection", r["item"], f"has {int(r[var])} {name} values (expected 1)")
            if int(r["categories"]) == 1 and not str(r["category"]).strip():
                report.add("collection", r["item"], "has an empty sg:category")
            if int(r["positions"]) == 1:
                positions.append(str(r["position"]))
        if sorted(positions, key=lambda p: (len(p), p)) != [str(i) for i in range(len(items))]:
            report.add("collection", c, f"term positions are not 0..{len(items) - 1} each once")
    if not by_collection:
        return
    try:
        collections = stored_collections(store)
    except InvalidInput as exc:  # a collection broken as reported above cannot be read whole
        report.add("collection", COLLECTIONS_GRAPH, f"cannot be read: {exc}")
        collections = []
    loaded = {info.name for info in ontology.catalog(store)}
    for c in collections:
        if c.ontology not in loaded:  # nothing to check the terms against (the engine then needs a stored baseline)
            continue
        try:
            hierarchy = ontology.hierarchy(store, c.ontology)
        except ontology.OntologyError as exc:
            report.add("collection", c.iri, f"its ontology {c.ontology!r} is not usable: {exc}")
            continue
        missing = [t for t in c.terms if t not in hierarchy]
        if missing:
            report.add("collection", c.iri, f"{len(missing)} term(s) are not in its ontology {c.ontology!r}, "
                                            f"e.g. {missing[0]}")
    members = store.select(_MEMBERSHIPS, {"a": ANNOTATIONS_GRAPH})
    known = {str(c.iri) for c in collections}
    for r in members:
        n = int(r["n"])
        if n != 1:
            report.add("collection", r["case"], f"case is in {n} collections (expected exactly 1 once collections "
                                                "are defined)")
        elif str(r["collection"]) not in known:
            report.add("collection", r["case"], f"case is in {r['collection']}, which is not a defined collection")
    own = {c: {str(r["term"]) for r in items if "term" in r} for c, items in by_collection.items()}
    outside: dict[str, list] = {}
    for r in store.select(_USED_TERMS, {"a": ANNOTATIONS_GRAPH}):  # terms as stored: a literal is outside too
        if not (isinstance(r["t"], URIRef) and str(r["t"]) in own.get(str(r["c"]), ())):
            outside.setdefault(str(r["c"]), []).append(r["t"])
    for c, terms in sorted(outside.items()):
        n, example = 0, None
        for t in sorted(terms, key=str):
            row = store.select(_OUTSIDE_EXAMPLE, {"a": ANNOTATIONS_GRAPH, "c": URIRef(c), "t": t})[0]
            n += int(row["n"])
            example = example or (t, row["example"])
        report.add("collection", URIRef(c), f"{n} likelihood(s) of its cases name terms outside it, e.g. "
                                            f"{example[0]} (case {example[1]})")


# ----------------------------------------------------------------------------------------------- ontologies

_DESCRIBED = """
SELECT ?g (COUNT(DISTINCT ?name) AS ?names) (COUNT(DISTINCT ?root) AS ?roots) (COUNT(DISTINCT ?src) AS ?sources)
       (COUNT(DISTINCT ?t) AS ?times) (COUNT(DISTINCT ?n) AS ?counts) (SAMPLE(?typed) AS ?isTyped)
WHERE { GRAPH ?g { ?x ?y ?z } BIND(EXISTS { GRAPH ?g { ?g a sg:OntologyGraph } } AS ?typed)
  OPTIONAL { GRAPH ?g { ?g sg:ontologyName ?name } } OPTIONAL { GRAPH ?g { ?g sg:root ?root } }
  OPTIONAL { GRAPH ?g { ?g dcterms:source ?src } } OPTIONAL { GRAPH ?g { ?g prov:generatedAtTime ?t } }
  OPTIONAL { GRAPH ?g { ?g sg:tripleCount ?n } }
  FILTER(STRSTARTS(STR(?g), $prefix)) } GROUP BY ?g
"""


def _check_ontologies(store: Store, report: CheckReport) -> None:
    rows = store.select(_DESCRIBED, {"prefix": _ONTOLOGY_PREFIX})
    report.checked["ontology graphs"] = len(rows)
    for r in rows:
        if not _true(r.get("isTyped")):
            report.add("ontology", r["g"], "graph lacks its description (?g a sg:OntologyGraph)")
        for var, name in (("names", "sg:ontologyName"), ("roots", "sg:root"), ("sources", "dcterms:source"),
                          ("times", "prov:generatedAtTime"), ("counts", "sg:tripleCount")):
            if int(r[var]) != 1:
                report.add("ontology", r["g"], f"description has {int(r[var])} {name} values (expected 1)")


# ----------------------------------------------------------------------------------------------- case files

_FILES = """
SELECT ?c ?p ?path WHERE { GRAPH $g { ?c a sg:Case ; ?p ?path VALUES ?p { sg:imageFile sg:maskFile } } }
ORDER BY ?c ?p ?path
"""
_FILE_PROPERTIES = {str(SG.imageFile): "sg:imageFile", str(SG.maskFile): "sg:maskFile"}


def _check_files(store: Store, report: CheckReport, data_dir: str | os.PathLike) -> None:
    """Report each case whose ``sg:imageFile`` / ``sg:maskFile`` is outside ``data_dir`` or names no file."""
    rows = store.select(_FILES, {"g": ANNOTATIONS_GRAPH})
    report.checked["case files"] = len(rows)
    root = Path(data_dir).resolve()
    for r in rows:
        name = _FILE_PROPERTIES[str(r["p"])]
        try:
            path = data_file(str(r["path"]), root)
        except InvalidInput as e:
            report.add("file", r["c"], f"{name} {e.message}")
            continue
        if not path.is_file():
            report.add("file", r["c"], f"{name} {str(r['path'])!r} is missing (no such file in {root})")


CHECKS: dict[str, Callable[[Store, CheckReport], None]] = {
    "cases": _check_cases, "rounds": _check_rounds, "baseline": _check_baseline, "ontologies": _check_ontologies,
    "collections": _check_collections,
}


def check_store(store: Store, data_dir: str | os.PathLike | None = None) -> CheckReport:
    """Check the integrity of ``store`` (read only); with ``data_dir``, also that the cases' image and mask files
    are inside that data folder and exist. See the module docstring for what is checked."""
    report = CheckReport()
    for check in CHECKS.values():
        check(store, report)
    if data_dir is not None:
        _check_files(store, report, data_dir)
    return report
