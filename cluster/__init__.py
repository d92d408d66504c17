"""Cluster tooling: the local stack on 127.0.0.1 (:mod:`cluster.stack`, behind ``cluster/*_stack.sh``).

Run from the repository root (``python -m cluster.stack ...``); tests import it as ``cluster.stack``
(the repository root is on pytest's path). The library (``radae``) never imports this package.
"""
