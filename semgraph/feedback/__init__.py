"""Relevance feedback: the algorithms (a registry) and feedback sessions recorded as rounds in the graph."""
