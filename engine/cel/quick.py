"""Quick conditions: the simplest CEL expressions run as Python closures, same answers.

`compile_expression` calls `quick_of` on every checked tree; `Program.quick` runs the
result. Binding a value for the CEL library, checking it and bounding the program's cost
take a few microseconds per evaluation; for ``has(object.spec.x)``, ``object.a.b ==
'lit'``, ``object.spec.replicas > 1``, ``x in ['a', 'b']``, ``namespaceObject == null``
and ``!``, ``&&``, ``||`` over them, reading the values directly gives the answer in a
fraction of that.

Fail closed: a closure answers only when the data is the plain case it knows — every
selection finds its key in a plain ``dict``; compared values are null, booleans, int64
integers or short ASCII strings without NUL, of the same type on both sides; ``has()``
finds such a scalar or nothing. Anything else (a missing key, a map or a list where a
comparison reads it, a number beyond int64, a float, a long or non-ASCII string) is
`SLOW`: the caller evaluates the CEL program, which decides, errs or refuses exactly as
it always did. One more form answers for maps and lists too: ``<path> != null`` (or
``== null``) as the whole expression (`null_check_of`), once `Program.quick` has bound
what the program reads exactly as the program would — its projection, the input checks
and the cost bound of `Program._accepts`, on data the library takes as it is
(`inputs.plain_bounds`) — so that only the evaluation itself is left out; so does
``<path>.filter(x, <quick condition>)`` (`filter_of`, `Program.quick_items`), giving
the very items it keeps (a condition of ``has()``, ``!``, ``&&`` and ``||`` compiled
into one Python function per program, `_generated_filter`, rather than run as closures
over a scope made per item). With no error possible on those values, ``&&`` and ``||`` are
plain boolean logic, and both sides are always read (the program binds and checks all
it reads before it runs); in a filter's condition, whose data is checked whole first,
they absorb an undecidable side as CEL absorbs an error. The answer is the program's on
what the expression reads (its own projection, `engine.cel.reads`).
tests/unit/test_cel_quick.py checks on random data that a quick answer is always the
program's.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, Final

from engine.cel.syntax import Node


class _Slow(Exception):
    """The data is not the plain case: the CEL program decides."""


class _SlowMarker:
    def __repr__(self) -> str:
        return "SLOW"


SLOW: Final = _SlowMarker()
Quick = Callable[[Mapping[str, Any]], Any]
_Part = Callable[[Mapping[str, Any]], Any]
_INT64 = (-(2 ** 63), 2 ** 63)
_LONGEST = 256  # characters of a string a quick comparison reads


def quick_of(root: Node) -> Quick | None:
    """A closure giving the value of the expression `root` or `SLOW`; None when the
    expression is not one of the quick forms."""
    part = _compile(root)
    if part is None:
        return None

    def run(variables: Mapping[str, Any]) -> Any:
        try:
            return part(variables)
        except _Slow:
            return SLOW

    return run


def _scalar(value: Any) -> Any:
    """`value` when it is a plain scalar a comparison may read as is; else `_Slow`."""
    kind = type(value)
    if value is None or kind is bool:
        return value
    if kind is int:
        if _INT64[0] <= value < _INT64[1]:
            return value
    elif kind is str and len(value) <= _LONGEST and value.isascii() and "\x00" not in value:
        return value
    raise _Slow


def _compile(node: Node, checked: bool = False) -> _Part | None:
    """`checked`: the caller checks everything the expression reads as the program would
    (`Program._accepts`), so `has()` may find a map or a list, and ``&&``/``||`` absorb
    what they cannot decide on one side as CEL absorbs an error there."""
    if node.kind == "const":
        return _constant(node)
    if node.kind in ("ident", "select"):
        if node.kind == "select" and node.test_only:
            return _has(node, checked)
        path = _path(node)
        if path is None:
            return None
        name, fields = path
        return lambda variables: _scalar(_follow(variables, name, fields))
    if node.kind != "call" or node.operand is not None:
        return None
    if node.name == "@in" and len(node.args) == 2:
        return _in(node.args[0], node.args[1], checked)
    direct = _against_constant(node)
    if direct is not None:
        return direct
    parts = [_compile(arg, checked) for arg in node.args]
    if any(part is None for part in parts):
        return None
    if node.name == "!_" and len(parts) == 1:
        return _not(parts[0])  # type: ignore[arg-type]
    if len(parts) != 2:
        return None
    left, right = parts
    assert left is not None and right is not None
    if checked and node.name in ("_&&_", "_||_"):
        return _absorbing(left, right, node.name == "_||_")
    # both sides always: CEL binds (and checks) everything an expression reads first
    if node.name == "_&&_":
        return lambda v: _both(_bool(left(v)), _bool(right(v)))
    if node.name == "_||_":
        return lambda v: _either(_bool(left(v)), _bool(right(v)))
    if node.name in ("_==_", "_!=_"):
        equal = node.name == "_==_"
        return lambda v: _equal(left(v), right(v)) is equal
    compare = _ORDER.get(node.name or "")
    if compare is None:
        return None
    return lambda v: compare(*_ints(left(v), right(v)))


_ORDER: dict[str, Callable[[int, int], bool]] = {
    "_<_": lambda a, b: a < b, "_<=_": lambda a, b: a <= b,
    "_>_": lambda a, b: a > b, "_>=_": lambda a, b: a >= b}
# each comparison as a C function, and the one that says the same with its sides swapped
_OPERATORS: dict[str, tuple[Callable[[Any, Any], bool], Callable[[Any, Any], bool]]] = {
    "_<_": (operator.lt, operator.gt), "_<=_": (operator.le, operator.ge),
    "_>_": (operator.gt, operator.lt), "_>=_": (operator.ge, operator.le)}


def _against_constant(node: Node) -> _Part | None:
    """A path compared with a literal other than null (``object.spec.replicas > 1``,
    ``'web' == object.metadata.labels.tier``) in one closure: what `_compile` makes of
    it from its parts (`_scalar` of the path's value, then `_ints` or `_equal`), without
    the calls between them."""
    if len(node.args) != 2 or node.name not in ("_==_", "_!=_", *_OPERATORS):
        return None
    left, right = node.args
    swapped = left.kind == "const"
    if swapped:
        left, right = right, left
    if right.kind != "const" or right.const == "null" or left.kind not in ("ident", "select") \
            or (left.kind == "select" and left.test_only) or _constant(right) is None:
        return None
    path = _path(left)
    if path is None:
        return None
    name, fields = path
    value, kind = right.value, type(right.value)
    low, high = _INT64
    if node.name in _OPERATORS:
        if kind is not int:
            return None  # `_ints` refuses it whatever the path holds: `_compile`'s
        compare = _OPERATORS[node.name][1 if swapped else 0]

        def ordered(variables: Mapping[str, Any]) -> bool:
            found: Any = variables.get(name)
            for key in fields:
                if type(found) is not dict or key not in found:
                    raise _Slow
                found = found[key]
            if type(found) is not int or not low <= found < high:
                raise _Slow
            return compare(found, value)

        return ordered
    equal = node.name == "_==_"

    def compared(variables: Mapping[str, Any]) -> bool:
        found: Any = variables.get(name)
        for key in fields:
            if type(found) is not dict or key not in found:
                raise _Slow
            found = found[key]
        if type(found) is not kind:
            raise _Slow  # null, or another type: the library's call
        if kind is str:
            if len(found) > _LONGEST or not found.isascii() or "\x00" in found:
                raise _Slow
        elif kind is int and not low <= found < high:
            raise _Slow
        return (found == value) is equal

    return compared


def _constant(node: Node) -> _Part | None:
    value = node.value
    if node.const == "null":
        return lambda v: None
    if node.const == "bool" and type(value) is bool:
        return lambda v: value
    if node.const in ("int", "string"):
        try:
            _scalar(value)
        except _Slow:
            return None
        return lambda v: value
    return None


def _path(node: Node) -> tuple[str, tuple[str, ...]] | None:
    """A chain of plain selections from a variable: (variable, fields)."""
    fields: list[str] = []
    while node.kind == "select" and not node.test_only and node.operand is not None:
        fields.append(str(node.name))
        node = node.operand
    if node.kind != "ident" or not node.name:
        return None
    return node.name, tuple(reversed(fields))


def _follow(variables: Mapping[str, Any], name: str, fields: tuple[str, ...]) -> Any:
    value = variables.get(name)
    for key in fields:
        if type(value) is not dict or key not in value:
            raise _Slow
        value = value[key]
    return value


def _has(node: Node, checked: bool = False) -> _Part | None:
    assert node.operand is not None
    path = _path(node.operand)
    if path is None:
        return None
    name, fields = path
    key = str(node.name)

    def has(variables: Mapping[str, Any]) -> bool:
        where = _follow(variables, name, fields)
        if type(where) is not dict:
            raise _Slow
        if key not in where:
            return False
        if not checked:
            _scalar(where[key])  # what CEL would bind and check: only plain scalars here
        return True

    return has


def _in(item: Node, listed: Node, checked: bool = False) -> _Part | None:
    if listed.kind != "list" or listed.optional_indices:
        return None
    parts = [_constant(arg) for arg in listed.args]
    values = [arg.value for arg in listed.args]
    if not values or any(p is None for p in parts) or any(
            type(v) is not type(values[0]) for v in values) or type(values[0]) not in (
            str, int):
        return None
    kind, members = type(values[0]), frozenset(values)
    part = _compile(item, checked)
    if part is None:
        return None

    def contains(variables: Mapping[str, Any]) -> bool:
        value = part(variables)
        if type(value) is not kind:
            raise _Slow
        return value in members

    return contains


def _absorbing(left: _Part, right: _Part, either: bool) -> _Part:
    """CEL's ``||`` (`either`) or ``&&`` on checked data: a side that decides (true for
    ``||``, false for ``&&``) decides whatever the other side is, an error included;
    otherwise both must be booleans."""

    def run(variables: Mapping[str, Any]) -> bool:
        sides: list[bool | None] = []
        for part in (left, right):
            try:
                value = _bool(part(variables))
            except _Slow:
                sides.append(None)
                continue
            if value is either:
                return either
            sides.append(value)
        if None in sides:
            raise _Slow
        return not either

    return run


def _not(part: _Part) -> _Part:
    return lambda v: not _bool(part(v))


def _both(left: bool, right: bool) -> bool:
    return left and right


def _either(left: bool, right: bool) -> bool:
    return left or right


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise _Slow
    return value


def _equal(left: Any, right: Any) -> bool:
    if left is None or right is None:
        if left is None and right is None:
            return True
        raise _Slow  # null against a value: the library's call
    if type(left) is not type(right):
        raise _Slow
    return bool(left == right)


def _ints(left: Any, right: Any) -> tuple[int, int]:
    if type(left) is not int or type(right) is not int:
        raise _Slow
    return left, right


NullCheck = tuple[str, tuple[str, ...], bool]  # (variable, fields, whether it is `==`)


def null_check_of(root: Node) -> NullCheck | None:
    """``<path> == null`` or ``<path> != null`` as the whole expression: the path and
    which of the two. `Program.quick` answers it for a map or a list at the path once the
    program's own input checks accept what it reads (the data's contents then cannot
    change the answer: a value that is not null)."""
    if root.kind != "call" or root.operand is not None or len(root.args) != 2 or (
            root.name not in ("_==_", "_!=_")):
        return None
    left, right = root.args
    if left.kind == "const" and left.const == "null":
        left, right = right, left
    if not (right.kind == "const" and right.const == "null") or left.kind not in (
            "ident", "select") or (left.kind == "select" and left.test_only):
        return None
    path = _path(left)
    return None if path is None else (path[0], path[1], root.name == "_==_")


def value_at(variables: Mapping[str, Any], check: NullCheck) -> Any:
    """The value at the path of `check` (every step a plain map holding its key), or
    `SLOW`."""
    try:
        return _follow(variables, check[0], check[1])
    except _Slow:
        return SLOW


ItemsQuick = Callable[[Mapping[str, Any]], Any]


class _With:
    """The variables with a comprehension's variable bound (all `_follow` asks is get)."""

    __slots__ = ("base", "name", "value")

    def __init__(self, base: Mapping[str, Any], name: str, value: Any) -> None:
        self.base, self.name, self.value = base, name, value

    def get(self, name: str) -> Any:
        return self.value if name == self.name else self.base.get(name)


