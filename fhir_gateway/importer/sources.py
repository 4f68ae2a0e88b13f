"""Reading import inputs as a stream of records, each tagged with its file and line.

Accepts ``.json`` (one Bundle or resource), ``.ndjson`` (a resource or a Bundle
per line) and either gzipped, or a directory of them. Memory stays flat: NDJSON
is read line by line; only a single ``.json`` document is held whole.
"""
from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

SUFFIXES = (".json", ".ndjson", ".json.gz", ".ndjson.gz", ".jsonl", ".jsonl.gz")


@dataclass
class Record:
    path: Path
    line: int  # 1-based line number (1 for a whole .json document)
    value: Any = None
    error: str | None = None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def expand(paths: list[Path]) -> list[Path]:
    """Files to import, in a stable order (directories recurse, sorted by name)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES)))
        else:
            out.append(path)
    return out


def _open(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return io.BufferedReader(gzip.GzipFile(path, "rb"))
    return open(path, "rb")


def is_ndjson(path: Path) -> bool:
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    return name.endswith((".ndjson", ".jsonl"))


def read_records(path: Path, *, skip_lines: int = 0) -> Iterator[Record]:
    """Yield the records of one file; lines ``<= skip_lines`` are skipped unparsed (resume)."""
    with _open(path) as raw:
        if not is_ndjson(path):
            if skip_lines >= 1:
                return
            data = raw.read()
            try:
                yield Record(path, 1, orjson.loads(data))
            except orjson.JSONDecodeError as exc:
                yield Record(path, 1, error=f"not valid JSON (character {exc.pos})")
            return
        for number, line in enumerate(raw, start=1):
            if number <= skip_lines or not line.strip():
                continue
            try:
                yield Record(path, number, orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                yield Record(path, number, error=f"not valid JSON (character {exc.pos})")


def file_size(path: Path) -> int:
    return path.stat().st_size
