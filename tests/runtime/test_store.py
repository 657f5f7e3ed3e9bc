"""The informer's store (`engine.runtime.source.store`): objects kept as compact JSON,
read back equal, the recently used ones kept decoded, indexes kept current."""

from __future__ import annotations

import json
import random
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.objects import Obj
from engine.runtime.source import store as store_module
from engine.runtime.source.store import Store, index_by_label, index_by_owner_uid, store_key


def cm(name: str, rv: str = "1", *, namespace: str = "default", **metadata: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv,
                         **metadata}, "data": {"k": name}}


def owned(name: str, rv: str, *owners: str, team: str | None = None) -> Obj:
    labels = {"team": team} if team else {}
    return cm(name, rv, labels=labels,
              ownerReferences=[{"apiVersion": "v1", "kind": "X", "name": o, "uid": o}
                               for o in owners])


# What JSON from the API server can hold, each read back equal and in the same order.
ROUND_TRIP: list[tuple[str, Obj]] = [
    ("a ConfigMap", cm("a", data={"x": "1"})),
    ("a Deployment", {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "n", "resourceVersion": "7",
                     "labels": {"app": "web"}, "annotations": {"a": '{"json": "inside"}'},
                     "generation": 3, "ownerReferences": []},
        "spec": {"replicas": 2, "paused": False, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"spec": {"containers": [{
                     "name": "app", "image": "r/app:1", "args": [],
                     "resources": {"limits": {"cpu": "500m"}}}]}}},
        "status": {"conditions": None}}),
    ("non-ASCII text", cm("ü", labels={"ключ": "值"}, annotations={"e": "😀 \u00e9"})),
    ("a lone surrogate", cm("s", annotations={"bad": "\ud800x"})),
    ("ints beyond 64 bits, negative, zero", {**cm("i"), "spec": {
        "big": 2**80, "neg": -(2**70), "zero": 0, "small": -1}}),
    ("floats", {**cm("f"), "spec": {"half": 0.5, "tiny": 1e-300, "whole": 3.0,
                                    "exp": 1.5e300}}),
    ("empty maps and lists, nulls", {**cm("e"), "spec": {"m": {}, "l": [], "n": None,
                                                         "nested": [[{}], [None, True]]}}),
    ("keys in an unusual order", {"metadata": {"resourceVersion": "1", "name": "o",
                                               "namespace": "z"}, "kind": "X",
                                  "apiVersion": "v1"}),
    ("escapes", cm("q", annotations={"q": 'a"b\\c\n\t\x00\x1f</script>'})),
]


@pytest.mark.parametrize("obj", [c[1] for c in ROUND_TRIP], ids=[c[0] for c in ROUND_TRIP])
def test_an_object_read_back_is_equal_to_the_one_stored(obj: Obj) -> None:
    expected = json.dumps(obj)
    store = Store(decoded=0)  # every read decodes
    store.upsert(obj)
    namespace, name = store_key(obj)
    for read in (store.get(namespace, name), store.list()[0]):
        assert read == obj
        assert read is not obj
        assert json.dumps(read) == expected, "same keys, same order, same types"
    assert json.dumps(obj) == expected, "the object stored is left alone"


def test_a_cached_object_is_the_object_the_store_was_given_while_it_is_hot() -> None:
    store = Store(decoded=2)
    a = cm("a")
    store.upsert(a)
    assert store.get("default", "a") is a
    for name in ("b", "c"):
        store.upsert(cm(name))
    assert store.decoded() == 2
    read = store.get("default", "a")
    assert read == a and read is not a, "pushed out by two newer objects: decoded again"
    assert store.get("default", "a") is read, "and kept decoded since"
    assert store.decoded() == 2


def test_the_decoded_objects_are_bounded_whatever_is_read() -> None:
    store = Store(decoded=3)
    for n in range(20):
        store.upsert(owned(f"o{n}", "1", "u"))
    for n in range(20):
        store.get("default", f"o{n}")
    store.add_index("owner", index_by_owner_uid)
    assert len(store.by_index("owner", "u")) == 20
    assert len(store.list()) == 20
    assert store.decoded() == 3
    store.get("default", "o19")
    store.remove(("default", "o19"))
    assert store.decoded() == 2, "a removed object is not kept decoded"


