"""Values crossing the CEL boundary: tagged strings, results out, defensive input repair.

`engine.cel.adapter` calls `to_python` on every non-scalar result and `plain` when the
library rejected an input; `engine.cel.library` uses the tags. No CEL import here.

**Tagged strings.** cel-expr-python 0.1.3 can declare an opaque type for the
type-checker, but its runtime cannot carry a Python object of that type ("Unimplemented
type: 13"), and parameters of such a type never match at run time. So a Kubernetes
``Quantity`` or ``URL`` lives inside CEL as a string: a private-use marker character,
the kind, a colon, then the canonical text (``"\\ue000quantity:1500m"``,
``"\\ue000url:https://x/"``). A quantity's text is its canonical DecimalSI form, unique
per value, so CEL's ``==`` compares quantities by value (``quantity('1Ki') ==
quantity('1024')``); the library's member functions check the marker and refuse plain
strings. Results leave CEL with the marker stripped: a quantity comes out as its
canonical string, a URL as the text it was parsed from. Side effect, documented for
rule authors: ``string(quantity('1'))`` shows the marker.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Set
from decimal import Decimal
from fractions import Fraction
from typing import Any

MARKER = "\ue000"
QUANTITY_TAG = MARKER + "quantity:"
URL_TAG = MARKER + "url:"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def to_python(value: Any) -> Any:
    """A result from the library as plain JSON-like Python (bytes stay bytes)."""
    kind = type(value)
    if kind is str:
        return value.split(":", 1)[1] if value.startswith(MARKER) else value
    if kind is list:
        return [to_python(item) for item in value]
    if kind is dict:
        return {to_python(key): to_python(item) for key, item in value.items()}
    if kind is bytearray or kind is bytes:
        return bytes(value)
    if isinstance(value, datetime.datetime):
        return rfc3339(value)
    if isinstance(value, datetime.timedelta):
        return go_duration(value)
    if value is None or kind in (bool, int, float):
        return value
    return str(value)  # a CEL type value, from type(x)


def plain(value: Any) -> Any:
    """Deep copy into exactly what the library accepts: dict, list, str, int64, float...

    Only used after the library refused an input (a tuple, a dict subclass, a datetime
    from YAML), so well-formed input never pays for it.
    """
    if isinstance(value, str | bool | float) or value is None:
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else float(value)
    if isinstance(value, Mapping):
        return {plain(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | Set):
        return [plain(item) for item in value]
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, datetime.datetime):
        return rfc3339(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return go_duration(value)
    if isinstance(value, Decimal | Fraction):
        return float(value)
    return value


def rfc3339(moment: datetime.datetime) -> str:
    """Kubernetes' time format: UTC, ``Z``, fractional seconds only when present."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def go_duration(delta: datetime.timedelta) -> str:
    """Go's ``time.Duration.String()``: ``1h0m0s``, ``1.5s``, ``250ms``, ``0s``."""
    nanos = ((delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1000
    if nanos == 0:
        return "0s"
    sign, nanos = ("-" if nanos < 0 else ""), abs(nanos)
    if nanos < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1000), ("ns", 1)):
            if nanos >= size:
                return sign + _decimal(nanos, size) + unit
    hours, rest = divmod(nanos, 3600 * 1_000_000_000)
    minutes, rest = divmod(rest, 60 * 1_000_000_000)
    text = f"{hours}h" if hours else ""
    if hours or minutes:
        text += f"{minutes}m"
    return sign + text + _decimal(rest, 1_000_000_000) + "s"


def _decimal(amount: int, unit: int) -> str:
    whole, fraction = divmod(amount, unit)
    digits = str(fraction).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)
