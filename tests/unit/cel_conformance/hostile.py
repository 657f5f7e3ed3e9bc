"""Measure hostile and worst-case CEL evaluations: time and memory, each in a fresh process.

Not a test (timings vary with the machine); the numbers in docs/cel.md come from

    python -m tests.unit.cel_conformance.hostile

Each case compiles one expression, binds data that someone who can write an object might
write, evaluates once and reports the outcome (a value or the error class), the wall
time of compiling and evaluating, and the growth of the process's peak memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

CASES: list[tuple[str, str, str]] = [
    # (what, expression, Python expression building `object`)
    ("ReDoS pattern on data", "object.metadata.annotations.x.find('(a+)+$') == ''",
     "{'metadata': {'annotations': {'x': 'a' * 40 + '!'}}}"),
    ("nine chained replace()", "object.s" + ".replace('a','aaaaaaaaaa')" * 9,
     "{'s': 'a'}"),
    ("ten chained replace()", "object.s" + ".replace('a','aaaaaaaaaa')" * 10,
     "{'s': 'a'}"),
    ("map over 9,999 items", "size(object.spec.items.map(x, x))",
     "{'spec': {'items': list(range(9999))}}"),
    ("NUL in an annotation", "!object.metadata.annotations.x.contains('EVIL')",
     "{'metadata': {'annotations': {'x': 'ok\\x00EVIL'}}}"),
    ("forged quantity", "object.x.isGreaterThan(quantity('1'))",
     "{'x': '\\ue000quantity:5'}"),
    ("map at the budget (1,280 items)", "size(object.spec.items.map(x, x))",
     "{'spec': {'items': list(range(1280))}}"),
    ("map over the budget (1,450 items)", "size(object.spec.items.map(x, x))",
     "{'spec': {'items': list(range(1450))}}"),
    ("replace() growing a 90,000-character string tenfold",
     "size(object.s.replace('a', 'aaaaaaaaaa'))", "{'s': 'a' * 90000}"),
    ("findAll() rescanning 100,000 characters", "size(object.s.findAll('a*b|a'))",
     "{'s': 'a' * 100000}"),
    ("matches() with a pattern from data at the expansion limit",
     "object.s.matches(object.p)", "{'s': 'a' * 1000, 'p': 'a{1,1000}' * 3}"),
    ("matches() with a pattern from data past the expansion limit",
     "object.s.matches(object.p)", "{'s': 'a' * 1000, 'p': 'a{1,1000}' * 10}"),
    ("nested comprehensions, 10,000 iterations",
     "object.a.all(x, object.b.exists(y, y == x || y == -1))",
     "{'a': list(range(100)), 'b': list(range(99))}"),
    ("sets.contains() at the budget", "sets.contains(object.a, object.b)",
     "{'a': list(range(300)), 'b': list(range(300, 600))}"),
    ("transformMap() over 100 labels",
     "size(object.labels.transformMap(k, v, v + '-x'))",
     "{'labels': {f'k{i}': 'v' for i in range(100)}}"),
    ("a 3 MiB string read whole", "size(object.s)", "{'s': 'x' * (3 * 1024 * 1024)}"),
    ("1,000,000 list entries read whole", "size(object.l)", "{'l': [0] * 1_000_000}"),
    ("data nested 255 levels", "size(object) > 0", "nest(254)"),
    ("data nested 300 levels", "size(object) > 0", "nest(299)"),
]

_CHILD = r"""
import json, resource, sys, time
from engine.cel import compile_expression
from engine.errors import Where
def nest(levels):
    value = {}
    for _ in range(levels):
        value = {'a': value}
    return value
source, builder = sys.argv[1], sys.argv[2]
data = {'object': eval(builder)}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
try:
    outcome = repr(compile_expression(source, where=Where()).evaluate(data))[:60]
except Exception as error:
    outcome = type(error).__name__
seconds = time.perf_counter() - started
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({'outcome': outcome, 'ms': seconds * 1000, 'mib': grown}))
"""


def measure(source: str, builder: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", _CHILD, source, builder], capture_output=True,
                         text=True, timeout=120, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    print("| case | outcome | time | peak memory growth |")
    print("|---|---|---|---|")
    for what, source, builder in CASES:
        found = measure(source, builder)
        print(f"| {what} | {found['outcome']} | {found['ms']:.1f} ms | {found['mib']:.1f} MiB |")


if __name__ == "__main__":
    main()
