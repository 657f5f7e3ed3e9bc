"""A human-readable diff between two objects, for ``edict apply -o diff``.

Both sides are dumped as YAML in their own key order (``sort_keys=False``, so the diff
follows the manifest as people wrote it) and compared line by line as a unified diff.
Pure: the CLI decides where the text goes.
"""

from __future__ import annotations

import difflib
from typing import Any

import yaml


def render_diff(
    before: Any, after: Any, *, before_name: str = "current", after_name: str = "desired"
) -> str:
    """A unified diff of the YAML dumps of `before` and `after`; ``""`` when equal.

    `before_name` and `after_name` label the ``---``/``+++`` lines (e.g. the object's
    kind/namespace/name). ``None`` stands for "no object": a created object diffs
    against nothing, a deleted one against nothing on the other side.
    """
    old = _dump(before)
    new = _dump(after)
    if old == new:
        return ""
    lines = difflib.unified_diff(old, new, fromfile=before_name, tofile=after_name)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _dump(value: Any) -> list[str]:
    if value is None:
        return []
    text = yaml.safe_dump(value, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return text.splitlines(keepends=True)
