"""The Markdown change report of the learned relations and proposals, with the escaping of every text in it."""

from __future__ import annotations

import datetime as dt

from kg import Store
from semgraph.exchange.export.ontology_update import RULE, proposals
from semgraph.exchange.export.relations import (
    filter_text,
    labeller,
    learned_relations,
    local_id,
)

__all__ = ["MARKDOWN_SPECIAL", "markdown_text", "report"]

#: Characters with a meaning in (GitHub-flavoured) Markdown text: emphasis, code, links, HTML, table cells, escapes.
MARKDOWN_SPECIAL = frozenset("\\`*_[]<>|~")

_KIND_TEXT = {"closeMatch": "skos:closeMatch", "related": "skos:related", "reparent": "re-parenting"}


def markdown_text(text: str) -> str:
    """``text`` as literal Markdown inline text, safe in a paragraph, a list item or a table cell.

    Each character of :data:`MARKDOWN_SPECIAL` gets a backslash (CommonMark escapes), and every line break
    (``\\n``, ``\\r``, and the others of :meth:`str.splitlines`) becomes a space, so the text cannot end its line and
    start a heading, list or table row of its own.
    """
    return "".join("\\" + ch if ch in MARKDOWN_SPECIAL else ch for ch in " ".join(text.splitlines()))


def report(store: Store, **filters) -> str:
    """A readable Markdown change report (``filters`` as for :func:`learned_relations`): the learned relations, the
    proposals with their evidence and the evidence for promoting the current candidates (:func:`_evidence_lines`);
    every text from the store or the filters goes through :func:`markdown_text`."""
    relations = learned_relations(store, **filters)
    found = proposals(store, **filters)
    label = labeller(store, filters.get("collection"))
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    used = {k: v for k, v in filters.items() if v is not None and v != "" and k != "collection"
            and not (k == "min_sessions" and v == 1)}
    shown = filters.get("collection")
    lines = ["# Learned term relations: change report", "",
             f"Generated {now} from the feedback graphs of the store"
             + (f", collection {markdown_text(str(filter_text(shown)))}." if shown is not None else "."),
             "Filters: " + (", ".join(f"{k} = {markdown_text(str(filter_text(v)))}" for k, v in used.items())
                            if used else "none") + ".", ""]
    if not relations:
        lines += [("No learned term relations match: no feedback round has changed a term similarity yet "
                   "(or the filters exclude them all)."), ""]
        return "\n".join(lines)
    n_rounds = len({r for rel in relations for r in rel.round_ids})
    users = sorted({u for rel in relations for u in rel.users})
    lines += [(f"{len(relations)} term pair{'s' * (len(relations) != 1)} changed by feedback, from {n_rounds} "
               f"round{'s' * (n_rounds != 1)} by {len(users)} user{'s' * (len(users) != 1)} "
               f"({markdown_text(', '.join(users))})."), "", "## Proposed ontology changes", ""]
    if not found:
        lines += ["None: no pair was made closer by enough independent sessions (see the rule below).", ""]
    for n, p in enumerate(found, start=1):
        if p.kind == "reparent":
            now = markdown_text(", ".join(label(t) for t in p.current_parents)) or "nothing"
            head = (f"{n}. **Re-parent** {markdown_text(label(p.subject))} under "
                    f"{markdown_text(label(p.new_parent))} (now under {now})")
        else:
            head = f"{n}. **{_KIND_TEXT[p.kind]}** {markdown_text(p.label_a)} ↔ {markdown_text(p.label_b)}"
        lines.append(f"{head}: confidence {p.confidence:.3f}")
        theta = f", ontological {p.ontological:.2f}" if p.ontological is not None else ""
        lines.append(f"   - dissimilarity {p.baseline:.2f} → {p.learned:.2f}{theta}; {p.sessions} agreeing "
                     f"independent session(s), {p.users} user(s), {p.against} against")
        lines.append(f"   - supported by round(s) {markdown_text(', '.join(local_id(r, 'round') for r in p.rounds))}")
    lines += ["", *_evidence_lines(store, filters), "## All learned relations", "",
              "| pair | baseline | learned | change | rounds | sessions | users | first | last |",
              "|---|---:|---:|---:|---:|---:|---|---|---|"]
    for r in relations:
        lines.append(f"| {markdown_text(r.label_a)} ↔ {markdown_text(r.label_b)} | {r.baseline:.3f} | "
                     f"{r.learned:.3f} | {r.change:+.3f} | {r.rounds} | {r.sessions} | "
                     f"{markdown_text(', '.join(r.users))} | "
                     f"{r.first:%Y-%m-%d} | {r.last:%Y-%m-%d} |")
    lines += ["", "## Rule", "",
              (f"A pair is proposed when at least {filters.get('min_sessions') or 1} independent session(s) moved it "
              f"closer, more sessions agree than oppose, and the mean learned value is at least "
              f"{RULE['min_shift']} below the baseline. skos:closeMatch when the learned value is at most "
              f"{RULE['close_match_max']}, else skos:related; a re-parenting as well when the ontological "
              f"dissimilarity exceeds the learned one by at least {RULE['reparent_gap']}. Confidence = "
              "n_s/(n_s+1) · (1 − 2^−n_users) · min(1, |change|/0.3) · n_s/(n_s+n_against). Proposals are for "
              "review by a curator; nothing was changed in the ontology."), ""]
    return "\n".join(lines)


def _evidence_lines(store: Store, filters: dict) -> list[str]:
    """The section "Evidence for promotion": round-0 NDCG of held-out queries with the current candidates (those of
    the ``min_sessions`` filter) promoted or not (:func:`semgraph.evaluation.evidence.promotion_evidence`)."""
    # imported here: only a report ranks cases (docs/architecture.md)
    from semgraph.evaluation.evidence import promotion_evidence, signed

    ev = promotion_evidence(store, filters.get("collection"), min_sessions=filters.get("min_sessions") or 1)
    lines = ["## Evidence for promotion", "", markdown_text(ev.reading()), ""]
    if ev.difference is not None:
        d, counts, figures = ev.difference, ev.counts(), ev.as_dict()
        ci = f"{signed(d.difference.mean)} ({signed(d.difference.low)} to {signed(d.difference.high)})"
        rows = [("candidate pairs promoted", len(ev.pairs)), ("held-out queries", len(ev.queries)),
                (f"mean NDCG@{ev.k}, current baseline", f"{figures['mean_before']:.3f}"),
                (f"mean NDCG@{ev.k}, candidates promoted", f"{figures['mean_after']:.3f}"),
                ("mean difference (95 % CI)", ci),
                ("queries ranked better", f"{counts['better']} ({100 * d.better:.0f} %)"),
                ("queries ranked worse", f"{counts['worse']} ({100 * d.worse:.0f} %)"),
                ("queries unchanged", f"{counts['unchanged']} ({100 * d.ties:.0f} %)")]
        lines += ["| figure | value |", "|---|---:|",
                  *(f"| {markdown_text(name)} | {markdown_text(str(value))} |" for name, value in rows), ""]
    lines += [markdown_text(f"Candidates: term pairs that at least {ev.min_sessions} independent session(s) moved the "
                            "same way (the min_sessions filter; the other filters do not apply), set to the mean of "
                            "the agreeing sessions' values. Held-out queries: cases with a diagnosis never marked nor "
                            "a session's query in a feedback round, ranked by HSBD before any feedback among the "
                            "cases with a diagnosis of other patients (relevant: the same diagnosis)."), ""]
    return lines
