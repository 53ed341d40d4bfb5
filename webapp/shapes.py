"""The SHACL shapes of the graph model at a stable address: ``/ns/shapes.ttl`` (public, Turtle).

The file is the one shipped in the package (``semgraph/data/shapes.ttl``, :func:`semgraph.graph.shapes.shapes_text`);
docs/shapes.md describes it.
"""

from __future__ import annotations

from flask import Blueprint, Response

from semgraph.graph.shapes import shapes_text

bp = Blueprint("shapes", __name__, url_prefix="/ns")


@bp.route("/shapes.ttl")
def shapes_file():
    return Response(shapes_text(), content_type="text/turtle; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=3600"})
