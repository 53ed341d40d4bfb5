"""A live app over a small generated cohort, for the radiologists' web and browser tests.

Importable as ``radiology_fixture`` (pytest puts ``tests/`` on ``sys.path``, see ``pythonpath`` in pyproject.toml).

``build_cohort_site(tmp_path_factory, users)`` generates 30 cases at 128 px (semgraph.cohort.generate), ingests them
without a model, trains term models and annotates the cases (so likelihoods and a model exist), loads radlex-liver,
adds the given users and serves the app with waitress on a free loopback port.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import ontology


@dataclass
class CohortSite:
    url: str
    app: object
    data_dir: Path
    cohort: Path
    server: object
    thread: threading.Thread
    case_ids: list = field(default_factory=list)

    @property
    def store(self):
        return self.app.extensions["semgraph"].store

    def stop(self) -> None:
        self.server.close()
        self.thread.join(timeout=10)
        self.app.extensions["semgraph"].close()


def _serve(server) -> None:
    try:
        server.run()
    except OSError:  # the listening socket was closed by stop(): the loop ends
        pass


def best_feedback_query(store, k: int = 12):
    """A query case (and its diagnosis-based marks: 3 relevant, 3 irrelevant) whose round changes the ranking most.

    Test setup only: it picks the input; what the pages show is checked by the tests.
    """
    from semgraph.feedback import sessions
    from semgraph.retrieval.engine import Engine

    engine = Engine.from_store(store)
    best = None
    for query in engine.ids:
        session = sessions.start_session(store, engine, query, "probe", k=k)
        diagnosis = engine.case(query).diagnosis
        first = [h.case_id for h in session.ranking]
        rel = [h.case_id for h in session.ranking if h.diagnosis == diagnosis][:3]
        irr = [h.case_id for h in session.ranking if h.diagnosis != diagnosis][:3]
        if len(rel) < 3 or len(irr) < 3:
            continue
        marks = {**{c: "relevant" for c in rel}, **{c: "irrelevant" for c in irr}}
        new = session.compute_round(marks)  # nothing is written
        order = [h.case_id for h in engine.with_dissimilarity(new.dissimilarity).search_vector(
            new.query, k, exclude=(query,))]
        moved = sum(a != b for a, b in zip(first, order))
        if new.changes and (best is None or moved > best[0]):
            best = (moved, query, marks)
    assert best is not None and best[0] > 0, "no query in the cohort moves the ranking"
    return best[1], best[2]


def build_cohort_site(tmp_path_factory, users: dict[str, tuple[str, str]], *, n: int = 30, extra=None) -> CohortSite:
    from waitress import create_server

    from semgraph import cohort
    from semgraph.exchange import ingest, training
    from semgraph.graph.casegraph import read_cases
    from webapp import create_app

    data_dir = tmp_path_factory.mktemp("radiology-data")
    manifest = cohort.generate(n=n, size=128, out_dir=data_dir / "cohort", progress=False)
    app = create_app({"data_dir": str(data_dir), **(extra or {})})
    services = app.extensions["semgraph"]
    store = services.store
    ontology.load(store, ontology.BUNDLED_RADLEX)
    report = ingest.ingest(store, manifest, data_dir, progress=False)
    assert len(report.ingested) >= n - 5, report.summary()
    model, _ = training.train(store, data_dir)
    training.annotate(store, data_dir, model, progress=False)
    for name, (role, password) in users.items():
        services.users.add(name, role, password)
    server = create_server(app, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=_serve, args=(server,), name="waitress-radiology", daemon=True)
    thread.start()
    return CohortSite(f"http://127.0.0.1:{server.effective_port}", app, Path(data_dir), manifest.parent, server, thread,
                      [c.case_id for c in read_cases(store)])
