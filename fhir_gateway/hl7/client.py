"""A blocking MLLP client: send messages on one connection, read each ACK before the next.

Used by ``telehub hl7 send``, the outbound queue, the no-loss test and the benchmark.
"""
from __future__ import annotations

import socket
import ssl
from types import TracebackType

from fhir_gateway.hl7.mllp import FrameDecoder, frame


class MllpError(ConnectionError):
    """The peer closed the connection or sent no ACK in time."""


def parse_destination(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError("a destination is host:port")
    return host.strip("[]"), int(port)


class MllpClient:
    def __init__(self, host: str, port: int, *, timeout: float = 30.0, tls: ssl.SSLContext | None = None,
                 server_hostname: str | None = None) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock: socket.socket = tls.wrap_socket(sock, server_hostname=server_hostname or host) if tls else sock
        self._decoder = FrameDecoder()
        self._pending: list[bytes] = []

    def send(self, message: bytes) -> bytes:
        """Send one message and return its ACK payload."""
        self.sock.sendall(frame(message))
        return self.receive()

    def receive(self) -> bytes:
        while not self._pending:
            data = self.sock.recv(65536)
            if not data:
                raise MllpError("connection closed before the ACK")
            self._pending.extend(self._decoder.feed(data))
        return self._pending.pop(0)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def split_messages(data: bytes) -> list[bytes]:
    """The messages in a file: MLLP blocks, or ER7 text where each message starts at an ``MSH`` line."""
    if b"\x0b" in data:
        return FrameDecoder().feed(data)
    text = data.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    out: list[bytes] = []
    for seg in text.split(b"\r"):
        if not seg.strip():
            continue
        if seg.lstrip(b"\xef\xbb\xbf").startswith(b"MSH") or not out:
            out.append(seg.lstrip(b"\xef\xbb\xbf"))
        else:
            out[-1] += b"\r" + seg
    return [m + b"\r" for m in out]
