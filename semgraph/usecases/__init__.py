"""The use-case layer: what a user can ask of semgraph, implemented once.

The command line (:mod:`semgraph.cli`) and the web app (:mod:`webapp`) both call these functions and only turn
their arguments and results into options, form fields, text, HTML or JSON; ranking, filtering, grouping, captions
and suggestions are decided here (on top of :mod:`semgraph.retrieval` and :mod:`semgraph.text`), never in a
presentation layer.

* :mod:`semgraph.usecases.text_search`: free-text search (fused ranking, filters, groups, suggestion), the
  diagnosis suggestion for a case and a case's patient timeline.
"""