def test_list_does_not_push_the_hot_objects_out() -> None:
    store = Store(decoded=1)
    for n in range(5):
        store.upsert(cm(f"o{n}"))
    hot = store.get("default", "o4")
    store.list()
    assert store.get("default", "o4") is hot


def test_a_write_replaces_what_readers_get_at_once() -> None:
    store = Store(decoded=4)
    first = cm("a", "1")
    store.upsert(first)
    store.get("default", "a")
    second = cm("a", "2", labels={"x": "y"})
    assert store.upsert(second) is first, "the object replaced is returned"
    assert store.get("default", "a") is second
    assert store.version(("default", "a")) == "2"
    assert store.remove(("default", "a")) is second
    assert store.get("default", "a") is None and store.version(("default", "a")) is None
    assert store.remove(("default", "a")) is None


# (operation, argument); after each, the store must answer what `expected` says
STEPS: list[tuple[str, Any]] = [
    ("upsert", owned("a", "1", "u1", team="red")),
    ("upsert", owned("b", "2", "u1", "u2", team="blue")),
    ("upsert", owned("c", "3")),
    ("upsert", owned("a", "4", "u2", team="blue")),  # moves between index values
    ("remove", ("default", "b")),
    ("upsert", owned("d", "5", "u2", team="red")),
    ("upsert", {**owned("e", "6", "u1"), "metadata": {
        **owned("e", "6", "u1")["metadata"], "namespace": "other"}}),
    ("remove", ("default", "nope")),
    ("upsert", owned("a", "7")),  # leaves every index value
]


@pytest.mark.parametrize("decoded", [0, 2, 100])
def test_reads_answer_like_a_dict_of_the_objects_after_every_step(decoded: int) -> None:
    store, model = Store(decoded=decoded), dict[tuple[str, str], Obj]()
    store.add_index("owner", index_by_owner_uid)
    team = False
    for operation, argument in STEPS:
        if operation == "upsert":
            model[store_key(argument)] = argument
            store.upsert(argument)
        else:
            model.pop(argument, None)
            store.remove(argument)
        if not team and len(model) == 3:
            store.add_index("team", index_by_label("team"))  # added while filled
            team = True
        assert_answers(store, model, team=team)


def assert_answers(store: Store, model: dict[tuple[str, str], Obj], *,
                   team: bool = True) -> None:
    ordered = [model[k] for k in sorted(model)]
    assert store.list() == ordered
    for namespace in ("default", "other", "none"):
        assert store.list(namespace) == [o for o in ordered
                                         if o["metadata"]["namespace"] == namespace]
    for key, obj in model.items():
        assert store.get(*key) == obj
        assert store.get(None if key[0] == "" else key[0], key[1]) == obj
    assert store.keys() == set(model) and len(store) == len(model)
    assert sorted(store.versions()) == sorted(
        (k, o["metadata"]["resourceVersion"]) for k, o in model.items())
    indexes: dict[str, Any] = {"owner": index_by_owner_uid}
    if team:
        indexes["team"] = index_by_label("team")
    for name, func in indexes.items():
        values = {v for o in model.values() for v in func(o)} | {"u9", "green"}
        for value in values:
            assert store.by_index(name, value) == [o for o in ordered if value in func(o)]


def test_random_writes_and_reads_answer_like_a_dict() -> None:
    rng = random.Random(7)
    store, model = Store(decoded=5), dict[tuple[str, str], Obj]()
    store.add_index("owner", index_by_owner_uid)
    store.add_index("team", index_by_label("team"))
    for step in range(400):
        name = f"o{rng.randrange(12)}"
        if rng.random() < 0.25:
            model.pop(("default", name), None)
            store.remove(("default", name))
        else:
            obj = owned(name, str(step), *rng.sample(["u1", "u2", "u3"], rng.randrange(3)),
                        team=rng.choice([None, "red", "blue"]))
            model[("default", name)] = obj
            store.upsert(obj)
        if rng.random() < 0.5:
            store.get("default", f"o{rng.randrange(12)}")
        if step % 40 == 0:
            assert_answers(store, model)
    assert_answers(store, model)


