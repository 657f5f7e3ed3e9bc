"""Values rendered once (`engine.templating.keep`): `keep` keeps the live child's value,
`random_string` is only allowed under it, and a generated password is written once."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from engine.errors import CompileError, Where
from engine.evaluate.engine import Engine
from engine.evaluate.simulate import simulate
from engine.objects import GVK
from engine.rules.load import parse_rule_set
from engine.templating import compile_template
from engine.templating.keep import KEEP, random_string, resolve

SECRET = GVK("", "v1", "Secret")


@pytest.mark.parametrize("text", [
    "{{ random_string(24) | keep }}",
    "{{ random_string(8) | b64encode | keep }}",
    "  {{ object.spec.x | keep() }}  ",
])
def test_where_keep_and_random_string_are_allowed(text: str) -> None:
    rendered = compile_template({"v": text}, where=Where()).render({"object": {"spec": {"x": 1}}})
    assert set(rendered["v"]) == {KEEP}


@pytest.mark.parametrize(("text", "message"), [
    ("{{ random_string(24) }}", "only allowed in a value kept once made"),
    ("pw-{{ random_string(24) | keep }}", "exactly one '{{ ... | keep }}'"),
    ("{{ random_string(24) | keep | upper }}", "last filter"),
    ("{{ 'a' | keep }}{{ 'b' | keep }}", "used once"),
    ("{% set p = random_string(4) %}{{ p | keep }}", "exactly one"),
    ("{{ object.x | keep | keep }}", "used once"),
])
def test_anywhere_else_they_do_not_compile(text: str, message: str) -> None:
    with pytest.raises(CompileError, match=re.escape(message)):
        compile_template({"v": text}, where=Where(rule="r"))


def test_random_string_bounds_its_length() -> None:
    assert len(random_string(256)) == 256 and random_string(5).isalnum()
    for bad in (0, 257, True, "8"):
        with pytest.raises(ValueError, match="length from 1 to 256"):
            random_string(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("rendered", "live", "expected"), [
    ({"a": {KEEP: "new"}}, None, {"a": "new"}),
    ({"a": {KEEP: "new"}}, {"a": "old"}, {"a": "old"}),
    ({"a": {KEEP: "new"}}, {"a": None}, {"a": "new"}),
    ({"a": {"b": {KEEP: 1}}, "c": 2}, {"a": {"b": 7}, "c": 3}, {"a": {"b": 7}, "c": 2}),
    ({"l": [{KEEP: "x"}, {KEEP: "y"}]}, {"l": ["old"]}, {"l": ["old", "y"]}),
    ({"plain": {"$other": 1}}, {"plain": 5}, {"plain": {"$other": 1}}),
])
def test_resolve_takes_the_live_value_at_the_same_path(rendered: Any, live: Any,
                                                         expected: Any) -> None:
    assert resolve(rendered, live) == expected


def operator(rule_action: dict[str, Any], *, kind: str = "generate") -> Any:
    return parse_rule_set({
        "apiVersion": "edict.dev/v1alpha1", "kind": "ClusterRuleSet",
        "metadata": {"name": "db"},
        "spec": {"rules": [{"name": "password",
                            "match": {"resources": [{"apiVersion": "v1",
                                                     "kinds": ["ConfigMap"]}]},
                            kind: rule_action}]}})


TRIGGER = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "orders", "namespace": "shop", "uid": "u1"}}
PASSWORD = {"template": {
    "apiVersion": "v1", "kind": "Secret",
    "metadata": {"name": "{{ object.metadata.name }}-password"},
    "data": {"password": "{{ random_string(20) | b64encode | keep }}",
             "user": "{{ object.metadata.name | b64encode }}"}}}


def test_a_generated_password_is_made_once_and_then_kept() -> None:
    engine = Engine([operator(PASSWORD)])
    first = simulate(engine, [TRIGGER])
    assert first.converged
    secret = first.world.get(SECRET, "shop", "orders-password")
    assert secret is not None
    password = base64.b64decode(secret["data"]["password"]).decode()
    assert len(password) == 20 and password.isalnum()
    # Every later evaluation renders a new random value, and keeps the live one.
    again = simulate(engine, first.world.objects())
    assert again.world.get(SECRET, "shop", "orders-password") == secret
    result = engine.evaluate(TRIGGER, world=first.world)
    assert result.converged
    # Someone removes the value: a new one is made (the rule owns the field).
    emptied = {**secret, "data": {"user": secret["data"]["user"]}}
    first.world.put(emptied)
    refilled = simulate(engine, first.world.objects()).world.get(SECRET, "shop",
                                                                 "orders-password")
    assert refilled is not None and refilled["data"]["password"] != secret["data"]["password"]


def test_keep_outside_a_generate_template_disables_the_rule() -> None:
    mutate = {"template": {"metadata": {"annotations": {"token": "{{ 'a' | keep }}"}}}}
    (rule,) = Engine([operator(mutate, kind="mutate")]).rule_sets[0].rules
    assert not rule.enabled
    assert "keep only means something in a generate template" in rule.errors[0].message
    assert rule.errors[0].where.field == "mutate.template"
