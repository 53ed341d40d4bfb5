"""Relevance feedback: the algorithms (a registry: :mod:`~semgraph.feedback.algorithms`) and feedback sessions
recorded as rounds in the graph: the session and its rounds (:mod:`~semgraph.feedback.sessions`), the round-claim
protocol that writes and undoes them (:mod:`~semgraph.feedback.claims`), sessions read back from the graph
(:mod:`~semgraph.feedback.replay`) and the promotion of learned values into a baseline
(:mod:`~semgraph.feedback.promotion`)."""
