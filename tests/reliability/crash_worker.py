"""A worker process for the crash-consistency tests: it writes and prints one ``ACK`` line per committed write.

    python tests/reliability/crash_worker.py ingest DATA_DIR MANIFEST        # the real `semgraph ingest` CLI
    python tests/reliability/crash_worker.py feedback DATA_DIR ROUNDS SEED  # feedback rounds via semgraph.feedback.sessions
    python tests/reliability/crash_worker.py hold DATA_DIR                   # open the store, write on each stdin line

The tests kill it with SIGKILL at random moments and compare the store with the acknowledged writes.
"""

from __future__ import annotations

import sys


def ack(*parts) -> None:
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def run_ingest(data_dir: str, manifest: str) -> None:
    import semgraph.exchange.ingest as ingest_mod
    from semgraph.cli import load_commands

    original = ingest_mod.write_case

    def write_case(store, case, annotations=(), **kw):
        original(store, case, annotations, **kw)
        ack("ACK", "case", case.case_id)

    ingest_mod.write_case = write_case
    ack("READY")
    load_commands()(["--data-dir", data_dir, "ingest", manifest, "--no-model"], standalone_mode=False)
    ack("DONE")


def run_feedback(data_dir: str, rounds: int, seed: int) -> None:
    import numpy as np

    import kg
    from semgraph.feedback.sessions import start_session
    from semgraph.retrieval.engine import Engine

    store = kg.open_store(f"{data_dir}/graph")
    engine = Engine.from_store(store)
    rng = np.random.default_rng(seed)
    ack("READY")
    session = None
    for i in range(rounds):
        if session is None or i % 3 == 0:
            query = engine.ids[int(rng.integers(len(engine.ids)))]
            session = start_session(store, engine, query, f"user{i % 2}")
        others = [c for c in engine.ids if c != session.query_case]
        picked = rng.choice(len(others), size=3, replace=False)
        marks = {others[int(j)]: v for j, v in zip(picked, ("relevant", "irrelevant", "relevant"))}
        rnd = session.feedback(marks)
        ack("ACK", "round", rnd.round_id, session.session_id, rnd.number, len(rnd.changes))
    ack("DONE")


def run_hold(data_dir: str) -> None:
    import kg

    store = kg.open_store(f"{data_dir}/graph")
    ack("READY")
    for n, _ in enumerate(sys.stdin, start=1):
        store.update(f"INSERT DATA {{ GRAPH <urn:x:hold> {{ <urn:x:s> <urn:x:p> {n} }} }}")
        ack("ACK", "write", n, store.count("urn:x:hold"))


if __name__ == "__main__":
    mode, folder, *rest = sys.argv[1:]
    if mode == "ingest":
        run_ingest(folder, rest[0])
    elif mode == "feedback":
        run_feedback(folder, int(rest[0]), int(rest[1]))
    elif mode == "hold":
        run_hold(folder)
    else:
        raise SystemExit(f"unknown mode {mode}")
