"""Merging desired state onto objects and computing JSON patches: pure functions.

The evaluator (`engine.evaluate`) is the main caller: it `merge`s every mutate rule's
rendered partial object onto the trigger, checks each rule's `Assignment`s against the
earlier rules', applies `mutate.jsonPatch` rules with `apply_patch`,
and turns the final object into one guarded `make_patch` for the write. The offline
CLI uses `changed_paths` and `render_diff` for its reports.

Everything here works on plain JSON data (dict, list, str, int, float, bool, None),
never imports the Kubernetes client, never mutates its arguments, and shares untouched
subtrees between input and output: treat every value passed in or returned as
read-only. See `merge` for the merge rules and `values` for what "equal" means.
"""

from engine.patching.apply import apply_patch
from engine.patching.assignments import (
    DELETE,
    Assignment,
    Deletion,
    format_path,
)
from engine.patching.diff import render_diff
from engine.patching.make import GUARD_PATH, changed_paths, make_patch
from engine.patching.merge import MergeSequence, merge
from engine.patching.values import copy_json, json_equal

__all__ = [
    "DELETE",
    "GUARD_PATH",
    "Assignment",
    "Deletion",
    "MergeSequence",
    "apply_patch",
    "changed_paths",
    "copy_json",
    "format_path",
    "json_equal",
    "make_patch",
    "merge",
    "render_diff",
]
