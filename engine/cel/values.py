"""Values crossing the CEL boundary: Kubernetes values in CEL, results out, input repair.

`engine.cel.adapter` calls `to_python` on every non-scalar result and `plain` when the
library rejected an input; `engine.cel.library` makes and reads tags. No CEL import.

**Kubernetes values.** cel-expr-python 0.1.3 can give the type-checker opaque types
(``kubernetes.Quantity``, ``net.IP``…, declared in `engine.cel.library`), but its
runtime cannot carry a Python object, so at run time a quantity, URL, IP, CIDR, semver
or format is a *tagged string*: `MARK` (a private-use character and a random per-process
nonce), a kind letter, an order key, ``\\x1f``, then the canonical text. The
type-checker keeps them apart from strings (``string(quantity('1'))`` does not compile,
as in Kubernetes); where a value passes through ``dyn``, the library functions check
the tag, and data cannot forge one: it would have to guess the nonce, which never
leaves CEL (`to_python` turns a tagged result into its text and refuses a string that
carries a tag inside it). Tags are canonical per value, so CEL's ``==`` is Kubernetes'
``Equal``, and the order key makes even a comparison through ``dyn`` follow the value.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Mapping, Set
from decimal import Decimal
from fractions import Fraction
from typing import Any

MARK = "\ue000" + secrets.token_hex(8)
"""Start of every tagged value; the nonce makes it unknowable to data."""
SEPARATOR = "\x1f"
KINDS = {"q": "kubernetes.Quantity", "u": "kubernetes.URL", "i": "net.IP", "c": "net.CIDR",
         "s": "kubernetes.Semver", "f": "kubernetes.NamedFormat"}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class TaggedTextError(ValueError):
    """A result string holds a tagged value inside other text."""


def tag(kind: str, text: str, key: str = "") -> str:
    """The runtime form of a Kubernetes value of `kind` (a letter of `KINDS`)."""
    return f"{MARK}{kind}{key}{SEPARATOR}{text}"


def untag(value: Any, kind: str) -> str | None:
    """The text of a tagged value of `kind`, or None when `value` is not one."""
    if type(value) is not str or not value.startswith(MARK):
        return None
    rest = value[len(MARK):]
    if not rest.startswith(kind):
        return None
    _, separator, text = rest.partition(SEPARATOR)
    return text if separator else None


def kind_of(value: Any) -> str | None:
    """The Kubernetes type name of a tagged value, or None for anything else."""
    if type(value) is str and value.startswith(MARK) and len(value) > len(MARK):
        return KINDS.get(value[len(MARK)])
    return None


def to_python(value: Any) -> Any:
    """A result from the library as plain JSON-like Python (bytes stay bytes)."""
    kind = type(value)
    if kind is str:
        if MARK[0] in value and MARK in value:
            return _text_of(value)
        return value
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


def _text_of(value: str) -> str:
    if value.startswith(MARK) and value.find(MARK, 1) < 0:
        _, separator, text = value.partition(SEPARATOR)
        if separator:
            return text
    raise TaggedTextError("the result holds a Kubernetes value (quantity, URL, IP, CIDR, "
                          "semver or format) inside other text; convert it with string() or "
                          "its own functions first")


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


def scrub(text: str) -> str:
    """`text` (an error message) with every tagged value reduced to its text."""
    if MARK not in text:
        return text
    out, rest = [], text
    while MARK in rest:
        before, _, after = rest.partition(MARK)
        out.append(before)
        _, separator, rest = after.partition(SEPARATOR)
        if not separator:
            break
    out.append(rest)
    return "".join(out)
