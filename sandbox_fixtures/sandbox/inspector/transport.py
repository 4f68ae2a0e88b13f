"""How the inspector reaches FHIR servers: in-process for its own origin, the network otherwise.

The demo serves everything from one process with two threads; an app calling its own server over the
network from inside a request could wait on itself. In-process calls keep the HTTP semantics
(werkzeug's test client runs the real WSGI stack) without the socket.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from werkzeug.test import Client

TIMEOUT = 15


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Transport:
    """GET and form-POST; ``wsgi_app`` answers URLs under ``origin`` without a socket."""

    def __init__(self, origin: str, wsgi_app: Callable[..., Any] | None = None) -> None:
        self.origin = origin.rstrip("/")
        self.wsgi_app = wsgi_app

    def _local(self, url: str) -> bool:
        return self.wsgi_app is not None and url.startswith(self.origin + "/")

    def request(self, method: str, url: str, *, headers: dict[str, str], form: dict[str, str] | None = None,
                basic: tuple[str, str] | None = None) -> HttpReply:
        if self.wsgi_app is not None and self._local(url):
            parts = urlsplit(url)
            if basic:
                import base64

                token = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
                headers = {**headers, "Authorization": f"Basic {token}"}
            resp = Client(self.wsgi_app).open(parts.path, method=method, query_string=parts.query or None,
                                              headers=headers, data=form, base_url=self.origin)
            try:
                return HttpReply(resp.status_code, resp.get_data())
            finally:
                resp.close()
        r = requests.request(method, url, headers=headers, data=form, auth=basic, timeout=TIMEOUT)
        return HttpReply(r.status_code, r.content)
