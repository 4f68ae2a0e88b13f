"""Wiring for ``telehub hl7 listen``: services, the ingestor and the server; one process or pre-forked.

The listener is CPU-bound in Python (the GIL): ``workers > 1`` binds the socket once, then
forks that many processes that accept on it, each with its own engine and thread pool.
Ordering and duplicates stay safe across processes: a connection lives in one process (its
messages are applied in order), SQLite writers queue on a file lock, PostgreSQL transactions
take advisory locks per sender and per conditional key, and the inbox is unique on
(sender, control id). A worker dies with its parent (``PR_SET_PDEATHSIG``).
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event

from fhir_gateway.hl7.ingest import Ingestor
from fhir_gateway.hl7.server import ListenerConfig, MllpServer
from fhir_gateway.settings import Settings

log = logging.getLogger("telehub.hl7")


def durable_sqlite(engine: Engine) -> None:
    """An ACK promises the message survives a power cut, not only a process crash: on SQLite that
    needs ``synchronous=FULL`` (WAL with NORMAL may lose the last commits on power loss)."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _full(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    engine.dispose()  # connections opened before the hook (migrations, key ring) are not reused


def build_ingestor(settings: Settings) -> Ingestor:
    from fhir_gateway.app import build_services

    services = build_services(settings)
    durable_sqlite(services.repository.engine)
    return Ingestor(services)


def run_listener(settings: Settings, config: ListenerConfig, ready: Callable[[int], None] | None = None,
                 workers: int = 1) -> None:
    if workers <= 1:
        ingestor = build_ingestor(settings)
        server = MllpServer(ingestor.handle, config)
        asyncio.run(server.serve_forever(ready))
        return
    from fhir_gateway.app import build_services

    build_services(settings).repository.engine.dispose()  # migrate once, before the workers start
    sock = socket.create_server((config.host, config.port), backlog=256, reuse_port=False)
    children: list[int] = []
    ready_r, ready_w = os.pipe()
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os.close(ready_r)
            _die_with_parent()
            _child(settings, config, sock, ready_w)
            os._exit(0)
        children.append(pid)
    os.close(ready_w)
    for _ in children:
        os.read(ready_r, 1)
    if ready is not None:
        ready(sock.getsockname()[1])
    sock.close()

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        os.waitpid(child, 0)


def _child(settings: Settings, config: ListenerConfig, sock: socket.socket, ready_w: int) -> None:
    ingestor = build_ingestor(settings)
    server = MllpServer(ingestor.handle, config)

    def ready(_port: int) -> None:
        os.write(ready_w, b"1")
        os.close(ready_w)

    asyncio.run(server.serve_forever(ready, sock=sock))


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when the parent dies, so a killed listener leaves no orphan serving."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        log.warning("workers cannot follow their parent's death on this platform")
