"""The object controller: queue keys in, one reconcile per key, one writer out.

`queue.py` (the work queue), `routing.py` (informer events → keys), `reconciler.py`
(one key → a `Decision`), `writer.py` (every write to an object), `objects.py` (the
workers that run the reconciler and act on its decision), plus the state they share:
`echoes.py`, `dependencies.py`, `concurrency.py`, `events.py`.
"""
