"""The MLLP listener: asyncio for the sockets, a thread pool for the database work.

Each connection is read in order and answered in order: a message is handed to the
:class:`~fhir_gateway.hl7.ingest.Ingestor` and its ACK written only when the ingestor
returns, i.e. after the commit. Many connections are served at once (the pool runs
their transactions concurrently; PostgreSQL overlaps them, SQLite queues writers).
An unexpected failure (the database is down) closes the connection without an ACK:
the sender's retry then re-sends the message, which is never lost.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from fhir_gateway.hl7.ingest import Outcome
from fhir_gateway.hl7.mllp import FrameDecoder, FrameTooLarge, frame

log = logging.getLogger("telehub.hl7")
Handler = Callable[[bytes, str | None], Outcome]


@dataclass
class ListenerConfig:
    host: str = "127.0.0.1"
    port: int = 2575
    threads: int = 8
    idle_timeout: float = 600.0
    max_message_bytes: int = 16 * 1024 * 1024
    tls_cert: str | None = None
    tls_key: str | None = None


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """TLS 1.2+ with forward-secret AEAD suites, as the HTTP server (infra/tls)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    ctx.load_cert_chain(cert, key)
    return ctx


class MllpServer:
    def __init__(self, handler: Handler, config: ListenerConfig) -> None:
        self.handler = handler
        self.config = config
        self.pool = ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="hl7")
        self.counts = {"AA": 0, "AE": 0, "AR": 0, "duplicate": 0}
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, sock: socket.socket | None = None) -> asyncio.Server:
        """Listen on host:port, or accept on ``sock`` (a socket bound once and shared by forked workers)."""
        ctx = tls_context(self.config.tls_cert, self.config.tls_key) if self.config.tls_cert and \
            self.config.tls_key else None
        if sock is not None:
            self._server = await asyncio.start_server(self._serve, sock=sock, ssl=ctx, limit=1 << 20)
        else:
            self._server = await asyncio.start_server(self._serve, self.config.host, self.config.port, ssl=ctx,
                                                      limit=1 << 20, backlog=256)
        return self._server

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = peername[0] if isinstance(peername, tuple) else None
        decoder = FrameDecoder(self.config.max_message_bytes)
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            while True:
                data = await asyncio.wait_for(reader.read(65536), self.config.idle_timeout)
                if not data:
                    break
                for payload in decoder.feed(data):
                    outcome = await loop.run_in_executor(self.pool, self.handler, payload, peer)
                    self._count(outcome)
                    writer.write(frame(outcome.ack))
                    await writer.drain()
        except (TimeoutError, ConnectionError, FrameTooLarge) as exc:
            log.info("hl7 connection closed: %s", type(exc).__name__)
        except asyncio.CancelledError:  # shutting down: an in-flight message finishes in the pool, unacknowledged
            pass
        except Exception:  # database down, a bug: no ACK, so the sender re-sends; never a lost message
            log.exception("hl7 message failed before an ACK; closing the connection so the sender retries")
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    def _count(self, outcome: Outcome) -> None:
        self.counts["duplicate" if outcome.duplicate else outcome.code] += 1

    async def serve_forever(self, ready: Callable[[int], None] | None = None,
                            sock: socket.socket | None = None) -> None:
        server = await self.start(sock)
        if ready is not None:
            ready(self.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with server:
            await stop.wait()
            await self.aclose()
        log.info("hl7 listener stopped: %s", self.counts)

    async def aclose(self) -> None:
        """Stop accepting, drop open connections (their senders re-send what was not acknowledged) and
        let in-flight transactions finish in the pool."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=10)
        await asyncio.get_running_loop().run_in_executor(None, lambda: self.pool.shutdown(wait=True))