def filter_of(root: Node, *, generated: bool = True) -> ItemsQuick | None:
    """``<path>.filter(x, <condition>)`` as the whole expression, the condition one of the
    quick forms over ``x`` (`has()` on maps and lists allowed): a closure giving the items
    the condition keeps — the very items of the list, equal to the program's (whose maps
    may list their keys in another order) — or `SLOW`. Its answers hold only on data the
    program's checks accept: `Program.quick_items` checks that before it answers.
    `generated`: a condition of ``has()``, ``!``, ``&&``, ``||`` and ``true``/``false``
    is compiled into one Python function (`_generated_filter`); False keeps the
    closures (to compare the two in tests)."""
    loop = root.loop
    if root.kind != "comprehension" or loop is None or loop.iter_var2:
        return None
    step, accu = loop.step, loop.accu_var
    if not (loop.accu_init.kind == "list" and not loop.accu_init.args
            and loop.condition.kind == "const" and loop.condition.value is True
            and loop.result.kind == "ident" and loop.result.name == accu
            and step.kind == "call" and step.name == "_?_:_" and len(step.args) == 3):
        return None
    keep, grown, same = step.args
    if not (same.kind == "ident" and same.name == accu and grown.kind == "call"
            and grown.name == "_+_" and len(grown.args) == 2
            and grown.args[0].kind == "ident" and grown.args[0].name == accu
            and grown.args[1].kind == "list" and len(grown.args[1].args) == 1
            and grown.args[1].args[0].kind == "ident"
            and grown.args[1].args[0].name == loop.iter_var):
        return None
    path = _path(loop.iter_range) if loop.iter_range.kind in ("ident", "select") and not (
        loop.iter_range.test_only) else None
    if path is None or any(accu in (n.name or "") for n in keep.walk() if n.kind == "ident"):
        return None
    name, fields, var = path[0], path[1], loop.iter_var
    if generated:
        made = _generated_filter(keep, var, name, fields)
        if made is not None:
            return made
    condition = _compile(keep, checked=True)
    if condition is None:
        return None

    def run(variables: Mapping[str, Any]) -> Any:
        try:
            listed = _follow(variables, name, fields)
            if type(listed) is not list:
                return SLOW
            out = []
            for item in listed:
                if _bool(condition(_With(variables, var, item))):  # type: ignore[arg-type]
                    out.append(item)
            return out
        except _Slow:
            return SLOW

    return run


