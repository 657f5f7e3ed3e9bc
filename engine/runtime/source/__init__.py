"""Sources: informers that list and watch one kind into a cache, and the read side.

`informer.py` (list, watch, re-list, backoff), `store.py` (the cache, as compact JSON,
and its indexes), `slim.py` (what is dropped before caching), `watches.py` (informers
started and stopped by reference count), `world.py` (evaluation's reads, answered from
the caches).
Nothing here writes to the API server or knows about queues: event handlers are
registered by whoever owns the informer.
"""
