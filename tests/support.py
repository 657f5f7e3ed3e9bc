"""What every kind of test needs: waiting for a condition with a deadline, never a sleep.

`eventually(check)` polls `check` in real time until it returns something truthy and
returns that value; a check that raises one of `ignoring` (an assertion, a missing
key, an object not there yet) counts as "not yet". After `timeout` seconds it fails
with `what`, the last value or error seen, and whatever `detail()` adds (a log tail).
Runtime unit tests poll for another thread's progress (the fake clock only moves when
the test moves it); live tests poll the API server.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

from engine.kube.errors import NotFound

T = TypeVar("T")

NOT_YET: tuple[type[BaseException], ...] = (
    AssertionError, LookupError, NotFound, subprocess.CalledProcessError)


def eventually(check: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.02,
               what: str = "", ignoring: tuple[type[BaseException], ...] = NOT_YET,
               detail: Callable[[], str] | None = None) -> T:
    """Poll `check` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except ignoring as error:
            last = error
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    name = what or getattr(check, "__name__", "condition")
    message = f"{name}: not reached within {timeout:g}s; last: {last!r}"
    if detail is not None:
        message += f"\n{detail()}"
    raise AssertionError(message)


def wait_established(kubeconfig: str, *names: str, timeout: float = 60.0) -> None:
    """Each CustomResourceDefinition `names` (`plural.group`) has condition Established.

    Polled with `kubectl get`, not `kubectl wait --for condition=Established`: that fails
    outright ("status.conditions accessor error: <nil>") when it reads a CRD before the
    server has written any condition on it."""
    def established() -> bool:
        out = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "get", "-o", "json",
                              *(f"crd/{name}" for name in names)],
                             capture_output=True, text=True, timeout=60, check=True)
        found = json.loads(out.stdout)
        crds = found.get("items", [found]) if found.get("kind") == "List" else [found]
        return len(crds) == len(names) and all(
            any(c.get("type") == "Established" and c.get("status") == "True"
                for c in (crd.get("status") or {}).get("conditions") or ())
            for crd in crds)
    eventually(established, timeout=timeout, interval=0.2,
               what=f"CRDs {', '.join(names)} Established")


def assert_writers_change_nothing(rule_set: Any, obj: dict[str, Any]) -> None:
    """`obj` evaluated under `rule_set` with the compiled writers and without them
    (`Settings(writers=False)`): the same desired object, patch, outcomes and conflicts."""
    from engine.evaluate.engine import Engine, Settings
    from engine.evaluate.world import ManifestWorld

    world = ManifestWorld([obj])
    fast = Engine([rule_set]).evaluate(obj, world=world)
    slow = Engine([rule_set], settings=Settings(writers=False)).evaluate(obj, world=world)
    assert fast.desired == slow.desired
    assert fast.patch == slow.patch
    assert fast.oscillating == slow.oscillating
    assert fast.outcomes == slow.outcomes
    assert fast.conflicts == slow.conflicts


def assert_concludes_alike(fast: Any, slow: Any) -> None:
    """Two evaluations of one object (with and without the fixed-point loop's skips, say)
    conclude alike: the same desired object, patch and oscillation, the same status
    for each rule in order (a rule that failed and was not run again keeps its
    message, which may name what the data held then), the same conflicts."""
    assert fast.desired == slow.desired
    assert fast.patch == slow.patch
    assert fast.oscillating == slow.oscillating
    assert [(o.rule, o.status) for o in fast.outcomes] == [
        (o.rule, o.status) for o in slow.outcomes]
    assert set(fast.conflicts) == set(slow.conflicts)


def same(left: Any, right: Any) -> bool:
    """Equal values of equal types, all the way down (``1 == 1.0 == True`` is not enough)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, float) and math.isnan(left):
        return math.isnan(right)
    return bool(left == right)


def drawn_mutate_rules(drawn: list[tuple[int, int]], match: Any, templates: list[Any],
                       conditions: list[str | None]) -> list[dict[str, Any]]:
    """Mutate rules `r0`, `r1`… from drawn (template, condition) positions in the two
    tables (a `None` condition: the rule has none)."""
    rules = []
    for i, (template, condition) in enumerate(drawn):
        rule: dict[str, Any] = {"name": f"r{i}", "match": match,
                                "mutate": {"template": templates[template]}}
        if conditions[condition] is not None:
            rule["condition"] = conditions[condition]
        rules.append(rule)
    return rules
