"""Fixtures for the HL7 v2 interface tests: an ingestor on a fresh database, message factories,
and a listener subprocess (``python -m fhir_gateway.hl7 listen``) that tests may SIGKILL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fhir_gateway.hl7.ingest import Ingestor
from fhir_gateway.hl7.listen import build_ingestor
from tests.fhir_gateway.conftest import kek_file_for_tests, make_settings

REPO = Path(__file__).resolve().parents[3]


def adt(control_id: str, mrn: str, *, sender: str = "EHR", trigger: str = "A04", family: str = "Doe") -> bytes:
    structure = "ADT_A01"
    return (f"MSH|^~\\&|{sender}|CLINIC|TELEHUB|HUB|20260101120000||ADT^{trigger}^{structure}|{control_id}|P|2.5.1\r"
            f"EVN|{trigger}|20260101120000\r"
            f"PID|1||{mrn}^^^CLINIC&1.2.3&ISO^MR||{family}^Jane||19800101|F\r"
            "PV1|1|O\r").encode()


@pytest.fixture
def ingestor(database_url: str) -> Iterator[Ingestor]:
    ing = build_ingestor(make_settings(database_url))
    yield ing
    ing.services.repository.engine.dispose()


@pytest.fixture
def sqlite_ingestor(sqlite_url: str) -> Iterator[Ingestor]:
    ing = build_ingestor(make_settings(sqlite_url))
    yield ing
    ing.services.repository.engine.dispose()


class Listener:
    """``telehub hl7 listen`` in a child process, restartable on the same port."""

    def __init__(self, database_url: str, log_dir: Path, workers: int = 1) -> None:
        self.workers = workers
        self.env = {**os.environ, "TELEHUB_DATABASE_URL": database_url, "TELEHUB_KEK_FILE": kek_file_for_tests(),
                    "TELEHUB_ENV": "test", "PYTHONPATH": str(REPO)}
        self.log_dir = log_dir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._files: list[Any] = []

    def start(self, timeout: float = 60.0) -> int:
        self.starts += 1
        err = open(self.log_dir / f"listener-{self.starts}.log", "wb")  # noqa: SIM115 - closed in _reap
        self._files.append(err)
        self.proc = subprocess.Popen([sys.executable, "-m", "fhir_gateway.hl7", "listen", "--port", str(self.port),
                                      "--workers", str(self.workers)],
                                     stdout=subprocess.PIPE, stderr=err, env=self.env, cwd=REPO)
        assert self.proc.stdout is not None
        self._files.append(self.proc.stdout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            if line.startswith("listening on"):
                self.port = int(line.strip().rsplit(":", 1)[1].split()[0])
                return self.port
            if not line and self.proc.poll() is not None:
                break
        raise AssertionError(f"the listener did not start: see {err.name}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._reap()

    def _reap(self) -> None:
        for fh in self._files:
            fh.close()
        self._files.clear()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reap()


@pytest.fixture
def listener_factory(tmp_path: Path) -> Iterator[Callable[..., Listener]]:
    made: list[Listener] = []

    class Made(Listener):
        def __init__(self, database_url: str, workers: int = 1) -> None:
            super().__init__(database_url, tmp_path, workers)
            made.append(self)

    yield Made
    for item in made:
        item.stop()
