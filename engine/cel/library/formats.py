"""Kubernetes' format library (1.31): ``format.named()``, ``format.<name>()``, ``validate()``.

Declared as in ``k8s.io/apiserver/pkg/cel/library/format.go``; the formats and their
messages are in `engine.cel.names`. A format at run time is a tagged string holding its
name. ``format.named(name)`` and ``f.validate(s)`` have optional results, which the
runtime cannot return from Python: their runtimes give the value or its zero (an empty
string, an empty list) and `engine.cel.rewrite` wraps the call in
``optional.ofNonZeroValue``, which is exactly Kubernetes' result (``validate`` gives
``optional.none()`` for a valid string, else the list of problems).
"""

from __future__ import annotations

from engine.cel import names, values
from engine.cel.library.declare import LibraryError, Overload, Runtime, guarded

F = "kubernetes.NamedFormat"


def _named(name: str) -> str:
    return values.tag("f", name) if name in names.FORMATS else ""


def _validate(tagged: str, text: str) -> list[str]:
    name = values.untag(tagged, "f")
    if name is None or name not in names.FORMATS:
        raise LibraryError("no such overload: the value is not a format (use format.named(...) "
                           "or format.<name>())")
    return names.FORMATS[name](text)


def _constant(name: str) -> Overload:
    runtime = Runtime(f"@k8s.format.{name}", (), "string",
                      guarded(lambda: values.tag("f", name)))
    return Overload(f"format.{name}", f"format.{name}", (), F, runtime)


OVERLOADS = [
    Overload("format.named", "format-named", ("string",), f"optional_type({F})",
             Runtime("@k8s.format.named", ("string",), "string", guarded(_named)),
             optional=True),
    Overload("validate", "format-validate", (F, "string"), "optional_type(list(string))",
             Runtime("@k8s.validate", ("string", "string"), "list", guarded(_validate), True),
             member=True, optional=True),
    *(_constant(name) for name in names.FORMATS),
]
