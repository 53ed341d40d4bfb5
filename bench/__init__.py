"""Benchmark scripts. Run each as a module from the repository root, e.g. ``python -m bench.ontology``.

Each prints a table and writes JSON to ``bench/results/``. (Run as modules, the scripts cannot shadow the packages
they measure: ``bench/ontology.py`` would otherwise hide the ``ontology`` package.)
"""
