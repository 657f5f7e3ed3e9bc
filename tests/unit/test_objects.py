"""Kinds and object keys: values that hash once, equal by their fields, and survive
pickling into another process (where strings hash differently)."""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys

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
