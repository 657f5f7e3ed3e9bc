"""The named string formats of Kubernetes' CEL ``format`` library, with Kubernetes' messages.

`engine.cel.library` serves ``format.named(name)``, ``format.<name>()`` and
``<format>.validate(s)`` from `FORMATS`: each validator returns the list of problems
(empty when the string is valid), in the words of ``k8s.io/apimachinery``'s validation
functions (DNS labels and subdomains, qualified names, label values) and of
kube-openapi's ``strfmt`` (uri, uuid, byte, date, datetime). Patterns run on
`engine.regex` (RE2).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from engine import regex
from engine.cel import urls

_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = _LABEL + "(\\." + _LABEL + ")*"
_DNS1035 = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = "(" + _QUALIFIED + ")?"
_UUID = "(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$"
_BASE64 = ("^(?:[A-Za-z0-9+\\/]{4})*(?:[A-Za-z0-9+\\/]{2}==|[A-Za-z0-9+\\/]{3}=|"
           "[A-Za-z0-9+\\/]{4})$")
_DATE = "^([0-9]{4})-([0-9]{2})-([0-9]{2})$"
_TIME = "^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$"
_LABEL_MESSAGE = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                  "or '-', and must start and end with an alphanumeric character")
_SUBDOMAIN_MESSAGE = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                      "characters, '-' or '.', and must start and end with an alphanumeric "
                      "character")
_DNS1035_MESSAGE = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                    "start with an alphabetic character, and end with an alphanumeric character")
_QUALIFIED_MESSAGE = ("must consist of alphanumeric characters, '-', '_' or '.', and must start "
                      "and end with an alphanumeric character")
_LABEL_VALUE_MESSAGE = ("a valid label must be an empty string or consist of alphanumeric "
                        "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                        "character")


def _whole(pattern: str, text: str) -> bool:
    return regex.compile(f"^(?:{pattern})$").search(text) is not None


def regex_error(message: str, pattern: str, *examples: str) -> str:
    """apimachinery's ``RegexError``."""
    if not examples:
        return f"{message} (regex used for validation is '{pattern}')"
    shown = "".join(f"{' or ' if index else ''}'{example}', "
                    for index, example in enumerate(examples))
    return f"{message} (e.g. {shown}regex used for validation is '{pattern}')"


def _max_length(length: int) -> str:
    return f"must be no more than {length} characters"


def dns1123_label(value: str) -> list[str]:
    problems = [_max_length(63)] if len(value) > 63 else []
    if not _whole(_LABEL, value):
        if _whole(_SUBDOMAIN, value):
            problems.append("must not contain dots")
        else:
            problems.append(regex_error(_LABEL_MESSAGE, _LABEL, "my-name", "123-abc"))
    return problems


def dns1123_subdomain(value: str) -> list[str]:
    problems = [_max_length(253)] if len(value) > 253 else []
    if not _whole(_SUBDOMAIN, value):
        problems.append(regex_error(_SUBDOMAIN_MESSAGE, _SUBDOMAIN, "example.com"))
    return problems


def dns1035_label(value: str) -> list[str]:
    problems = [_max_length(63)] if len(value) > 63 else []
    if not _whole(_DNS1035, value):
        problems.append(regex_error(_DNS1035_MESSAGE, _DNS1035, "my-name", "abc-123"))
    return problems


def qualified_name(value: str) -> list[str]:
    problems: list[str] = []
    parts = value.split("/")
    if len(parts) > 2:
        return ["a qualified name " + regex_error(_QUALIFIED_MESSAGE, _QUALIFIED, "MyName",
                                                  "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    name = parts[-1]
    if len(parts) == 2:
        if not parts[0]:
            problems.append("prefix part must be non-empty")
        else:
            problems += ["prefix part " + problem for problem in dns1123_subdomain(parts[0])]
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part " + _max_length(63))
    if not _whole(_QUALIFIED, name):
        problems.append("name part " + regex_error(_QUALIFIED_MESSAGE, _QUALIFIED, "MyName",
                                                   "my.name", "123-abc"))
    return problems


def label_value(value: str) -> list[str]:
    problems = [_max_length(63)] if len(value) > 63 else []
    if not _whole(_LABEL_VALUE, value):
        problems.append(regex_error(_LABEL_VALUE_MESSAGE, _LABEL_VALUE, "MyValue", "my_value",
                                    "12345"))
    return problems


def _prefixed(check: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """The name may get a suffix appended: a trailing dash is masked (as apimachinery does)."""
    def validate(value: str) -> list[str]:
        if len(value) > 1 and value.endswith("-"):
            value = value[:-2] + "a"
        return check(value)
    return validate


def uri(value: str) -> list[str]:
    try:
        urls.parse_request_uri(value)
    except urls.URLError as error:
        return [f"parse {urls.go_quote(value)}: {error}"]
    return []


def _is_date(value: str) -> bool:
    match = regex.compile(_DATE).search(value)
    if match is None:
        return False
    try:
        datetime.date(*(int(part) for part in match.groups()))
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    if len(value) < 4:
        return False
    parts = value.lower().split("t")
    if len(parts) < 2 or not _is_date(parts[0]):
        return False
    match = regex.compile(_TIME).search(parts[1])
    if match is None:
        return False
    hour, minute, second = (str(part) for part in match.groups()[:3])
    return hour <= "23" and minute <= "59" and second <= "59"


def _simple(check: Callable[[str], bool], message: str) -> Callable[[str], list[str]]:
    return lambda value: [] if check(value) else [message]


FORMATS: dict[str, Callable[[str], list[str]]] = {
    "dns1123Label": dns1123_label,
    "dns1123Subdomain": dns1123_subdomain,
    "dns1035Label": dns1035_label,
    "qualifiedName": qualified_name,
    "dns1123LabelPrefix": _prefixed(dns1123_label),
    "dns1123SubdomainPrefix": _prefixed(dns1123_subdomain),
    "dns1035LabelPrefix": _prefixed(dns1035_label),
    "labelValue": label_value,
    "uri": uri,
    "uuid": _simple(lambda value: regex.compile(_UUID).search(value) is not None,
                    "does not match the UUID format"),
    "byte": _simple(lambda value: regex.compile(_BASE64).search(value) is not None,
                    "invalid base64"),
    "date": _simple(_is_date, "invalid date"),
    "datetime": _simple(_is_datetime, "invalid datetime"),
}
"""Every named format, by the name ``format.named()`` takes."""
