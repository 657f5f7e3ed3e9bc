"""`edict apply -o diff --explain`: each hunk of a diff names the rules behind its lines.

The diff is `engine.patching.render_diff`'s (both sides dumped as YAML, compared line by
line). For every changed field, `engine.cli.why.sources` gives the rule that set it
last; this module finds the lines that field spans in the dump and puts the rules whose
fields touch a hunk's changed lines after its `@@ ... @@` marker, where unified diffs
keep free text (so the output still applies as a patch):

    @@ -3,6 +3,9 @@ ClusterRuleSet default-labels, rule 'default-owner'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml

from engine.cli.why import Writer, sources
from engine.evaluate.outcomes import Outcome
from engine.patching.pointer import parse as parse_pointer

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
Span = tuple[int, int]  # first and last line, 1-based, inclusive


def annotate(diff: str, *, before: Any, after: Any, outcomes: Sequence[Outcome],
             whole: str | None = None) -> str:
    """`diff` with each hunk marked by the rules that set its lines; `whole` marks every
    hunk (a created or pruned object is one rule's)."""
    changes = sources(before, after, outcomes) if whole is None else []
    order = {(o.rule_set, o.rule): index for index, o in enumerate(outcomes)}
    new_spans = _spans(after)
    old_spans = _spans(before)
    out: list[str] = []
    lines = diff.splitlines(keepends=True)
    index = 0
    while index < len(lines):
        line = lines[index]
        found = _HUNK.match(line)
        if not found:
            out.append(line)
            index += 1
            continue
        old_line, new_line = int(found.group(1)), int(found.group(3))
        old_changed: list[int] = []
        new_changed: list[int] = []
        body: list[str] = []
        index += 1
        while index < len(lines) and not _HUNK.match(lines[index]):
            text = lines[index]
            if text.startswith("-"):
                old_changed.append(old_line)
                old_line += 1
            elif text.startswith("+"):
                new_changed.append(new_line)
                new_line += 1
            else:
                old_line += 1
                new_line += 1
            body.append(text)
            index += 1
        names = [whole] if whole else _writers(changes, order, new_spans, old_spans,
                                               new_changed, old_changed)
        header = line.rstrip("\n")
        out.append(header + (" " + "; ".join(names) if names else "") + "\n")
        out.extend(body)
    return "".join(out)


def _writers(changes: list[tuple[str, Writer | None]], order: dict[Writer, int],
             new_spans: dict[str, Span], old_spans: dict[str, Span], new_changed: list[int],
             old_changed: list[int]) -> list[str]:
    """The rules behind a hunk's changed lines, in the order rules run."""
    found: set[Writer] = set()
    for pointer, writer in changes:
        if writer is not None and (_touches(_span(pointer, new_spans), new_changed)
                                   or _touches(_span(pointer, old_spans), old_changed)):
            found.add(writer)
    return [f"{ref}, rule {rule!r}" for ref, rule in sorted(found, key=lambda w: order[w])]


def _touches(span: Span | None, lines: list[int]) -> bool:
    return span is not None and any(span[0] <= line <= span[1] for line in lines)


def _span(pointer: str, spans: dict[str, Span]) -> Span | None:
    """The lines of the deepest node the dump has on `pointer`'s way."""
    tokens = parse_pointer(pointer)
    if isinstance(tokens, str):
        return None
    for cut in range(len(tokens), 0, -1):
        found = spans.get("/".join(tokens[:cut]))
        if found is not None:
            return found
    return None


def _spans(value: Any) -> dict[str, Span]:
    """Lines of every node of `value` dumped as `render_diff` dumps it, by path."""
    if value is None:
        return {}
    text = yaml.safe_dump(value, sort_keys=False, default_flow_style=False,
                          allow_unicode=True)
    spans: dict[str, Span] = {}
    _walk(yaml.compose(text, Loader=yaml.SafeLoader), (), None, spans)
    return spans


def _walk(node: Any, path: tuple[str, ...], key: Any, spans: dict[str, Span]) -> None:
    start = (key or node).start_mark.line + 1
    end_mark = node.end_mark
    end = end_mark.line + (1 if end_mark.column > 0 else 0)
    spans["/".join(path)] = (start, max(start, end))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            _walk(value_node, (*path, str(key_node.value)), key_node, spans)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, str(index)), None, spans)
