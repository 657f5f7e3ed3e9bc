"""Reading YAML documents from files, directories and standard input, within limits.

Used by every offline command (rule sets, manifests, test cases) and by the template
filter ``from_yaml``. Parsing is `engine.rules.yamlsafe` (libyaml where it can, aliases,
nesting, size and duplicate keys checked, JSON values only); this module decides what
may be read at all: regular files only (not devices, FIFOs or sockets, so neither
``/dev/zero`` nor a pipe that never ends), at most `LoadLimits.max_file_bytes` each,
directories walked without following links to other directories. Every document
remembers where it came from (``path#index``, counting from 1), so errors can name the
file and the document; every error is an `InputError` of one line.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from engine.errors import InputError, Where
from engine.rules.yamlsafe import DEFAULT_LOAD_LIMITS, LoadError, LoadLimits, load_stream

__all__ = ["DEFAULT_LOAD_LIMITS", "YAML_SUFFIXES", "Document", "LoadLimits", "files_under",
           "parse_stream", "parse_value", "read_documents", "read_text"]

YAML_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Document:
    value: Any
    source: str  # "path#index" (index counts from 1)


def parse_stream(text: str, *, source: str,
                 limits: LoadLimits = DEFAULT_LOAD_LIMITS) -> list[Document]:
    """All non-empty documents of one YAML stream; `kind: List` is flattened."""
    docs: list[Document] = []
    try:
        for index, value in load_stream(text, limits=limits):
            if value is None:
                continue
            if isinstance(value, dict) and value.get("kind") == "List" and isinstance(
                value.get("items"), list
            ):
                for item_index, item in enumerate(value["items"], start=1):
                    docs.append(Document(item, f"{source}#{index}.{item_index}"))
            else:
                docs.append(Document(value, f"{source}#{index}"))
    except LoadError as exc:
        raise InputError(str(exc), where=Where(file=source)) from None
    return docs


def parse_value(text: str, *, source: str, limits: LoadLimits = DEFAULT_LOAD_LIMITS) -> Any:
    """The value of a stream of exactly one document (None for an empty one)."""
    try:
        values = [value for _, value in load_stream(text, limits=limits)]
    except LoadError as exc:
        raise InputError(str(exc), where=Where(file=source)) from None
    if len(values) > 1:
        raise InputError(f"expected one YAML document, found {len(values)}",
                         where=Where(file=source))
    return values[0] if values else None


def files_under(path: Path) -> Iterator[Path]:
    """YAML files of a directory tree in a stable order, or the path itself.

    Links to directories are not followed (no loops, no escaping the tree that way);
    only regular files (or links to them) with a YAML suffix are listed.
    """
    if not path.is_dir():
        yield path
        return
    for folder, dirs, files in os.walk(path, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            child = Path(folder) / name
            if child.suffix in YAML_SUFFIXES and _is_regular(child):
                yield child


def read_text(file: Path, *, limits: LoadLimits = DEFAULT_LOAD_LIMITS) -> str:
    """The UTF-8 text of a regular file of at most `limits.max_file_bytes`."""
    where = Where(file=str(file))
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where=where) from None
    with os.fdopen(fd, "rb") as stream:
        mode = os.fstat(stream.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise InputError(f"not a regular file ({_kind(mode)}): only files and "
                             "directories of YAML files can be read", where=where)
        return _decode(_read_bounded(stream, limits, where), where)


def read_documents(paths: Iterable[str], *,
                   limits: LoadLimits = DEFAULT_LOAD_LIMITS) -> list[Document]:
    """Documents of every path given; `-` reads standard input once."""
    docs: list[Document] = []
    for raw in paths:
        if raw == "-":
            where = Where(file="<stdin>")
            text = _decode(_read_bounded(sys.stdin.buffer, limits, where), where)
            docs.extend(parse_stream(text, source="<stdin>", limits=limits))
            continue
        path = Path(raw)
        if not path.exists():
            raise InputError(f"no such file or directory: {raw}")
        for file in files_under(path):
            docs.extend(parse_stream(read_text(file, limits=limits), source=str(file),
                                     limits=limits))
    return docs


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"


def _read_bounded(stream: BinaryIO, limits: LoadLimits, where: Where) -> bytes:
    try:
        data = stream.read(limits.max_file_bytes + 1)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where=where) from None
    if len(data) > limits.max_file_bytes:
        raise InputError(f"more than {limits.max_file_bytes} bytes, over the limit of one "
                         "file", where=where)
    return data


def _decode(data: bytes, where: Where) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", where=where) from None
