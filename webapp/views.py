"""View models of the radiologists' pages (:mod:`webapp.radiology`) and their JSON twin (:mod:`webapp.api_retrieval`):
hits with captions, frames and rank moves, the query's terms by category, plain-language changes, a session's
current round, case lists and case details, the filter form's choices.

No retrieval math here: every number comes from :mod:`semgraph`.
"""

from __future__ import annotations

import numpy as np

from kg.namespaces import ANNOTATIONS_GRAPH
from semgraph.errors import InvalidInput, NotFound
from semgraph.feedback.algorithms import GUARD_HALVINGS, session_algorithm
from semgraph.feedback.sessions import Session
from semgraph.graph.casegraph import case_iri
from semgraph.graph.rounds import case_rounds
from semgraph.retrieval import grouping
from semgraph.retrieval.engine import Engine, Hit

from .engines import engine
from .params import check_id
from .services import services
from .web_sessions import Entry, private_parts, ranking_after


def filter_choices(eng: Engine) -> dict:
    """Values offered by the filter form (taken from the indexed cases)."""
    def values(name):
        return sorted({getattr(c, name) for c in eng.cases if getattr(c, name)})

    return {"diagnoses": values("diagnosis"), "sexes": values("sex"), "phases": values("contrast_phase"),
            "segments": values("liver_segment"),
            "terms": [{"label": lab, "category": cat} for lab, cat in zip(eng.labels, eng.categories)]}


# --------------------------------------------------------------------------------------------------- results


def terms_by_category(eng: Engine, vector) -> list[dict]:
    """Likelihood bars grouped by category, in vocabulary order."""
    out: list[dict] = []
    for iri, label, category, value in zip(eng.terms, eng.labels, eng.categories, np.asarray(vector, dtype=float)):
        if not out or out[-1]["category"] != category:
            out.append({"category": category or "other", "terms": []})
        out[-1]["terms"].append({"iri": iri, "rid": iri.rsplit("/", 1)[-1], "label": label,
                                 "value": round(float(value), 4), "percent": round(100 * float(value))})
    return out


def query_diagnosis(entry: Entry) -> str | None:
    case_id = entry.session.query_case
    if not case_id:
        return None
    try:
        return entry.session.engine.case(case_id).diagnosis
    except NotFound:
        return None


def move(rank: int, previous: dict[str, int] | None, case_id: str) -> dict:
    """How a case moved since the previous round: up/down by n places, same, or new; None before any round."""
    if previous is None:
        return {"kind": "none", "by": 0, "text": ""}
    if case_id not in previous:
        return {"kind": "new", "by": 0, "text": "new"}
    by = previous[case_id] - rank
    if by > 0:
        return {"kind": "up", "by": by, "text": f"↑{by}"}
    if by < 0:
        return {"kind": "down", "by": -by, "text": f"↓{-by}"}
    return {"kind": "same", "by": 0, "text": "="}


def hit_views(eng: Engine, hits: list[Hit], *, previous: list[Hit] | None = None, diagnosis: str | None = None,
              marks: dict | None = None) -> list[dict]:
    prev = None if previous is None else {h.case_id: i for i, h in enumerate(previous, start=1)}
    out = []
    for rank, hit in enumerate(hits, start=1):
        case = eng.case(hit.case_id)
        match = None if not diagnosis or not hit.diagnosis else (hit.diagnosis.casefold() == diagnosis.casefold())
        out.append({"case_id": hit.case_id, "rank": rank, "distance": round(hit.distance, 4),
                    "diagnosis": hit.diagnosis, "patient_id": case.patient_id,
                    "study_date": case.study_date.isoformat() if case.study_date else None,
                    "caption": eng.caption(hit.case_id), "match": match,
                    "move": move(rank, prev, hit.case_id), "mark": (marks or {}).get(hit.case_id, "neutral"),
                    "explanation": [c.label for c in hit.explanation]})
    return out


def groups_of(eng: Engine, views: list[dict], by: str | None) -> list[dict] | None:
    """Results grouped by diagnosis or patient (best group first), or None for a flat grid."""
    if not by:
        return None
    if by not in ("diagnosis", "patient"):
        raise InvalidInput(f"group results by 'diagnosis' or 'patient', not {by!r}")
    ids = [v["case_id"] for v in views]
    found = grouping.group(ids, by, scores=[v["distance"] for v in views], cases={i: eng.case(i) for i in ids})
    by_id = {v["case_id"]: v for v in views}
    return [{"key": g.key if g.key not in (None, "None") else "(unknown)", "size": g.size, "best_rank": g.best_rank,
             "members": [by_id[m.case_id] for m in g.members]} for g in found]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def describe_change(change, marks: dict[str, str]) -> str:
    """``water density ↔ hypodense: 0.42 → 0.32 (closer), from cases X and Y marked relevant``."""
    direction = "closer" if change.after < change.before else "farther apart"
    text = f"{change.describe()} ({direction})"
    by_mark: dict[str, list[str]] = {}
    for case_id in change.derived_from:
        by_mark.setdefault(marks.get(case_id, "marked earlier"), []).append(case_id)
    parts = [f"{'case' if len(ids) == 1 else 'cases'} {_join(ids)} marked {mark}" for mark, ids in by_mark.items()]
    return text + (", from " + "; ".join(parts) if parts else "")


