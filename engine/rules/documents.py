"""Reading YAML documents from files, directories and standard input.

Used by every offline command (rule sets, manifests, test cases). Safe loading only
(libyaml's CSafeLoader when it is there). Every document remembers where it came from,
so errors can name the file and the document's position in it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engine.errors import InputError, Where

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

YAML_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Document:
    value: Any
    source: str  # "path#index" (index counts from 1)


def parse_stream(text: str, *, source: str) -> list[Document]:
    """All non-empty documents of one YAML stream; `kind: List` is flattened."""
    try:
        values = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}", where=Where(file=source)) from exc
    docs: list[Document] = []
    for index, value in enumerate(values, start=1):
        if value is None:
            continue
        if isinstance(value, dict) and value.get("kind") == "List" and isinstance(
            value.get("items"), list
        ):
            for item_index, item in enumerate(value["items"], start=1):
                docs.append(Document(item, f"{source}#{index}.{item_index}"))
        else:
            docs.append(Document(value, f"{source}#{index}"))
    return docs


def files_under(path: Path) -> Iterator[Path]:
    """YAML files of a directory tree in a stable order, or the file itself."""
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file() and child.suffix in YAML_SUFFIXES:
                yield child
    else:
        yield path


def read_documents(paths: Iterable[str]) -> list[Document]:
    """Documents of every path given; `-` reads standard input once."""
    docs: list[Document] = []
    for raw in paths:
        if raw == "-":
            docs.extend(parse_stream(sys.stdin.read(), source="<stdin>"))
            continue
        path = Path(raw)
        if not path.exists():
            raise InputError(f"no such file or directory: {raw}")
        for file in files_under(path):
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"cannot read: {exc}", where=Where(file=str(file))) from exc
            docs.extend(parse_stream(text, source=str(file)))
    return docs