def _generated_filter(keep: Node, var: str, name: str, fields: tuple[str, ...]
                      ) -> ItemsQuick | None:
    """`filter_of`'s closure, for a condition of ``has()`` on selections, ``!``, ``&&``,
    ``||`` and boolean literals only, compiled into one Python function: the list found
    as `_follow` finds it, then per item the condition written out as the closures of
    `_compile(keep, checked=True)` compute it — each part ``True``, ``False`` or ``None``
    where a closure would raise `_Slow` (a step that is not a map holding its key, a
    ``has()`` on something not a map), ``&&``/``||`` absorbing ``None`` as `_absorbing`
    does, ``!`` keeping it — and ``None`` for the whole condition is `SLOW`. Keys and
    names are bound in the function's namespace, never written into its source. None:
    the condition has another form (the closures then run it)."""
    names: dict[str, Any] = {"SLOW": SLOW, "dict": dict, "list": list, "type": type}
    lines: list[str] = []
    counter = [0]

    def constant(value: Any) -> str:
        made = f"K{len(names)}"
        names[made] = value
        return made

    def temporary() -> str:
        counter[0] += 1
        return f"t{counter[0]}"

    def part(node: Node, indent: str) -> str | None:
        # the name of a local holding True, False or None (undecided) for `node`
        if node.kind == "const" and node.const == "bool" and type(node.value) is bool:
            return "True" if node.value else "False"
        if node.kind == "select" and node.test_only and node.operand is not None:
            path = _path(node.operand)
            if path is None:
                return None
            root, steps = path
            out, at = temporary(), temporary()
            lines.append(f"{indent}{out} = None")
            start = "item" if root == var else f"variables.get({constant(root)})"
            lines.append(f"{indent}{at} = {start}")
            inner = indent
            for step in steps:
                key = constant(step)
                lines.append(f"{inner}if type({at}) is dict and {key} in {at}:")
                inner += "    "
                lines.append(f"{inner}{at} = {at}[{key}]")
            lines.append(f"{inner}if type({at}) is dict:")
            lines.append(f"{inner}    {out} = {constant(str(node.name))} in {at}")
            return out
        if node.kind != "call" or node.operand is not None:
            return None
        if node.name == "!_" and len(node.args) == 1:
            inner_part = part(node.args[0], indent)
            if inner_part is None:
                return None
            out = temporary()
            lines.append(f"{indent}{out} = None if {inner_part} is None else not {inner_part}")
            return out
        if node.name in ("_&&_", "_||_") and len(node.args) == 2:
            left = part(node.args[0], indent)
            right = part(node.args[1], indent) if left is not None else None
            if left is None or right is None:
                return None
            decides = "True" if node.name == "_||_" else "False"
            out = temporary()
            lines.append(f"{indent}if {left} is {decides} or {right} is {decides}:")
            lines.append(f"{indent}    {out} = {decides}")
            lines.append(f"{indent}elif {left} is None or {right} is None:")
            lines.append(f"{indent}    {out} = None")
            lines.append(f"{indent}else:")
            lines.append(f"{indent}    {out} = not {decides}")
            return out
        return None

    body = "        "
    result = part(keep, body)
    if result is None:
        return None
    head = ["def run(variables):", f"    listed = variables.get({constant(name)})"]
    for step in fields:
        key = constant(step)
        head.append(f"    if type(listed) is not dict or {key} not in listed:")
        head.append("        return SLOW")
        head.append(f"    listed = listed[{key}]")
    head.extend(["    if type(listed) is not list:", "        return SLOW", "    out = []",
                 "    for item in listed:"])
    tail = [f"{body}if {result} is None:", f"{body}    return SLOW",
            f"{body}if {result}:", f"{body}    out.append(item)", "    return out"]
    source = "\n".join([*head, *lines, *tail])
    namespace = dict(names)
    exec(compile(source, "<edict quick filter>", "exec"), namespace)
    made: ItemsQuick = namespace["run"]
    return made
