"""Evaluation of retrieval with relevance feedback: NDCG@K and the paper's protocol (docs/algorithms.md §6).

Figures are in :mod:`semgraph.evaluation.figures` (imported on demand: it needs matplotlib).
"""

from semgraph.evaluation.metrics import FORMS, dcg, ndcg, ndcg_curve
from semgraph.evaluation.protocol import (
    FEEDBACKS,
    ProtocolConfig,
    compare,
    eligible_queries,
    proxy_signatures,
    run_protocol,
    simulate_likelihoods,
)

__all__ = [
    "FEEDBACKS",
    "FORMS",
    "ProtocolConfig",
    "compare",
    "dcg",
    "eligible_queries",
    "ndcg",
    "ndcg_curve",
    "proxy_signatures",
    "run_protocol",
    "simulate_likelihoods",
]
