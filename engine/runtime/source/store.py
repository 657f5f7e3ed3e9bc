"""The informer's cache of one kind: objects by namespace/name, plus named indexes.

An `Informer` owns a `Store` and is its only writer (`upsert`, `remove`); the
reconciler, lookups and event handlers read it (`get`, `list`, `by_index`) through the
read-only `StoreReader` protocol the informer hands out. Objects are the dicts the API
server sent, shared with every reader: they MUST NOT be mutated (copy them first).

An index maps a name (`"owner-uid"`) to a function giving each object's index values
(the uids of its owners, a label's value...); `by_index(name, value)` returns the
objects having that value. Indexes are kept up to date on every add, update and
delete, and may be added while the store is filled (existing objects are indexed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Protocol

from engine.objects import Obj, labels_of, meta, name_of, namespace_of

IndexFunc = Callable[[Obj], Iterable[str]]
ObjList = list[Obj]  # `list` is also a method name below, which shadows the builtin
StoreKey = tuple[str, str]  # (namespace or "", name)


def store_key(obj: Obj) -> StoreKey:
    return namespace_of(obj), name_of(obj)


def index_by_owner_uid(obj: Obj) -> list[str]:
    """Index values: the uid of every ownerReference."""
    owners = meta(obj).get("ownerReferences") or []
    return [str(ref["uid"]) for ref in owners if isinstance(ref, dict) and ref.get("uid")]


def index_by_namespace(obj: Obj) -> list[str]:
    return [namespace_of(obj)]


def index_by_label(label: str) -> IndexFunc:
    """Index values: the value of `label`, for objects that carry it."""

    def values(obj: Obj) -> list[str]:
        value = labels_of(obj).get(label)
        return [value] if value is not None else []

    return values


class StoreReader(Protocol):
    def get(self, namespace: str | None, name: str) -> Obj | None: ...

    def list(self, namespace: str | None = None) -> list[Obj]: ...

    def by_index(self, index_name: str, value: str) -> ObjList: ...

    def __len__(self) -> int: ...


class Store:
    """Thread-safe; reads return the cached dicts themselves (do not mutate them)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._objects: dict[StoreKey, Obj] = {}
        self._index_funcs: dict[str, IndexFunc] = {}
        self._indexes: dict[str, dict[str, set[StoreKey]]] = {}

    # -- reads ------------------------------------------------------------------------

    def get(self, namespace: str | None, name: str) -> Obj | None:
        with self._lock:
            return self._objects.get((namespace or "", name))

    def list(self, namespace: str | None = None) -> list[Obj]:
        """Every object, or those of one namespace; ordered by namespace/name."""
        with self._lock:
            keys = sorted(self._objects)
            return [self._objects[k] for k in keys if namespace is None or k[0] == namespace]

    def by_index(self, index_name: str, value: str) -> ObjList:
        """Objects whose `index_name` values include `value`; KeyError if not registered."""
        with self._lock:
            if index_name not in self._indexes:
                raise KeyError(f"no index {index_name!r} (registered: "
                               f"{', '.join(sorted(self._indexes)) or 'none'})")
            keys = sorted(self._indexes[index_name].get(value, ()))
            return [self._objects[k] for k in keys]

    def keys(self) -> set[StoreKey]:
        with self._lock:
            return set(self._objects)

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)

    # -- writes, by the owning informer only ------------------------------------------

    def add_index(self, name: str, func: IndexFunc) -> None:
        with self._lock:
            if name in self._index_funcs:
                raise ValueError(f"index {name!r} is already registered")
            self._index_funcs[name] = func
            self._indexes[name] = {}
            for key, obj in self._objects.items():
                self._index_one(name, key, obj)

    def upsert(self, obj: Obj) -> Obj | None:
        """Store `obj`; return the object it replaced, if any."""
        key = store_key(obj)
        with self._lock:
            old = self._objects.get(key)
            if old is not None:
                self._unindex(key, old)
            self._objects[key] = obj
            for name in self._index_funcs:
                self._index_one(name, key, obj)
            return old

    def remove(self, key: StoreKey) -> Obj | None:
        with self._lock:
            old = self._objects.pop(key, None)
            if old is not None:
                self._unindex(key, old)
            return old

    def _index_one(self, name: str, key: StoreKey, obj: Obj) -> None:
        for value in self._index_funcs[name](obj):
            self._indexes[name].setdefault(value, set()).add(key)

    def _unindex(self, key: StoreKey, obj: Obj) -> None:
        for name, func in self._index_funcs.items():
            index = self._indexes[name]
            for value in func(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
