"""Resume state: how many lines of each input file are safely committed.

Stored as one small JSON file per input under ``./var/import-state/``, keyed by
the target database and the file's absolute path, size and modification time, so a
changed file starts over and imports of one file into two databases never share a
resume point. Saved only after the database commit it describes; replaying a batch
after a crash between the two is harmless because imports are idempotent.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


class ResumeState:
    def __init__(self, directory: Path, target: str = "") -> None:
        """``target`` names the database imported into (its URL; only hashed, never stored)."""
        self.directory = directory
        self.target = target

    def _file(self, source: Path) -> Path:
        st = source.stat()
        key = f"{self.target}|{source.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        return self.directory / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")

    def done_lines(self, source: Path) -> int:
        path = self._file(source)
        if not path.exists():
            return 0
        try:
            return int(json.loads(path.read_text()).get("lines", 0))
        except (ValueError, OSError):
            return 0

    def save(self, source: Path, lines: int, complete: bool = False) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._file(source)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"source": str(source), "lines": lines, "complete": complete}))
        os.replace(tmp, path)

    def clear(self, source: Path) -> None:
        self._file(source).unlink(missing_ok=True)
