"""The informer's cache of one kind: objects by namespace/name, plus named indexes.

An `Informer` owns a `Store` and is its only writer (`upsert`, `remove`); the
reconciler, lookups and event handlers read it (`get`, `list`, `by_index`) through the
read-only `StoreReader` protocol the informer hands out. Objects handed out are shared
with other readers: they MUST NOT be mutated (copy them first).

Objects are kept as compact JSON bytes, not as decoded dicts: in Python a decoded
object takes 2-5 times the size of its JSON text (a dict per map, an object per string),
and a cache of 100,000 objects is mostly that. What is needed without the content stays
outside the JSON: the key, the resourceVersion (resyncs and routing compare it, see
`versions`; it leads the same bytes, after its length, so that it costs no object of its
own) and the object's index values, if it has any (to unindex it without decoding). A read
decodes the bytes (a few µs for a ConfigMap, ~10 µs for a Deployment) unless the
object is among the `decoded` most recently written or read ones, which are kept
decoded: the object an event just delivered is read again by the reconcile it queues.
Encoding is exact: `json.loads` of the bytes is equal to the object stored (dicts, lists,
strings, ints of any size, floats, booleans and null, in the same key order).

An index maps a name (`"owner-uid"`) to a function giving each object's index values
(the uids of its owners, a label's value...); `by_index(name, value)` returns the
objects having that value. Indexes are kept up to date on every add, update and
delete, and may be added while the store is filled (existing objects are indexed).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from engine.kube.jsontext import loads
from engine.objects import Obj, meta, name_of, namespace_of

IndexFunc = Callable[[Obj], Iterable[str]]
ObjList = list[Obj]  # `list` is also a method name below, which shadows the builtin
StoreKey = tuple[str, str]  # (namespace or "", name)
Versions = list[tuple[StoreKey, str]]  # (key, resourceVersion) pairs

DECODED = 256
"""Objects kept decoded by default (the most recently written or read)."""


def store_key(obj: Obj) -> StoreKey:
    return namespace_of(obj), name_of(obj)


def index_by_owner_uid(obj: Obj) -> list[str]:
    """Index values: the uid of every ownerReference."""
    owners = meta(obj).get("ownerReferences") or []
    return [str(ref["uid"]) for ref in owners if isinstance(ref, dict) and ref.get("uid")]


def index_by_namespace(obj: Obj) -> list[str]:
    return [namespace_of(obj)]


class MetadataIndex:
    """An index function whose values come from one label or one annotation of an
    object (`field`: ``labels`` or ``annotations``; `key`), and only when the object
    carries it. A store whose index functions are all of this kind tells at once that
    an object has a value in none of them — it carries none of their keys, as nearly
    every object does — without calling any (`Store._index`)."""

    __slots__ = ("_values", "field", "key")

    def __init__(self, field: str, key: str, values: Callable[[Obj], list[str]]) -> None:
        if field not in ("labels", "annotations"):
            raise ValueError(f"a metadata index reads labels or annotations, not {field!r}")
        self.field = field
        self.key = key
        self._values = values  # [] for an object without `key` under `field`

    def __call__(self, obj: Obj) -> list[str]:
        return self._values(obj)


def index_by_label(label: str) -> IndexFunc:
    """Index values: the value of `label`, for objects that carry it."""

    def values(obj: Obj) -> list[str]:
        # labels_of(obj).get(label), inlined: asked of every object on every change
        metadata = obj.get("metadata")
        labels = metadata.get("labels") if isinstance(metadata, dict) else None
        value = labels.get(label) if isinstance(labels, dict) else None
        return [value] if value is not None else []

    return MetadataIndex("labels", label, values)


def _carries_none(obj: Obj, labels: frozenset[str], annotations: frozenset[str]) -> bool:
    """Whether `obj`'s metadata surely holds none of `labels` and `annotations`: False
    whenever the metadata is not plain maps (the index functions then decide)."""
    metadata = obj.get("metadata")
    if type(metadata) is not dict:
        return False
    found = metadata.get("labels")
    if found is not None and (type(found) is not dict or not labels.isdisjoint(found)):
        return False
    found = metadata.get("annotations")
    return found is None or (type(found) is dict and annotations.isdisjoint(found))


def _unencodable(value: object) -> object:
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


# The C encoder json.dumps(obj, separators=(",", ":"), ensure_ascii=False) builds on
# every call, built once: the same text, in half the time for a small object. Without
# json.dumps' check for circular references (decoded JSON has none; one would end in
# RecursionError instead of ValueError).
_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_quote: Any = getattr(json.encoder, "c_encode_basestring", None)
_compact: Any = None if _make_encoder is None or _quote is None else _make_encoder(
    None, _unencodable, _quote, None, ":", ",", False, False, True)


def encode(obj: Obj) -> bytes:
    """Compact JSON of `obj`, UTF-8 (escaped ASCII if it holds lone surrogates)."""
    try:
        if _compact is not None:
            return "".join(_compact(obj, 0)).encode()
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":")).encode()


def decode(data: bytes) -> Obj:
    """`json.loads(data)`, quicker for what `encode` made (see `loads`)."""
    return loads(data)  # type: ignore[no-any-return]


class StoreReader(Protocol):
    def get(self, namespace: str | None, name: str) -> Obj | None: ...

    def list(self, namespace: str | None = None) -> list[Obj]: ...

    def by_index(self, index_name: str, value: str) -> ObjList: ...

    def indexed(self, index_name: str) -> ObjList: ...

    def versions(self, namespace: str | None = None) -> Versions: ...

    def __len__(self) -> int: ...


def _pack(version: str, obj: Obj) -> bytes:
    """The resourceVersion's length (one byte), the resourceVersion, the object's JSON.
    A resourceVersion longer than 255 bytes (etcd's are decimal numbers) is not kept
    there: `versions` answers "" for it, which matches nothing, so a resync delivers it."""
    head = version.encode()
    if len(head) > 255:
        head = b""
    return bytes((len(head),)) + head + encode(obj)


def _version(data: bytes) -> str:
    return data[1:1 + data[0]].decode()


def _unpack(data: bytes) -> Obj:
    return decode(data[1 + data[0]:])


class Store:
    """Thread-safe; reads return shared objects (do not mutate them)."""

    def __init__(self, *, decoded: int = DECODED) -> None:
        self._lock = threading.RLock()
        self._entries: dict[StoreKey, bytes] = {}  # see `_pack`
        self._indexed: dict[StoreKey, tuple[tuple[str, ...], ...]] = {}  # if any value
        self._decoded: OrderedDict[StoreKey, Obj] = OrderedDict()  # least recent first
        self._capacity = decoded
        self._index_funcs: dict[str, IndexFunc] = {}
        self._indexes: dict[str, dict[str, set[StoreKey]]] = {}
        # the labels and annotations the index functions read, when all of them are
        # `MetadataIndex`es; else None (every function is asked of every object)
        self._index_keys: tuple[frozenset[str], frozenset[str]] | None = None
        self._namespaces: dict[str, str] = {}  # one string per namespace, for the keys

    # -- reads ------------------------------------------------------------------------

    def get(self, namespace: str | None, name: str) -> Obj | None:
        key = (namespace or "", name)
        with self._lock:
            obj, data = self._lookup(key)
        if data is None:
            return obj
        # Decoded outside the lock: it is most of a read, and every worker and the
        # informer take this lock. If the object was replaced meanwhile, this is the
        # state before (as if read a moment earlier), not kept decoded.
        obj = _unpack(data)
        with self._lock:
            if self._entries.get(key) is data:
                self._keep(key, obj)
        return obj

    def list(self, namespace: str | None = None) -> list[Obj]:
        """Every object, or those of one namespace; ordered by namespace/name. Objects
        decoded for this are not kept decoded (a full list would only push the hot
        ones out)."""
        with self._lock:
            keys = sorted(k for k in self._entries if namespace is None or k[0] == namespace)
            return [self._decode(k) for k in keys]

    def by_index(self, index_name: str, value: str) -> ObjList:
        """Objects whose `index_name` values include `value`; KeyError if not registered."""
        with self._lock:
            if index_name not in self._indexes:
                raise KeyError(f"no index {index_name!r} (registered: "
                               f"{', '.join(sorted(self._indexes)) or 'none'})")
            keys = sorted(self._indexes[index_name].get(value, ()))
            return [self._read(k, keep=True) for k in keys]  # type: ignore[misc]

    def indexed(self, index_name: str) -> ObjList:
        """Objects having any value in `index_name`, ordered by namespace/name (only those
        are decoded); KeyError if not registered."""
        with self._lock:
            index = self._indexes.get(index_name)
            if index is None:
                raise KeyError(f"no index {index_name!r}")
            keys = sorted(set().union(*index.values()))
            return [self._read(k, keep=False) for k in keys]  # type: ignore[misc]

    def versions(self, namespace: str | None = None) -> Versions:
        """The key and resourceVersion of every object (or of one namespace's), without
        decoding any; in no particular order."""
        with self._lock:
            return [(k, _version(data)) for k, data in self._entries.items()
                    if namespace is None or k[0] == namespace]

    def version(self, key: StoreKey) -> str | None:
        """The resourceVersion of the object at `key`, None if there is none."""
        with self._lock:
            data = self._entries.get(key)
            return None if data is None else _version(data)

    def keys(self) -> set[StoreKey]:
        with self._lock:
            return set(self._entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def decoded(self) -> int:
        """How many objects are kept decoded now (at most the `decoded` given)."""
        with self._lock:
            return len(self._decoded)

    # -- writes, by the owning informer only ------------------------------------------

    def add_index(self, name: str, func: IndexFunc) -> None:
        with self._lock:
            if name in self._index_funcs:
                raise ValueError(f"index {name!r} is already registered")
            self._index_funcs[name] = func
            self._indexes[name] = {}
            funcs = [f for f in self._index_funcs.values() if isinstance(f, MetadataIndex)]
            self._index_keys = (
                frozenset(f.key for f in funcs if f.field == "labels"),
                frozenset(f.key for f in funcs if f.field == "annotations"),
            ) if len(funcs) == len(self._index_funcs) else None
            for key in self._entries:
                self._index(key, self._decode(key))

    def upsert(self, obj: Obj, *, key: StoreKey | None = None, version: str | None = None
               ) -> Obj | None:
        """Store `obj` (kept decoded: it is the object readers get until it changes);
        return the object it replaced, if any. `key` and `version`, when given, are
        `store_key(obj)` and its resourceVersion (the caller has read them already)."""
        namespace, name = store_key(obj) if key is None else key
        key = (self._namespaces.setdefault(namespace, namespace), name)
        if version is None:
            version = str(meta(obj).get("resourceVersion") or "")
        data = _pack(version, obj)
        with self._lock:
            old = self._decoded.get(key)
            previous = self._entries.get(key)
            if previous is not None:
                self._unindex(key)
            self._entries[key] = data
            if self._index_funcs:
                self._index(key, obj)
            self._keep(key, obj)
        # the object replaced, decoded outside the lock when it was not kept decoded
        return _unpack(previous) if old is None and previous is not None else old

    def remove(self, key: StoreKey) -> Obj | None:
        with self._lock:
            old = self._read(key, keep=False)
            if old is not None:
                self._unindex(key)
                del self._entries[key]
                self._decoded.pop(key, None)
            return old

    # -- inside the lock ----------------------------------------------------------------

    def _lookup(self, key: StoreKey) -> tuple[Obj | None, bytes | None]:
        """The object kept decoded (now the most recently used), else its bytes."""
        obj = self._decoded.get(key)
        if obj is not None:
            self._decoded.move_to_end(key)
            return obj, None
        return None, self._entries.get(key)

    def _read(self, key: StoreKey, *, keep: bool) -> Obj | None:
        obj, data = self._lookup(key)
        if data is None:
            return obj
        obj = _unpack(data)
        if keep:
            self._keep(key, obj)
        return obj

    def _decode(self, key: StoreKey) -> Obj:
        obj = self._decoded.get(key)
        return _unpack(self._entries[key]) if obj is None else obj

    def _keep(self, key: StoreKey, obj: Obj) -> None:
        if self._capacity <= 0:
            return
        self._decoded[key] = obj
        self._decoded.move_to_end(key)
        while len(self._decoded) > self._capacity:
            self._decoded.popitem(last=False)

    def _index(self, key: StoreKey, obj: Obj) -> None:
        """Index `obj` under `key` in every index, noting its values if it has any."""
        keys = self._index_keys
        if keys is not None and _carries_none(obj, *keys):
            self._indexed.pop(key, None)
            return
        found_by_func = [func(obj) for func in self._index_funcs.values()]
        # Most objects have no value in any index (the functions give empty lists):
        # then no tuples are made. (A generator is true, and is read below.)
        values = tuple([tuple(found) for found in found_by_func]) if any(
            found_by_func) else ()
        if any(values):
            for name, found in zip(self._index_funcs, values, strict=True):
                index = self._indexes[name]
                for value in found:
                    index.setdefault(value, set()).add(key)
            self._indexed[key] = values
        else:
            self._indexed.pop(key, None)

    def _unindex(self, key: StoreKey) -> None:
        values = self._indexed.pop(key, None)
        for name, found in zip(self._index_funcs, values or (), strict=False):
            index = self._indexes[name]
            for value in found:
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
