"""The bounds on CEL evaluation: settings with defaults, and the errors that name them.

`engine.cel.adapter.compile_expression` takes a `CelLimits` (defaults when omitted);
the compiled `Program` keeps it. Why these bounds exist: cel-expr-python cannot be
interrupted and holds the GIL while it evaluates, and its own limits are fixed (10,000
comprehension iterations per evaluation, nesting depth 32, 100,000 characters), so what
it could do with large data is bounded around it:

- **Input**: data bound into CEL is checked before evaluation (`engine.cel.inputs`):
  every string at most `max_string_length` characters, every list or map at most
  `max_list_length` entries, nesting at most `max_depth` levels.
- **Static cost**: when an expression compiles, its cost is estimated on a modest
  reference object (strings of `reference_string_length` characters, lists of
  `reference_list_length` entries, `reference_values` values and
  `reference_characters` characters in all; `engine.cel.cost`); above
  `static_cost_limit` it does not compile (`CelCostCompileError`): it would fail the
  runtime budget even on ordinary objects. Growth that does not depend on the data
  (chained ``replace()``, doubling through ``cel.bind``) shows here.
- **Runtime cost**: before each evaluation the same estimate is made with the sizes of
  the actual data (the longest string, the longest list, the total size); above
  `runtime_cost_limit` the evaluation does not start (`CelCostError`).

A cost unit is about one CEL operation on a small value, or copying one list element
(about 30 ns and 32 bytes of memory on a 2-core x86_64), or ten characters of string
work; see docs/cel.md for the calibration and the worst cases still accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import CelLimitExceeded, CompileError


@dataclass(frozen=True)
class CelLimits:
    """Bounds for compiling and evaluating CEL; the defaults suit Kubernetes objects."""

    max_length: int = 5000
    """Longest expression accepted, in characters (the library's ceiling is 100,000)."""
    max_string_length: int = 3 * 1024 * 1024
    """Longest string in bound data (Kubernetes accepts requests up to 3 MiB)."""
    max_list_length: int = 1_000_000
    """Most entries of one list or map in bound data."""
    max_depth: int = 256
    """Deepest nesting of bound data (the library's conversion crashes past thousands)."""
    runtime_cost_limit: int = 1_000_000
    """Largest estimated cost of one evaluation on the actual data (about 35 ms, 35 MB)."""
    static_cost_limit: int = 10_000_000
    """Largest estimated cost of one evaluation on the reference object (the estimate
    assumes every value could be as large as the whole object, hence the margin over
    the runtime budget; Kubernetes uses the same two numbers)."""
    reference_string_length: int = 1024
    """Longest string of the reference object."""
    reference_list_length: int = 128
    """Longest list or map of the reference object."""
    reference_values: int = 4096
    """Values in the reference object."""
    reference_characters: int = 65536
    """Characters in the reference object."""


DEFAULT_LIMITS = CelLimits()


class CelCostError(CelLimitExceeded):
    """An evaluation would cost more than `CelLimits.runtime_cost_limit` on this data."""


class CelCostCompileError(CompileError):
    """An expression's estimated cost is above `CelLimits.static_cost_limit`."""
