"""Where a node of a YAML document is in its file, and which findings a comment silences.

Rule sets are loaded as plain values, which forget where they came from; lint composes
each file once more (YAML nodes keep their start marks) and walks a finding's path to
the node: a mapping key for an unknown field, the value for anything else, the nearest
node that exists when the path goes further than the document does.

A finding is silenced by a comment on its own line, or on the line of its rule's
`name:`, of the form

    # edict-lint: ignore[overlap]            (or several: ignore[overlap,never-matches])

so a deliberate overlap says so where it is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

import yaml

from engine.cli.lintchecks.findings import Finding, Path

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_IGNORE = re.compile(r"#\s*edict-lint:\s*ignore\[([a-z0-9, -]+)\]")


@dataclass
class _File:
    documents: list[Any]  # yaml nodes, one per document of the stream (empty ones too)
    lines: list[str]


@dataclass
class Positions:
    """Composed files, read once each; missing or unreadable files give no positions."""

    _files: dict[str, _File | None] = field(default_factory=dict)

    def locate(self, finding: Finding) -> Finding:
        node = self._node(finding.source, finding.path, key=finding.key)
        if node is None:
            return finding
        return finding.located(node.start_mark.line + 1, node.start_mark.column + 1)

    def silenced(self, finding: Finding, *, rule_path: Path | None) -> bool:
        """Whether an `edict-lint: ignore[code]` comment covers `finding`."""
        loaded = self._file(finding.file)
        if loaded is None:
            return False
        lines = []
        if finding.line:
            lines.append(finding.line)
        if rule_path is not None:
            name = self._node(finding.source, (*rule_path, "name"), key=True)
            if name is not None:
                lines.append(name.start_mark.line + 1)
        for number in lines:
            if 0 < number <= len(loaded.lines):
                match = _IGNORE.search(loaded.lines[number - 1])
                if match and finding.code in {c.strip() for c in match.group(1).split(",")}:
                    return True
        return False

    def _file(self, name: str) -> _File | None:
        if name not in self._files:
            self._files[name] = _compose(name)
        return self._files[name]

    def _node(self, source: str, path: Path, *, key: bool) -> Any:
        name, _, index = source.rpartition("#")
        loaded = self._file(name)
        if loaded is None or not index:
            return None
        node = _document(loaded.documents, index)
        if node is None:
            return None
        label = None  # the key of the node reached, when it is a mapping value
        for number, step in enumerate(path):
            last = number == len(path) - 1
            found = _child(node, step, key=key and last)
            if found is None:
                return node
            label = _child(node, step, key=True) if isinstance(node, yaml.MappingNode) else None
            node = found
        if label is not None and isinstance(node, yaml.CollectionNode) and not node.flow_style:
            return label  # a block mapping or list starts on the line after its key
        return node


def _compose(name: str) -> _File | None:
    try:
        text = FilePath(name).read_text(encoding="utf-8")
        documents = list(yaml.compose_all(text, Loader=_Loader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError):
        return None
    return _File(documents, text.splitlines())


def _document(documents: list[Any], index: str) -> Any:
    """The node for `N` (the Nth document) or `N.M` (item M of a `kind: List`)."""
    first, _, item = index.partition(".")
    try:
        node = documents[int(first) - 1]
        if item:
            items = _child(node, "items", key=False)
            node = _child(items, int(item) - 1, key=False) if items is not None else None
    except (ValueError, IndexError):
        return None
    return node


def _child(node: Any, step: str | int, *, key: bool) -> Any:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(step):
                return key_node if key else value_node
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int):
        return node.value[step] if 0 <= step < len(node.value) else None
    return None
