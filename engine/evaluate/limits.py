"""The limits of one engine: how much its CEL programs and templates may do.

`Engine` takes them in its `Settings` and hands them to every rule it compiles
(`engine.evaluate.compile`): each CEL program keeps its `CelLimits` (`engine.cel.limits`)
and each template its `TemplateLimits` (`engine.templating.limits`), so evaluating and
rendering need nothing else — there is no module-level setting to change. The offline
commands and ``edict run`` read them from ``--limits FILE`` with `parse_limits`; without
it every engine has `DEFAULT_LIMITS`.

The file is one YAML mapping with two optional sections, ``cel:`` and ``templates:``,
each key one field of `CelLimits` or `TemplateLimits` and each value a positive number
(an integer, except ``max_seconds``)::

    cel:
      runtime_cost_limit: 5000000
    templates:
      max_operations: 4000000
      max_seconds: 5

A key left out keeps its default. An unknown section or key, or a value that is not a
positive number of the right kind, is an `InputError` naming the file and the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

from engine.cel.limits import DEFAULT_LIMITS as CEL_DEFAULTS
from engine.cel.limits import CelLimits
from engine.errors import InputError, Where
from engine.templating.limits import DEFAULT_LIMITS as TEMPLATE_DEFAULTS
from engine.templating.limits import TemplateLimits

__all__ = ["DEFAULT_LIMITS", "Limits", "parse_limits"]

CEL_MAX_LENGTH: Final = 100_000
"""cel-expr-python's own ceiling on an expression's length: a higher ``max_length``
would not be honoured."""


@dataclass(frozen=True)
class Limits:
    """The bounds of every CEL evaluation and every rendering of one engine."""

    cel: CelLimits = CEL_DEFAULTS
    templates: TemplateLimits = TEMPLATE_DEFAULTS


DEFAULT_LIMITS: Final = Limits()

_SECTIONS: Final[dict[str, type[Any]]] = {"cel": CelLimits, "templates": TemplateLimits}


def parse_limits(value: Any, *, source: str) -> Limits:
    """The `Limits` a parsed limits file says (None, an empty file: the defaults)."""
    where = Where(file=source)
    if value is None:
        return DEFAULT_LIMITS
    if not isinstance(value, dict):
        raise InputError("a limits file is a mapping with the sections cel and templates",
                         where=where)
    sections: dict[str, Any] = {}
    for name, section in value.items():
        kind = _SECTIONS.get(name) if isinstance(name, str) else None
        if kind is None:
            raise InputError(f"unknown section {name!r}: a limits file has the sections "
                             "cel and templates", where=where)
        sections[name] = _section(name, section, kind, where)
    return Limits(**sections)


def _section(name: str, section: Any, kind: type[Any], where: Where) -> Any:
    defaults = kind()
    if section is None:
        return defaults
    if not isinstance(section, dict):
        raise InputError(f"{name} must be a mapping of limits to numbers", where=where)
    fields = {field.name: field for field in dataclasses.fields(kind)}
    values: dict[str, Any] = {}
    for key, number in section.items():
        if not isinstance(key, str) or key not in fields:
            raise InputError(f"{name}.{key}: unknown limit; the limits of {name} are "
                             + ", ".join(fields), where=where)
        default = getattr(defaults, key)
        values[key] = _number(f"{name}.{key}", number, real=isinstance(default, float),
                              where=where)
    if name == "cel" and values.get("max_length", 0) > CEL_MAX_LENGTH:
        raise InputError(f"cel.max_length: at most {CEL_MAX_LENGTH:,}, the CEL library's own "
                         "ceiling", where=where)
    return dataclasses.replace(defaults, **values)


def _number(key: str, value: Any, *, real: bool, where: Where) -> int | float:
    wanted = "a positive number" if real else "a positive integer"
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not real):
        raise InputError(f"{key}: {value!r} is not {wanted}", where=where)
    if not value > 0 or value == float("inf"):
        raise InputError(f"{key}: {value!r} is not {wanted}", where=where)
    return float(value) if real else value