def change_views(round_) -> list[dict]:
    if round_ is None:
        return []
    return [dict(c.as_dict(), text=describe_change(c, round_.marks), delta=round(c.after - c.before, 4))
            for c in round_.changes]


#: How many terms the session page lists whose weight the last round moved most.
WEIGHT_CHANGES_SHOWN = 5


def _weights_around(session: Session) -> tuple[np.ndarray, np.ndarray] | None:
    """The term weights before and after the session's last round (ones for none); None when neither has any."""
    if not session.rounds:
        return None
    after = session.rounds[-1].weights
    before = session.rounds[-2].weights if len(session.rounds) > 1 else None
    if after is None and before is None:
        return None
    ones = np.ones(len(session.terms))
    return (ones if before is None else before), (ones if after is None else after)


def weight_changes(eng: Engine, session: Session) -> list[dict]:
    """The terms whose weight (docs/algorithms.md §5.7) the last round moved most, largest |after − before|
    first, at most :data:`WEIGHT_CHANGES_SHOWN`: ``term``, ``label``, ``before``, ``after`` and ``text``
    (``hypodense: weight 1.00 → 1.62 (counts more)``); empty when no weight moved."""
    around = _weights_around(session)
    if around is None:
        return []
    before, after = around
    delta = after - before
    order = [i for i in np.argsort(-np.abs(delta), kind="stable")[:WEIGHT_CHANGES_SHOWN] if abs(delta[i]) > 1e-9]
    return [{"term": eng.terms[i], "label": eng.labels[i], "before": float(before[i]), "after": float(after[i]),
             "text": f"{eng.labels[i]}: weight {before[i]:.2f} → {after[i]:.2f} "
                     f"({'counts more' if delta[i] > 0 else 'counts less'})"} for i in order]


def moved_query(eng: Engine, session: Session, number: int) -> list[dict] | None:
    """The query vector after round ``number`` as bars when feedback moved it (Rocchio), else None."""
    if number < 1:
        return None
    q = session.rounds[number - 1].query
    if np.allclose(q, session.query0, atol=1e-9):
        return None
    return terms_by_category(eng, q)


def _percent(step: float) -> str:
    return f"{100 * step:g} %"


def guard_text(round_) -> str | None:
    """What the round guard (docs/algorithms.md §5.6) did to a round, in plain language; None for a round taken
    in full (or one whose outcome is not known, such as a round read back from the graph)."""
    if round_.guard == "reduced":
        return (f"This round was reduced to {_percent(round_.step)} because the full step would have ranked the "
                "cases you marked worse.")
    if round_.guard == "refused":
        return (f"This round was refused because every step, down to {_percent(0.5 ** GUARD_HALVINGS)}, would have "
                "ranked the cases you marked worse: the term similarities and the query stay as they were. Your "
                "marks are recorded.")
    return None


def round_outcome(entry: Entry, hits: list[Hit], previous: list[Hit] | None) -> dict | None:
    """The outcome of the session's last round: the guard's decision (``guard``, ``step``, the evidence before
    and after it, ``guard_text``), whether the query, the term weights and the results moved, and
    ``nothing_changed`` (no term pair or weight changed and no result moved) with ``nothing_text``, a hint to mark
    more; None before any round."""
    s = entry.session
    if not s.rounds or previous is None:
        return None
    last = s.rounds[-1]
    query_before = s.rounds[-2].query if len(s.rounds) > 1 else s.query0
    query_moved = not np.allclose(last.query, query_before, atol=1e-9)
    results_moved = [h.case_id for h in hits] != [h.case_id for h in previous]
    around = _weights_around(s)
    weights_moved = around is not None and not np.allclose(*around, rtol=0, atol=1e-9)
    nothing = not last.changes and not results_moved and not weights_moved
    nothing_text = None
    if nothing and last.guard != "refused":  # a refused round says why nothing changed
        nothing_text = ("Nothing changed: no term similarity changed and no result moved. Mark more cases, at "
                        "least one relevant and one irrelevant result.")
        if query_moved:
            nothing_text += " (The query moved a little, without changing the order of the results.)"
    return {"number": last.number, "guard": last.guard, "step": last.step,
            "evidence_before": last.evidence_before, "evidence_after": last.evidence_after,
            "guard_text": guard_text(last), "query_moved": bool(query_moved), "results_moved": results_moved,
            "weights_moved": weights_moved,
            "nothing_changed": nothing, "nothing_text": nothing_text}