def test_a_resource_version_too_long_to_keep_reads_as_none_known() -> None:
    store = Store(decoded=0)
    long = "9" * 256
    store.upsert(cm("a", long))
    assert store.version(("default", "a")) == ""
    assert store.get("default", "a") == cm("a", long)


def test_indexed_gives_the_objects_having_any_value_and_decodes_only_those(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(decoded=0)
    store.add_index("team", index_by_label("team"))
    for obj in (owned("c", "1", team="red"), owned("a", "2"), owned("b", "3", team="blue"),
                owned("d", "4")):
        store.upsert(obj)
    store.upsert(owned("c", "5"))  # leaves the index
    decoded: list[bytes] = []
    real = store_module.decode

    def counted(data: bytes) -> Obj:
        decoded.append(data)
        return real(data)

    monkeypatch.setattr(store_module, "decode", counted)
    assert store.indexed("team") == [owned("b", "3", team="blue")]
    assert len(decoded) == 1
    with pytest.raises(KeyError, match="no index 'nope'"):
        store.indexed("nope")


def test_versions_decode_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(decoded=0)
    for n in range(3):
        store.upsert(cm(f"o{n}", str(n), namespace="a" if n else "b"))
    monkeypatch.setattr(store_module, "decode", lambda data: pytest.fail("decoded"))
    assert sorted(store.versions()) == [(("a", "o1"), "1"), (("a", "o2"), "2"),
                                        (("b", "o0"), "0")]
    assert store.versions("b") == [(("b", "o0"), "0")]


def test_readers_and_a_writer_at_once_see_whole_objects() -> None:
    store = Store(decoded=8)
    store.add_index("owner", index_by_owner_uid)
    stop = threading.Event()
    failures: list[str] = []

    def write() -> None:
        for step in range(3000):
            name = f"o{step % 50}"
            if step % 7 == 0:
                store.remove(("default", name))
            else:
                store.upsert(owned(name, str(step), f"u{step % 3}"))
        stop.set()

    def read() -> None:
        while not stop.is_set():
            for obj in store.list()[:5] + store.by_index("owner", "u1"):
                if obj["data"] != {"k": obj["metadata"]["name"]}:
                    failures.append(repr(obj))
            got = store.get("default", "o3")
            if got is not None and got["metadata"]["name"] != "o3":
                failures.append(repr(got))

    threads = [threading.Thread(target=write), *(threading.Thread(target=read)
                                                 for _ in range(3))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    final = {store_key(o): o for o in store.list()}
    assert_answers(store, final, team=False)
    assert store.decoded() <= 8


# Any JSON value the API server could send (text with lone surrogates and every
# control character, ints beyond 64 bits, floats of any size), nested.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(), JSON, max_size=5))
def test_encode_is_json_dumps_and_decode_is_json_loads(obj: Obj) -> None:
    """The store's encoder and decoder, built once, against the stdlib calls they stand
    for: the same bytes, the same value back (same key order)."""
    try:
        expected = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        expected = json.dumps(obj, separators=(",", ":")).encode()
    data = store_module.encode(obj)
    assert data == expected
    back = store_module.decode(data)
    assert back == json.loads(expected)
    assert json.dumps(back) == json.dumps(obj)


@pytest.mark.parametrize("data", [b'{"a":1} {"b":2}', b'{"a":', b"", b"\xff{}", b"nul",
                                  b'{"a":1}x', b'{"a":"\\ud80"}'])
def test_decode_refuses_what_json_loads_refuses(data: bytes) -> None:
    with pytest.raises(ValueError) as refused:
        json.loads(data)
    with pytest.raises(type(refused.value)):
        store_module.decode(data)


@pytest.mark.parametrize("data", [b' {"a":1}', b'{"a":1}\n', b'\xef\xbb\xbf{"a":1}',
                                  '{"a":"\u00e9"}'.encode("utf-16"), b'{"a":"\\ud800"}',
                                  b'{"a":NaN,"b":-Infinity}'])
def test_decode_reads_what_json_loads_reads(data: bytes) -> None:
    assert json.dumps(store_module.decode(data)) == json.dumps(json.loads(data))


def test_an_index_function_may_give_a_generator() -> None:
    store = Store(decoded=0)

    def teams(obj: Obj) -> Any:
        return (value for value in [obj["metadata"].get("labels", {}).get("team")] if value)

    store.add_index("team", teams)
    store.upsert(owned("a", "1", team="red"))
    store.upsert(owned("b", "2"))
    assert [o["metadata"]["name"] for o in store.by_index("team", "red")] == ["a"]
    assert [o["metadata"]["name"] for o in store.indexed("team")] == ["a"]
    store.upsert(owned("a", "3", team="blue"))  # moves
    assert store.by_index("team", "red") == []
    assert [o["metadata"]["name"] for o in store.by_index("team", "blue")] == ["a"]
    store.upsert(owned("a", "4"))  # leaves the index
    assert store.indexed("team") == [] and store.by_index("team", "blue") == []


# Metadata as objects may carry it, odd shapes included: the index functions decide
# those, the store's shortcut (`_carries_none`) must only ever skip plain maps.
_META_VALUES = st.one_of(st.none(), st.sampled_from(["", "x", "v1/ConfigMap/n/a"]),
                         st.integers(0, 2), st.lists(st.just("x"), max_size=1))
_META_MAPS = st.one_of(
    st.none(), st.just(""), st.just(["team"]),
    st.dictionaries(st.sampled_from(["team", "tier", "edict.dev/trigger", "other"]),
                    _META_VALUES, max_size=3))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), _META_MAPS, _META_MAPS,
                          st.booleans()), max_size=12))
