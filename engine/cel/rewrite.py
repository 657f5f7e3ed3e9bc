"""Route checked calls of the Kubernetes library to the runtime functions that serve them.

`engine.cel.adapter` calls `rewrite` on every compiled expression; when it returns a
new `Checked`, the adapter deserializes that into the program it runs. Why: the
type-checker knows Kubernetes' functions by their real signatures (opaque types,
optional results), which cel-expr-python's runtime cannot implement from Python, so
`engine.cel.library` registers runtime functions under ``@`` names and this module
renames each call the checker resolved to a Kubernetes overload:

- a call resolved to overloads of one runtime gets that runtime's name; one resolved to
  several (a ``dyn`` argument) gets the function's generic runtime (`FALLBACKS`); a call
  that may also be a standard overload (``string(dyn)``) is left to the standard one;
- a call with an optional result becomes ``optional.ofNonZeroValue(<runtime call>)``;
- ``cel.@mapInsert`` (two-variable ``transformMap``) goes to Edict's implementation;
- ``matches`` with a pattern that is not a constant goes to Edict's RE2 helper, which
  bounds what a pattern from data may cost to compile;
- a Kubernetes type name (``net.IP``) becomes a string constant, and ``type(x)`` of a
  value the checker knows to be of such a type becomes the runtime that gives that
  same string.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from engine.cel import library
from engine.cel.library.declare import Runtime
from engine.cel.syntax import Checked, Loop, Node, Reference, string_constant


class RewriteError(Exception):
    """A call the router cannot place (a gap in the library's declarations)."""


def rewrite(checked: Checked) -> Checked | None:
    """`checked` with its Kubernetes calls routed, or None when nothing needed it."""
    references = dict(checked.references)
    next_id = [checked.max_id() + 1]

    def fresh() -> int:
        next_id[0] += 1
        return next_id[0]

    def visit(node: Node) -> Node:
        reference = references.get(node.id)
        if node.kind == "ident":
            name = reference.name if reference is not None and reference.name else node.name
            if name in library.OPAQUE_TYPES:
                references.pop(node.id, None)
                return string_constant(node.id, str(name))
            return node
        if node.kind != "call":
            return node
        if node.name == "cel.@mapInsert":
            return _route(node, _runtime(library.MAP_INSERT), references)
        if node.name == "matches" and not _constant_pattern(node):
            name = library.MATCHES_MEMBER if node.operand is not None else library.MATCHES_GLOBAL
            return _route(node, _runtime(name), references)
        if node.name == "type" and len(node.args) == 1 and node.operand is None:
            if checked.types.get(node.args[0].id) in library.OPAQUE_TYPES:
                return _route(node, _runtime(library.TYPE_OF), references)
            return node
        overloads = reference.overloads if reference is not None else ()
        routed = [library.ROUTES[id_] for id_ in overloads if id_ in library.ROUTES]
        if not routed or len(routed) != len(overloads):
            return node
        runtime = routed[0]
        if any(other.name != runtime.name for other in routed):
            style = "member" if node.operand is not None else "global"
            found = (library.FALLBACKS.get(str(node.name))
                     or library.FALLBACKS.get(f"{node.name}/{style}"))
            if found is None:
                raise RewriteError(f"no runtime for {node.name!r} over overloads {overloads}")
            runtime = found
        routed_node = _route(node, runtime, references)
        if not any(id_ in library.OPTIONAL for id_ in overloads):
            return routed_node
        inner_id = fresh()
        references[inner_id] = references.pop(node.id)
        references[node.id] = Reference("optional.ofNonZeroValue", ("optional_ofNonZeroValue",))
        return Node("call", name="optional.ofNonZeroValue", id=node.id,
                    args=(dataclasses.replace(routed_node, id=inner_id),))

    root = _transform(checked.root, visit)
    if root == checked.root and references == checked.references:
        return None
    return dataclasses.replace(checked, root=root, references=references)


def _constant_pattern(node: Node) -> bool:
    pattern = node.args[-1] if node.args else None
    return pattern is not None and pattern.kind == "const" and pattern.const == "string"


def _runtime(name: str) -> Runtime:
    for runtime in library.all_runtimes():
        if runtime.name == name:
            return runtime
    raise RewriteError(f"no runtime named {name!r}")


def _route(node: Node, runtime: Runtime, references: dict[int, Reference]) -> Node:
    if runtime.member != (node.operand is not None):
        raise RewriteError(f"{node.name!r} is called in the wrong style for {runtime.name!r}")
    references[node.id] = Reference(runtime.name, library.runtime_overloads(runtime))
    return dataclasses.replace(node, name=runtime.name)


def _transform(node: Node, visit: Callable[[Node], Node]) -> Node:
    """Children first, then `visit` on the node rebuilt from them."""
    changes: dict[str, object] = {}
    if node.operand is not None:
        operand = _transform(node.operand, visit)
        if operand is not node.operand:
            changes["operand"] = operand
    if node.args:
        args = tuple(_transform(arg, visit) for arg in node.args)
        if any(new is not old for new, old in zip(args, node.args, strict=True)):
            changes["args"] = args
    if node.entries:
        entries = tuple(dataclasses.replace(
            entry, value=_transform(entry.value, visit),
            key=None if entry.key is None else _transform(entry.key, visit))
            for entry in node.entries)
        if entries != node.entries:
            changes["entries"] = entries
    if node.loop is not None:
        loop = node.loop
        new = Loop(loop.iter_var, _transform(loop.iter_range, visit), loop.accu_var,
                   _transform(loop.accu_init, visit), _transform(loop.condition, visit),
                   _transform(loop.step, visit), _transform(loop.result, visit), loop.iter_var2)
        if new != loop:
            changes["loop"] = new
    rebuilt = dataclasses.replace(node, **changes) if changes else node  # type: ignore[arg-type]
    return visit(rebuilt)

