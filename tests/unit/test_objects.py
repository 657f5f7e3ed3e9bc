"""Kinds and object keys: values that hash once, equal by their fields, and survive
pickling into another process (where strings hash differently)."""

from __future__ import annotations

import copy
import dataclasses
import os
import pickle
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.objects import GVK, ObjectKey, key_of

DEPLOYMENT = GVK("apps", "v1", "Deployment")


def test_keys_equal_by_their_fields_hash_alike_and_sort() -> None:
    made = key_of({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"namespace": "a", "name": "web"}})
    same = ObjectKey(GVK("apps", "v1", "Deployment"), "a", "web")
    assert made == same and hash(made) == hash(same)
    assert {made: 1}[same] == 1
    assert made != ObjectKey(DEPLOYMENT, "a", "api")
    assert sorted([ObjectKey(DEPLOYMENT, "b", "x"), same]) == [
        same, ObjectKey(DEPLOYMENT, "b", "x")]
    assert repr(DEPLOYMENT) == "GVK(group='apps', version='v1', kind='Deployment')"
    assert copy.deepcopy(same) == same and hash(copy.deepcopy(same)) == hash(same)


def test_a_pickled_key_finds_its_entry_in_another_process() -> None:
    key = ObjectKey(DEPLOYMENT, "a", "web")
    code = ("import pickle, sys\n"
            "from engine.objects import GVK, ObjectKey\n"
            "key = pickle.loads(sys.stdin.buffer.read())\n"
            "index = {ObjectKey(GVK('apps', 'v1', 'Deployment'), 'a', 'web'): 'found'}\n"
            "print(index.get(key), index.get(key) and hash(key.gvk) == hash(GVK("
            "'apps', 'v1', 'Deployment')))\n")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # not this process's seed
    done = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(key),
                          capture_output=True, env=env, check=True)
    assert done.stdout.split() == [b"found", b"True"]


_TEXT = st.text(max_size=8)


@given(group=_TEXT, namespace=_TEXT, name=_TEXT, other=_TEXT)
def test_a_key_made_by_its_own_init_is_the_dataclass_it_declares(
        group: str, namespace: str, name: str, other: str) -> None:
    """`ObjectKey.__init__` writes its fields directly: the same fields, hash, order,
    repr, immutability and `replace` as the frozen dataclass it declares."""
    gvk = GVK(group, "v1", "Kind")
    key = ObjectKey(gvk, namespace, name)
    assert [f.name for f in dataclasses.fields(key)] == ["gvk", "namespace", "name", "_hash"]
    assert (key.gvk, key.namespace, key.name) == (gvk, namespace, name)
    assert hash(key) == hash((gvk, namespace, name))
    assert repr(key) == f"ObjectKey(gvk={gvk!r}, namespace={namespace!r}, name={name!r})"
    assert key == ObjectKey(gvk=gvk, namespace=namespace, name=name)
    moved = dataclasses.replace(key, name=other)
    assert moved == ObjectKey(gvk, namespace, other) and hash(moved) == hash(
        (gvk, namespace, other))
    assert (key < moved) == ((gvk, namespace, name) < (gvk, namespace, other))
    with pytest.raises(dataclasses.FrozenInstanceError):
        key.name = other  # type: ignore[misc]
    assert key_of({"apiVersion": "v1", "kind": "Kind",
                   "metadata": {"namespace": namespace or None, "name": name}}
                  ) == ObjectKey(GVK("", "v1", "Kind"), namespace, name)


_KINDS = st.builds(GVK, st.sampled_from(["", "apps", "x"]), st.sampled_from(["v1", "v2"]),
                   st.sampled_from(["Kind", "Other"]))
_KEYS = st.builds(ObjectKey, _KINDS, st.sampled_from(["", "a"]), st.sampled_from(["x", "y"]))


@given(_KEYS, _KEYS)
def test_kinds_and_keys_compare_as_their_fields(left: ObjectKey, right: ObjectKey) -> None:
    """Their own `__eq__` (no tuples made) says what comparing the fields says, for the
    same object, equal fields, other fields and other types alike."""
    fields = (left.gvk.group, left.gvk.version, left.gvk.kind, left.namespace, left.name)
    others = (right.gvk.group, right.gvk.version, right.gvk.kind, right.namespace,
              right.name)
    assert (left == right) is (fields == others)
    assert (left != right) is (fields != others)
    assert (left.gvk == right.gvk) is (fields[:3] == others[:3])
    assert (left.gvk != right.gvk) is (fields[:3] != others[:3])
    assert left == left and left.gvk == left.gvk
    assert left != fields and left.gvk != fields[:3]
    assert ({left: 1}.get(right) == 1) is (fields == others)
