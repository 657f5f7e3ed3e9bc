"""Whether a string is a name the Kubernetes API server accepts for an object.

Used when rule sets load (`engine.rules.load`: a rule set's own name and namespace) and
when generated objects are stamped (`engine.evaluate.identity`). The rules are
apimachinery's: a DNS-1123 subdomain for most names, a DNS-1123 label for Namespaces,
Services and namespaces, and for every name the path-segment rules (it becomes part of
a URL path: not ``.`` or ``..``, no ``/`` or ``%``).
"""

from __future__ import annotations

import re
from typing import Any, Final

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
SUBDOMAIN_MAX: Final = 253
LABEL_MAX: Final = 63

# (group, kind) whose names are DNS-1123 labels; kinds whose names only follow the
# path-segment rules (RBAC names such as `system:controller:foo`).
_LABEL_NAMES: Final = frozenset({("", "Namespace"), ("", "Service")})
_SEGMENT_NAMES: Final = frozenset({
    ("rbac.authorization.k8s.io", kind)
    for kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")})


def object_name_problem(api_version: Any, kind: Any, name: Any) -> str | None:
    """Why `name` cannot name an object of this apiVersion and kind (None when it can)."""
    group = api_version.rpartition("/")[0] if isinstance(api_version, str) else ""
    return name_problem(name, label=(group, kind) in _LABEL_NAMES,
                        segment_only=(group, kind) in _SEGMENT_NAMES)


def name_problem(name: Any, *, label: bool = False, segment_only: bool = False) -> str | None:
    """Why `name` is not a valid object name (None when it is): a DNS-1123 subdomain, or
    a label with `label`, or only a path segment with `segment_only`."""
    if not isinstance(name, str):
        return f"is {_KINDS.get(type(name), 'not a string')}, not a string"
    if not name:
        return "is empty"
    if name in (".", ".."):
        return "may not be '.' or '..'"
    for bad in ("/", "%"):
        if bad in name:
            return f"may not contain {bad!r}"
    if segment_only:
        return None
    if label:
        if len(name) > LABEL_MAX:
            return f"is longer than {LABEL_MAX} characters"
        if not _LABEL.match(name):
            return ("is not a DNS-1123 label (lower-case letters, digits and '-', starting "
                    "and ending with a letter or digit)")
        return None
    if len(name) > SUBDOMAIN_MAX:
        return f"is longer than {SUBDOMAIN_MAX} characters"
    if not _SUBDOMAIN.match(name):
        return ("is not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', "
                "starting and ending with a letter or digit)")
    return None


_KINDS: Final[dict[type, str]] = {int: "a number", float: "a number", bool: "a boolean",
                                  list: "a list", dict: "a mapping", type(None): "missing"}
