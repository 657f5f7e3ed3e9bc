"""The Kubernetes CEL libraries (as of Kubernetes 1.34), for cel-expr-python.

`engine.cel.adapter` builds its environment from `config_yaml` (what the type-checker
knows) and `runtime_extension` (what the runtime runs), and `engine.cel.rewrite` routes
checked calls with `ROUTES`, `FALLBACKS` and `OPTIONAL`. Libraries, each in its module:

- `engine.cel.library.quantities`: ``quantity()``, ``isQuantity()`` and the methods;
- `engine.cel.library.lists`: ``isSorted``, ``sum``, ``min``, ``max``, ``indexOf``,
  ``lastIndexOf``;
- `engine.cel.library.web`: ``url()``, ``isURL()``, the URL getters, ``find``,
  ``findAll``;
- `engine.cel.library.network`: ``ip()``, ``cidr()``, ``isIP``, ``isCIDR``,
  ``ip.isCanonical`` and the methods;
- `engine.cel.library.versions`: ``semver()``, ``isSemver()`` and the methods;
- `engine.cel.library.formats`: ``format.named()``, ``format.<name>()``, ``validate``;
- `engine.cel.library.core`: cross-type numeric comparisons, ``string()`` of IPs and
  CIDRs, type names, and the runtime half of two-variable comprehensions.

The sets extension (``sets.contains``, ``sets.equivalent``, ``sets.intersects``) and
two-variable comprehensions (``all``/``exists``/``existsOne`` with two variables,
``transformList``, ``transformMap``, ``transformMapEntry``) are the library's own, enabled
by name in the config. How declarations and runtimes are split: see
`engine.cel.library.declare`.
"""

from __future__ import annotations

import functools
from typing import Any

from cel_expr_python import cel

from engine.cel.library import core, formats, lists, network, quantities, versions, web
from engine.cel.library.declare import Overload, Runtime, functions_yaml, type_desc

OVERLOADS: list[Overload] = [*quantities.OVERLOADS, *lists.OVERLOADS, *web.OVERLOADS,
                             *network.OVERLOADS, *versions.OVERLOADS, *formats.OVERLOADS]
ROUTES: dict[str, Runtime] = {o.id: o.runtime for o in OVERLOADS if o.runtime is not None}
"""Runtime of each Kubernetes overload id."""
OPTIONAL = frozenset(o.id for o in OVERLOADS if o.optional)
"""Overload ids whose calls are wrapped in ``optional.ofNonZeroValue``."""
REPLACED = ("_<_", "_<=_", "_>_", "_>=_", "string")
"""Standard functions whose declarations are replaced (`engine.cel.library.core`)."""
OPAQUE_TYPES = frozenset(core.TYPE_NAMES)


def _fallbacks() -> dict[str, Runtime]:
    found: dict[str, Runtime] = dict(lists.FALLBACKS)
    by_name: dict[tuple[str, bool], set[str]] = {}
    runtimes: dict[str, Runtime] = {}
    for overload in OVERLOADS:
        if overload.runtime is not None and overload.function not in found:
            by_name.setdefault((overload.function, overload.member), set()).add(
                overload.runtime.name)
            runtimes[overload.runtime.name] = overload.runtime
    for (name, member), names in by_name.items():
        if len(names) == 1:
            found.setdefault(f"{name}/{'member' if member else 'global'}", runtimes[names.pop()])
    return found


FALLBACKS: dict[str, Runtime] = _fallbacks()
"""For a call the checker resolved to overloads of different runtimes (a ``dyn``
argument): by function name (list functions), or by ``name/member`` / ``name/global``."""

MAP_INSERT = "@k8s.mapInsert"
MATCHES_MEMBER, MATCHES_GLOBAL = (runtime.name for runtime in web.MATCHES)
TYPE_OF = core.TYPE_OF.name


def config_yaml() -> str:
    """The environment config: extensions, replaced standard functions, Kubernetes' own."""
    lines = ["extensions:", '  - name: "two-var-comprehensions"', '  - name: "sets"',
             "stdlib:", "  exclude_functions:"]
    lines += [f'    - name: "{name}"' for name in REPLACED]
    lines.append("variables:")
    for name in sorted(OPAQUE_TYPES):
        lines.append(f'  - name: "{name}"')
        lines += type_desc(f"type({name})", 4)
    lines += functions_yaml([*OVERLOADS, *core.COMPARISONS, *core.STRING])
    return "\n".join(lines) + "\n"


_KINDS = {"string": cel.Type.STRING, "int": cel.Type.INT, "uint": cel.Type.UINT,
          "double": cel.Type.DOUBLE, "bool": cel.Type.BOOL, "bytes": cel.Type.BYTES,
          "dyn": cel.Type.DYN, "duration": cel.Type.DURATION, "timestamp": cel.Type.TIMESTAMP,
          "list": cel.Type.List(cel.Type.DYN), "map": cel.Type.Map(cel.Type.DYN, cel.Type.DYN)}


def all_runtimes() -> list[Runtime]:
    """Every runtime function, once per name and signature."""
    every = [*ROUTES.values(), *FALLBACKS.values(), *lists.DIRECT, core.TYPE_OF,
             *core.MAP_INSERT, *web.MATCHES]
    seen: dict[tuple[str, tuple[str, ...]], Runtime] = {}
    for runtime in every:
        seen.setdefault((runtime.name, runtime.params), runtime)
    return list(seen.values())


@functools.cache
def runtime_extension() -> Any:
    """The cel-expr-python extension registering every runtime function."""
    by_name: dict[str, list[Runtime]] = {}
    for runtime in all_runtimes():
        by_name.setdefault(runtime.name, []).append(runtime)
    declarations = []
    for name, runtimes in sorted(by_name.items()):
        overloads = [cel.Overload(
            f"{name}/{'m' if runtime.member else 'g'}/{','.join(runtime.params)}",
            _KINDS[runtime.result], [_KINDS[kind] for kind in runtime.params],
            is_member=runtime.member, impl=runtime.impl) for runtime in runtimes]
        declarations.append(cel.FunctionDecl(name, overloads))
    return cel.CelExtension("edict.kubernetes", declarations)


def runtime_overloads(runtime: Runtime) -> tuple[str, ...]:
    """The overload ids the runtime function of `runtime` is registered under."""
    return tuple(f"{other.name}/{'m' if other.member else 'g'}/{','.join(other.params)}"
                 for other in all_runtimes() if other.name == runtime.name)
