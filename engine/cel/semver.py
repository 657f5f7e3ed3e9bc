"""Semantic versions as Kubernetes' ``semver()`` reads them (``blang/semver`` v4), in pure Python.

`engine.cel.library` calls `parse` for ``semver(s)`` / ``isSemver(s)`` (with the optional
``normalize`` flag: a leading ``v`` dropped, missing minor and patch filled with ``0``,
leading zeros removed) and `Version.compare` for ``compareTo``, ``isLessThan`` and
``isGreaterThan``. Build metadata is parsed and checked but takes no part in comparing,
so it is not kept. `Version.key` orders versions as text, for the tagged form of
`engine.cel.values`.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

_NUMBERS = frozenset(string.digits)
_ALPHANUM = frozenset(string.ascii_letters + string.digits + "-")
_UINT64_MAX = 2**64 - 1


class SemverError(ValueError):
    """Not a semantic version; the message is ``blang/semver``'s."""


@dataclass(frozen=True)
class Version:
    """major.minor.patch and the prerelease identifiers (ints or strings)."""

    major: int
    minor: int
    patch: int
    pre: tuple[int | str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        return text + ("-" + ".".join(map(str, self.pre)) if self.pre else "")

    def compare(self, other: Version) -> int:
        mine, theirs = self.key(), other.key()
        return (mine > theirs) - (mine < theirs)

    def key(self) -> str:
        """A text that sorts as the versions compare (prerelease before release)."""
        text = f"{self.major:020d}.{self.minor:020d}.{self.patch:020d}"
        if not self.pre:
            return text + "~"
        parts = [f"0{item:020d}" if isinstance(item, int) else f"1{item}" for item in self.pre]
        return text + "!" + "\x02".join(parts) + "\x01"


def parse(text: str, *, normalize: bool = False) -> Version:
    """``semver.Parse`` (or Kubernetes' ``normalizeAndParse`` with `normalize`)."""
    if normalize:
        text = _normalize(text)
    if not text:
        raise SemverError("Version string empty")
    parts = text.split(".", 2)
    if len(parts) != 3:
        raise SemverError("No Major.Minor.Patch elements found")
    major = _number(parts[0], "major")
    minor = _number(parts[1], "minor")
    rest, _, build = parts[2].partition("+")
    patch_text, dash, pre_text = rest.partition("-")
    patch = _number(patch_text, "patch")
    pre = tuple(_prerelease(item) for item in pre_text.split(".")) if dash else ()
    if "+" in parts[2]:
        for item in build.split("."):
            if not item:
                raise SemverError("Build meta data is empty")
            if not set(item) <= _ALPHANUM:
                raise SemverError(f"Invalid character(s) found in build meta data {_q(item)}")
    return Version(major, minor, patch, pre)


def is_semver(text: str, *, normalize: bool = False) -> bool:
    try:
        parse(text, normalize=normalize)
    except SemverError:
        return False
    return True


def _number(text: str, part: str) -> int:
    if not set(text) <= _NUMBERS:
        raise SemverError(f"Invalid character(s) found in {part} number {_q(text)}")
    if len(text) > 1 and text[0] == "0":
        raise SemverError(f"{part.capitalize()} number must not contain leading zeroes {_q(text)}")
    return _uint(text)


def _prerelease(text: str) -> int | str:
    if not text:
        raise SemverError("Prerelease is empty")
    if set(text) <= _NUMBERS:
        if len(text) > 1 and text[0] == "0":
            raise SemverError("Numeric PreRelease version must not contain leading zeroes "
                              f"{_q(text)}")
        return _uint(text)
    if set(text) <= _ALPHANUM:
        return text
    raise SemverError(f"Invalid character(s) found in prerelease {_q(text)}")


def _uint(text: str) -> int:
    if not text:
        raise SemverError('strconv.ParseUint: parsing "": invalid syntax')
    value = int(text)
    if value > _UINT64_MAX:
        raise SemverError(f"strconv.ParseUint: parsing {_q(text)}: value out of range")
    return value


def _normalize(text: str) -> str:
    text = text.removeprefix("v")
    parts = text.split(".", 2)
    for index, part in enumerate(parts):
        if len(part) > 1:
            trimmed = part.lstrip("0")
            if not trimmed or trimmed[0] not in _NUMBERS:
                trimmed = "0" + trimmed
            parts[index] = trimmed
    if len(parts) < 3:
        if "+" in parts[-1] or "-" in parts[-1]:
            raise SemverError("short version cannot contain PreRelease/Build meta data")
        parts += ["0"] * (3 - len(parts))
    return ".".join(parts)


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
