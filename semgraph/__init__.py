"""semgraph: knowledge-graph backed semantic retrieval of radiological images (the domain package)."""
