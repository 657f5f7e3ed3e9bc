"""An item writer's fields, compiled: what `writers._write` and `writers._fresh` do for
one shape, written out as one Python function each.

`writers.ItemWriter.write` writes the fields of a ``forEach`` item (its template's
shape without the list's keys) onto the list item of its key, or onto a new item, once
per item of every evaluation. `_write` and `_fresh` walk the shape for that: a loop over
its entries, a test of each entry's kind, an iterator of the rendered values and a
recursive call per map. The shape never changes, so `compiled` walks it once, when the
writer first fits a schema, and writes the same steps out as straight-line code: the
keys and constants bound as names of the function's namespace (never written into its
source), each rendered value read at its known position. What the functions give —
the map (the very one when nothing changed), the assignments in order, the copies
made — is what `_write` and `_fresh` give; tests/unit/test_item_writers.py checks it on
random shapes and maps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from engine.patching import Assignment, json_equal
from engine.patching.values import MISSING
from engine.templating import Constant, Shape

# (the item's map, or a map to fill; the path of the item; the rendered values of every
# leaf of the template; the assignments so far) -> the map after the fields
Fields = Callable[[dict[str, Any], tuple[Any, ...], Sequence[Any], list[Assignment]],
                  dict[str, Any]]


def compiled(shape: Shape, positions: Sequence[int]) -> tuple[Fields, Fields]:
    """`(write, fresh)` for the fields `shape` whose templated leaves, in order, are the
    rendered values at `positions`: ``write(target, here, values, out)`` is
    `_write(target, shape, here, iter(those values), out)`, ``fresh(made, …)`` is
    `_fresh(made, shape, …)`."""
    names: dict[str, Any] = {"Assignment": Assignment, "json_equal": json_equal,
                             "MISSING": MISSING, "isinstance": isinstance, "dict": dict}
    counter = [0]

    def name_of(value: Any) -> str:
        made = f"K{len(names)}"
        names[made] = value
        return made

    def temporary(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}{counter[0]}"

    def leaves(shape: Shape) -> int:
        return sum(leaves(child) if isinstance(child, tuple) else
                   0 if isinstance(child, Constant) else 1 for _, child in shape)

    def value_of(child: Any, at: int) -> str:
        return name_of(child.value) if isinstance(child, Constant) else (
            f"values[{positions[at]}]")

    def fresh(shape: Shape, into: str, path: tuple[str, ...], at: int, indent: str,
              lines: list[str]) -> int:
        # `_fresh`: every leaf new, nothing looked up, compared or copied
        for key, child in shape:
            here = (*path, name_of(key))
            if isinstance(child, tuple):
                inner = temporary("m")
                lines.append(f"{indent}{inner} = {{}}")
                at = fresh(child, inner, here, at, indent, lines)
                lines.append(f"{indent}{into}[{here[-1]}] = {inner}")
                continue
            value = temporary("v")
            lines.append(f"{indent}{value} = {value_of(child, at)}")
            lines.append(f"{indent}out.append(Assignment((*here, {', '.join(here)}), {value}))")
            lines.append(f"{indent}{into}[{here[-1]}] = {value}")
            at += 0 if isinstance(child, Constant) else 1
        return at

    def write(shape: Shape, target: str, result: str, path: tuple[str, ...], at: int,
              indent: str, lines: list[str]) -> int:
        # `_write`: `result` is None until a field changes, then `target`'s copy
        lines.append(f"{indent}{result} = None")
        for key, child in shape:
            here = (*path, name_of(key))
            before = temporary("b")
            lines.append(f"{indent}{before} = {target}.get({here[-1]}, MISSING)")
            if isinstance(child, tuple):
                after = temporary("a")
                lines.append(f"{indent}if isinstance({before}, dict):")
                inner = temporary("r")
                end = write(child, before, inner, here, at, indent + "    ", lines)
                lines.append(f"{indent}    {after} = {before} if {inner} is None else {inner}")
                lines.append(f"{indent}else:")
                lines.append(f"{indent}    {after} = {{}}")
                fresh(child, after, here, at, indent + "    ", lines)
                at = end
                lines.append(f"{indent}if {after} is not {before}:")
                lines.append(f"{indent}    if {result} is None:")
                lines.append(f"{indent}        {result} = dict({target})")
                lines.append(f"{indent}    {result}[{here[-1]}] = {after}")
                continue
            value = temporary("v")
            lines.append(f"{indent}{value} = {value_of(child, at)}")
            lines.append(f"{indent}out.append(Assignment((*here, {', '.join(here)}), {value}))")
            lines.append(f"{indent}if {before} is MISSING or not json_equal({before}, {value}):")
            lines.append(f"{indent}    if {result} is None:")
            lines.append(f"{indent}        {result} = dict({target})")
            lines.append(f"{indent}    {result}[{here[-1]}] = {value}")
            at += 0 if isinstance(child, Constant) else 1
        return at

    if len(positions) != leaves(shape):
        raise ValueError("one position per templated leaf of the shape")
    write_lines = ["def write(target, here, values, out):"]
    write(shape, "target", "result", (), 0, "    ", write_lines)
    write_lines.append("    return target if result is None else result")
    fresh_lines = ["def fresh(made, here, values, out):"]
    fresh(shape, "made", (), 0, "    ", fresh_lines)
    fresh_lines.append("    return made")
    namespace: dict[str, Any] = dict(names)
    source = "\n".join(write_lines) + "\n\n\n" + "\n".join(fresh_lines)
    exec(compile(source, "<edict item fields>", "exec"), namespace)
    return namespace["write"], namespace["fresh"]
