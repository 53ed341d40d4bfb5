"""Read a RadLex CSV export (``name,RID,parent RID`` rows, with or without a header) into RDF triples.

Two exports are known to have this shape: the 2017-01 export (no header) and the 2014-07 export (header
``Term,RID,Parent_RID``); see ``ontology/data/README.md``. Each row becomes an ``owl:Class`` with its
``rdfs:label`` and one ``rdfs:subClassOf``; a parent of ``RID0`` (above the root) or an empty parent is omitted.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from pathlib import Path

import pyoxigraph as ox
from rdflib.namespace import OWL, RDF, RDFS

from kg.namespaces import RID

from .errors import OntologySourceError

_RID = re.compile(r"RID\d+")
_HEADER = ("term", "rid", "parent_rid")


def _read_text(path: Path) -> str:
    raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_radlex_csv(path: str | Path) -> list[ox.Triple]:
    """Parse the CSV export at ``path`` (optionally gzip-compressed) into triples: classes, labels, parents.

    Raises
    ------
    OntologySourceError
        If the file is missing, or a row does not have three columns or a valid ``RIDnnn`` id (with its line).
    """
    path = Path(path)
    if not path.is_file():
        raise OntologySourceError(f"no such RadLex CSV file: {path}")
    a, owl_class = ox.NamedNode(str(RDF.type)), ox.NamedNode(str(OWL.Class))
    label, sub_class_of = ox.NamedNode(str(RDFS.label)), ox.NamedNode(str(RDFS.subClassOf))
    triples: list[ox.Triple] = []
    seen: set[str] = set()
    for line, row in enumerate(csv.reader(io.StringIO(_read_text(path))), start=1):
        if line == 1 and tuple(c.strip().lower() for c in row) == _HEADER:
            continue
        if not row:
            continue
        if len(row) != 3:
            raise OntologySourceError(f"{path}, line {line}: expected 3 columns (name, RID, parent RID), got {len(row)}")
        name, rid, parent = (c.strip() for c in row)
        if not _RID.fullmatch(rid) or (parent and not _RID.fullmatch(parent)):
            raise OntologySourceError(f"{path}, line {line}: {rid!r} / {parent!r} is not a RadLex id like RID5715")
        if rid in seen:
            raise OntologySourceError(f"{path}, line {line}: {rid} appears twice")
        seen.add(rid)
        term = ox.NamedNode(RID[rid])
        triples.append(ox.Triple(term, a, owl_class))
        triples.append(ox.Triple(term, label, ox.Literal(name, language="en")))
        if parent and parent != "RID0":
            triples.append(ox.Triple(term, sub_class_of, ox.NamedNode(RID[parent])))
    if not seen:
        raise OntologySourceError(f"{path} holds no RadLex rows")
    return triples
