"""What the mutating webhook settled, kept until the object's first watch event.

The mutating webhook answers with the object converged under the mutate rules of
Enforce rule sets; the API server stores it, and its watch event reaches the background
reconciler a few milliseconds later, which would evaluate those rules again only to find
nothing to do (0.64 of the 1.79 ms the benchmark's ConfigMap costs the background,
bench/README.md). `AdmissionMemo`
remembers, per object (kind, namespace, name), a digest of the answered content, the
rules that were settled on it (`engine.evaluate.settled`) and the engine that settled
them. The reconciler `take`s the entry on its next evaluation of that object, and gets
the settled rules only when:

- the rules are the same: the engine now loaded is the one that answered (a
  recompilation empties the memo);
- the object it is about to evaluate has exactly the content the webhook answered with,
  but for what the API server assigns on every write (uid, resourceVersion,
  creationTimestamp, generation, managedFields). Another mutating webhook, the API
  server's defaulting of a field the rules added, or any later change makes it differ.

Otherwise the entry is dropped and the object evaluated in full. Dry-run reviews, and
reviews of objects without a name yet (generateName), are never remembered. Every entry
serves at most once; the memo holds at most `capacity` entries (the oldest go first:
a review whose object was never stored — denied by a later webhook — just ages out).
Written by the webhook's threads, taken by the workers: one lock. Each replica has its
own: only the reviews the leader answered spare its background anything.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass

from engine.evaluate.engine import Engine
from engine.evaluate.settled import Settled
from engine.objects import Obj, ObjectKey, meta

CAPACITY = 4096
"""Entries kept: far more than the reviews answered between a create and its event."""

ASSIGNED = frozenset({"uid", "resourceVersion", "creationTimestamp", "generation",
                      "managedFields", "selfLink"})
"""Metadata the API server sets on the stored object, whatever the webhook answered."""

MISSED = Settled({})
"""`take`'s answer for an entry that does not apply (falsy, like None, but counted)."""


def digest(obj: Obj) -> bytes:
    """What identifies an object's content, the server-assigned metadata aside."""
    metadata = {k: v for k, v in meta(obj).items() if k not in ASSIGNED}
    text = json.dumps({**obj, "metadata": metadata}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    settled: Settled


class AdmissionMemo:
    def __init__(self, *, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[ObjectKey, _Entry] = OrderedDict()
        self._engine: Engine | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def remember(self, key: ObjectKey, answered: Obj, settled: Settled, *,
                 engine: Engine) -> None:
        """The mutating webhook answered `answered` for `key`, with `settled` rules of
        `engine` converged on it."""
        entry = _Entry(digest(answered), settled)
        with self._lock:
            if self._engine is not engine:  # new rules: nothing remembered holds
                self._entries.clear()
                self._engine = engine
            self._entries.pop(key, None)
            self._entries[key] = entry
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def take(self, key: ObjectKey, obj: Obj, *, engine: Engine) -> Settled | None:
        """The rules settled on `obj` (its entry is used up): None when nothing was
        remembered for `key`, `MISSED` when something was but does not apply."""
        with self._lock:
            entry = self._entries.pop(key, None)
            same_rules = self._engine is engine
        if entry is None:
            return None
        if not same_rules or digest(obj) != entry.digest:
            return MISSED
        return entry.settled