def test_metadata_indexes_answer_as_the_same_functions_asked_of_every_object(
        steps: list[tuple[str, Any, Any, bool]]) -> None:
    """A store of `MetadataIndex`es (labels, an annotation) answers every index read as a
    store of the same functions behind plain callables, which asks each of every
    object; objects gain, change and lose the keys they are indexed by."""

    def annotation(obj: Obj) -> list[str]:
        metadata = obj.get("metadata")
        found = metadata.get("annotations") if isinstance(metadata, dict) else None
        value = found.get("edict.dev/trigger") if isinstance(found, dict) else None
        return [value] if isinstance(value, str) and value else []

    funcs = {"team": index_by_label("team"), "tier": index_by_label("tier"),
             "trigger": store_module.MetadataIndex("annotations", "edict.dev/trigger",
                                                   annotation)}
    fast, plain = Store(decoded=1), Store(decoded=1)
    for name, func in funcs.items():
        fast.add_index(name, func)
        plain.add_index(name, lambda obj, func=func: func(obj))
    assert fast._index_keys is not None and plain._index_keys is None
    for step, (name, labels, notes, odd) in enumerate(steps):
        obj = cm(name, str(step))
        if odd:  # metadata that is no map of maps at all
            obj["metadata"]["labels"] = labels if labels is not None else "odd"
        elif labels is not None:
            obj["metadata"]["labels"] = labels
        if notes is not None:
            obj["metadata"]["annotations"] = notes
        try:
            plain.upsert(obj)
        except (TypeError, AttributeError):  # an unhashable value: neither may keep it
            with pytest.raises((TypeError, AttributeError)):
                fast.upsert(obj)
            return
        fast.upsert(obj)
        for index in funcs:
            for value in ("", "x", "v1/ConfigMap/n/a", "0", "1"):
                assert fast.by_index(index, value) == plain.by_index(index, value), (
                    index, value)
            assert fast.indexed(index) == plain.indexed(index)