def session_view(entry: Entry, *, group_by: str | None = None) -> dict:
    """Everything the session page and GET /api/v1/sessions/<id> show."""
    s = entry.session
    eng = s.engine
    n = entry.round
    hits = ranking_after(entry, n)
    previous = ranking_after(entry, n - 1) if n >= 1 else None
    diagnosis = query_diagnosis(entry)
    last = s.rounds[-1] if s.rounds else None
    views = hit_views(eng, hits, previous=previous, diagnosis=diagnosis)
    return {
        "session_id": s.session_id, "user": s.user, "round": n,
        "rounds": [{"round_id": r.round_id, "number": r.number, "marks": dict(r.marks),
                    "ended_at": r.ended_at.isoformat(), "changes": len(r.changes), "guard": r.guard,
                    "step": r.step} for r in s.rounds],
        "query_case": s.query_case, "query_diagnosis": diagnosis, **private_parts(entry),
        "query_text": s.query_text,
        "algorithm": session_algorithm(entry.meta.get("algorithm"), text=s.query_text is not None),
        "k": s.k, "filters": list(entry.meta.get("filters") or []),
        "query_terms": terms_by_category(eng, s.query0),
        "moved_query_terms": moved_query(eng, s, n),
        "results": views, "groups": groups_of(eng, views, group_by), "group_by": group_by or "",
        "changes": change_views(last), "weight_changes": weight_changes(eng, s),
        "round_outcome": round_outcome(entry, hits, previous),
        "matches": sum(1 for v in views if v["match"]) if diagnosis else None,
    }


# --------------------------------------------------------------------------------------------------- cases

_ANNOTATIONS = """
SELECT ?kind ?term ?value ?agent ?time WHERE { GRAPH $g {
  ?a sg:annotates $c ; sg:annotationKind ?kind ; sg:likelihood ?l . ?l sg:term ?term ; sg:value ?value .
  OPTIONAL { ?a prov:wasAttributedTo ?agent } OPTIONAL { ?a prov:generatedAtTime ?time } } }"""


def annotations(case_id: str) -> list[dict]:
    """Every annotation of a case (reader / predicted / truth) as bars, in vocabulary order."""
    svc = services()
    eng = engine(svc)
    kinds: dict[str, dict] = {}
    for r in svc.store.select(_ANNOTATIONS, {"g": ANNOTATIONS_GRAPH, "c": case_iri(case_id)}):
        kind = kinds.setdefault(str(r["kind"]), {"values": {}, "agent": None, "time": None})
        kind["values"][str(r["term"])] = float(r["value"])
        kind["agent"] = str(r["agent"]) if "agent" in r else None
        kind["time"] = str(r["time"]) if "time" in r else None
    order = {"reader": 0, "predicted": 1, "truth": 2}
    out = []
    for name in sorted(kinds, key=lambda k: (order.get(k, 9), k)):
        info = kinds[name]
        vector = [info["values"].get(t, 0.0) for t in eng.terms]
        out.append({"kind": name, "attributed_to": info["agent"], "generated_at": info["time"],
                    "categories": terms_by_category(eng, vector)})
    return out


def feedback_history(case_id: str) -> list[dict]:
    """The feedback rounds that involved a case (marked in them, or their session's query), newest first."""
    return [{"round_id": r.round.rsplit("/", 1)[-1], "round": r.number, "session_id": r.session.rsplit("/", 1)[-1],
             "user": r.user, "role": r.role, "relevance": r.relevance, "ended_at": r.ended,
             "learned_edges": r.learned_edges}
            for r in case_rounds(services().store, case_iri(case_id))]


def case_summary(eng: Engine, case) -> dict:
    return {"case_id": case.case_id, "patient_id": case.patient_id, "study_id": case.study_id,
            "diagnosis": case.diagnosis, "study_date": case.study_date.isoformat() if case.study_date else None,
            "age": case.age, "sex": case.sex, "contrast_phase": case.contrast_phase,
            "liver_segment": case.liver_segment, "has_image": bool(case.image_file)}


def list_cases(q: str = "", diagnosis: str = "", limit: int = 50, offset: int = 0) -> tuple[int, list[dict]]:
    """Indexed cases whose id, patient id or diagnosis contains ``q`` (case-insensitive), optionally of one
    diagnosis."""
    eng = engine()
    needle = (q or "").strip().casefold()
    wanted = (diagnosis or "").strip().casefold()
    found = [c for c in eng.cases
             if (not needle or any(needle in (text or "").casefold() for text in (c.case_id, c.patient_id, c.diagnosis)))
             and (not wanted or (c.diagnosis or "").casefold() == wanted)]
    return len(found), [case_summary(eng, c) for c in found[offset:offset + limit]]


def case_detail(case_id: str) -> dict:
    """Metadata, caption, all annotations, the patient's other studies and the feedback history of a case."""
    from semgraph.retrieval.timeline import patient_timeline

    eng = engine()
    check_id(case_id, "case")
    case = eng.case(case_id)
    timeline = patient_timeline(services().store, case_id, list(eng.terms))
    others = [dict(e.as_dict(), when=when) for when, entries in
              (("earlier", timeline.earlier), ("same day", timeline.same_day), ("later", timeline.later),
               ("undated", timeline.undated)) for e in entries]
    for other in others:
        other.pop("likelihoods", None)
    return dict(case_summary(eng, case), caption=eng.caption(case_id), annotations=annotations(case_id),
                other_studies=others, feedback=feedback_history(case_id))
