"""Recording and undoing the rounds of a session in a store that several clients write: the round-claim protocol.

:class:`RoundClaims` is the part of :class:`semgraph.feedback.sessions.Session` that writes to the store: a round
number is held by at most one client (:meth:`RoundClaims._write`), and a round is undone only while it is the
session's last one (:meth:`RoundClaims.undo`). What is written and read is the round graph of
:mod:`semgraph.graph.rounds`.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rdflib import URIRef

from kg import Store
from semgraph.errors import InvalidInput, SemgraphError
from semgraph.feedback.promotion import is_promoted
from semgraph.graph import rounds as _rounds
from semgraph.graph.rounds import StoredRound

if TYPE_CHECKING:
    import numpy as np

    from semgraph.feedback.sessions import Round

__all__ = ["CLAIM_ATTEMPTS", "CLAIM_PAUSE", "RoundClaims"]

#: Attempts at recording a round when every client that claimed its number at the same moment withdrew
#: (:meth:`RoundClaims._write`), and the base of the random pause between them (seconds, doubled per attempt).
CLAIM_ATTEMPTS = 6
CLAIM_PAUSE = 0.01

#: Locks of :func:`_turn`: a fixed set, so that sessions share them instead of each adding one.
_TURNS = tuple(threading.Lock() for _ in range(64))


def _turn(store: Store, session: URIRef) -> threading.Lock:
    """The lock the threads of this process hold while they record or undo a round of ``session`` in ``store``."""
    return _TURNS[hash((str(store.location), str(session))) % len(_TURNS)]


class RoundClaims:
    """Writing a session's rounds to its store and undoing them, for :class:`semgraph.feedback.sessions.Session`
    (which provides the attributes below)."""

    store: Store
    session_id: str
    rounds: list[Round]
    iri: URIRef
    dissimilarity: np.ndarray
    query: np.ndarray
    weights: np.ndarray | None
    round_triples: Callable[[Round], list[tuple]]  # the graph of a round
    # make (D, query, term weights) the session's state and re-rank
    _set_state: Callable[[np.ndarray, np.ndarray, np.ndarray | None], None]

    # ------------------------------------------------------------------ recording
    def _write(self, new: Round) -> None:
        """Record ``new`` so that no two clients (threads, server processes) ever both record one round number.

        Oxigraph (embedded, or ``oxigraph serve``) runs each update on a snapshot and commits it without a conflict
        check, so two overlapping conditional inserts can both pass their ``FILTER NOT EXISTS`` (in a measurement, a
        quarter of the races of 32 writers stored a number twice; deleting a shared counter triple did not help).
        The insert is therefore a claim, marked ``sg:pending`` and checked once it is committed: it stands if it is
        the only round with its number and the round it builds on is recorded (not pending); then the mark is
        removed, else the claim is withdrawn (its graph dropped). Of two overlapping claims the one checked later
        sees the other, so at most one client is told it recorded a number; when every claimant withdrew, each
        claims again after a random pause. Readers (:func:`semgraph.feedback.replay.load_session`, exports) skip
        pending rounds, and no round is built on one: a pending round may still be withdrawn, and a round built on
        it would be orphaned.

        On a store that no other process writes to (``Store.shared`` false: an embedded folder, held by one process)
        the threads of this process take turns per session instead (:func:`_turn`): the check comes first, and the
        round is inserted as recorded, in one write.

        Raises :class:`SemgraphError` 409 (nothing of ``new`` left in the store) when another client holds the
        number or undid the round ``new`` builds on.
        """
        if not self.store.shared:
            with _turn(self.store, self.iri):
                claims = self._stored_claims(new.number - 1)
                if any(c.number >= new.number for c in claims) or not self._builds_on_recorded(claims):
                    raise self._conflict(new)
                self._insert(new, pending=False)
            return
        for attempt in range(CLAIM_ATTEMPTS):
            self._insert(new, pending=True)
            if self._claim_stands(new):
                _rounds.confirm(self.store, new.iri, new.graph)
                return
            self.store.drop(str(new.graph))
            if self._stored_claims(new.number) or not self._recorded(self.rounds[-1] if self.rounds else None):
                break
            time.sleep(random.uniform(0, CLAIM_PAUSE * 2 ** attempt))
        raise self._conflict(new)

    def _conflict(self, new: Round) -> SemgraphError:
        return SemgraphError(f"round {new.number} of session {self.session_id} was recorded by another client "
                             "meanwhile (or the round before it was undone); nothing was written; reload the session "
                             "and try again", title="Conflict", status=409)

    def _insert(self, new: Round, *, pending: bool) -> None:
        """Write ``new``'s graph in one update; ``pending`` marks it as a claim that :meth:`_claim_stands` decides.

        The claim has no guard in the update (no round with this number, the last one still stored): it would not
        make the claim safe (see :meth:`_write`) and made Oxigraph spend about 0.9 ms more CPU per round."""
        _rounds.insert_round(self.store, new.iri, new.graph, self.round_triples(new), pending=pending)

    def _claim_stands(self, new: Round) -> bool:
        """Is ``new`` the only stored round with its number (pending or not), on top of the session's last round,
        recorded and not pending?

        One query: the rounds numbered from the previous one on (a round's graph is written and dropped whole, so
        the previous round is recorded exactly when it is listed)."""
        claims = self._stored_claims(new.number - 1)
        holders = {c.iri for c in claims if c.number == new.number}
        return holders == {str(new.iri)} and self._builds_on_recorded(claims)

    def _builds_on_recorded(self, claims: list[StoredRound]) -> bool:
        """Is the session's last round recorded and not pending among ``claims`` (always true before round 1)?"""
        previous = self.rounds[-1] if self.rounds else None
        return previous is None or any(c.iri == str(previous.iri) and not c.pending for c in claims)

    def is_current(self) -> bool:
        """Are this copy's rounds exactly the session's rounds in the store (one query)? False when another process
        added or undid a round meanwhile; then replay the session (:func:`semgraph.feedback.replay.load_session`)."""
        return set(self._rounds_from(1)) == {str(r.iri) for r in self.rounds}

    def _rounds_from(self, number: int) -> dict[str, int]:
        """IRI → number of the session's recorded (not pending) rounds numbered ``number`` or higher."""
        return {c.iri: c.number for c in self._stored_claims(number) if not c.pending}

    def _stored_claims(self, number: int) -> list[StoredRound]:
        """The session's stored rounds numbered ``number`` or higher, recorded or pending (expired claims dropped:
        :func:`semgraph.graph.rounds.stored_rounds`)."""
        return _rounds.stored_rounds(self.store, self.iri, number)

    def _recorded(self, round_: Round | None) -> bool:
        """Is ``round_`` recorded, not pending (``None``, the start of the session, always is)?"""
        return round_ is None or _rounds.is_recorded(self.store, round_.iri, round_.graph)

    # ------------------------------------------------------------------ rollback
    def undo(self) -> Round:
        """Drop the last round's named graph (one write) and return to the previous ``D`` and ranking.

        The round is dropped only while it is the session's last round in the store. When another client (another
        window, another server process) added a round after it or undid it meanwhile, this copy of the session is
        stale: :class:`SemgraphError` 409 is raised, nothing is dropped and the session is unchanged. A round
        added at the very moment of the drop (which a snapshot-isolated store lets through) is detected afterwards,
        and the dropped round is written back before the 409.
        """
        if not self.rounds:
            raise InvalidInput(f"session {self.session_id} has no round to undo")
        with contextlib.nullcontext() if self.store.shared else _turn(self.store, self.iri):
            return self._undo_last()

    def _undo_last(self) -> Round:
        """:meth:`undo`, once no other thread of this process records or undoes a round of this session."""
        last = self.rounds[-1]
        if is_promoted(self.store, last.iri):
            raise InvalidInput(f"round {last.number} of session {self.session_id} was promoted into the baseline; "
                               "it cannot be undone")
        stored = self._rounds_from(last.number)
        if str(last.iri) not in stored:
            raise SemgraphError(
                f"round {last.number} of session {self.session_id} is no longer recorded (it was undone in another "
                "window or server process); nothing was undone; reload the session and try again",
                title="Conflict", status=409)
        if len(stored) > 1:
            raise self._changed(last, stored)
        _rounds.drop_if_last(self.store, last.iri, last.graph, session=self.iri, number=last.number)
        after = self._rounds_from(last.number)
        if after:  # a round was added at the moment of the drop
            if str(last.iri) not in after:
                self._insert(last, pending=False)
            raise self._changed(last, after)
        self.store.drop(str(last.graph))  # the emptied graph's name, which the conditional DELETE leaves behind
        self.rounds.pop()
        self._set_state(self.dissimilarity, self.query, self.weights)
        return last

    def _changed(self, last: Round, stored: dict[str, int]) -> SemgraphError:
        """The 409 of an undo whose round is no longer the session's last one (``stored``: rounds from its number)."""
        others = [n for iri, n in stored.items() if iri != str(last.iri)]
        what = (f"round {max(others)} was added to session {self.session_id} meanwhile" if others else
                f"session {self.session_id} changed meanwhile")
        return SemgraphError(f"{what} (in another window or server process), so round {last.number} is no longer "
                             "its last round; nothing was undone; reload the session and try again",
                             title="Conflict", status=409)
