"""The EHR's ``smart_style_url`` → CSS custom properties, so the app blends into the EHR.

https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#styling — a JSON object of
``color_*``, ``dim_*`` and ``font_family_*`` values. Only values of a safe shape are kept (colours,
lengths, font lists): the document comes from outside and ends up in a ``<style>`` element.
Fetched at most once per URL every few minutes; a failure means the app's own defaults.
"""
from __future__ import annotations

import re
import threading
import time
from typing import Any

from smart_app.transport import Transport, TransportError

TTL = 300
_COLOR = re.compile(r"^(#[0-9a-fA-F]{3,8}|rgba?\([0-9.,%\s]+\)|[a-zA-Z]{3,20})$")
_DIM = re.compile(r"^[0-9]{1,4}(\.[0-9]{1,3})?(px|rem|em|%)?$")
_FONT = re.compile(r"^[A-Za-z0-9 ,'\"\-]{1,200}$")
KEYS = {"color_background": _COLOR, "color_error": _COLOR, "color_highlight": _COLOR, "color_success": _COLOR,
        "color_text": _COLOR, "color_modal_backdrop": _COLOR, "dim_border_radius": _DIM, "dim_font_size": _DIM,
        "dim_spacing_size": _DIM, "font_family_body": _FONT, "font_family_heading": _FONT}


def css_variables(style: dict[str, Any]) -> dict[str, str]:
    """``{"color_text": "#111"}`` → ``{"--color-text": "#111"}``, keeping only known keys of a safe shape."""
    out = {}
    for key, pattern in KEYS.items():
        value = style.get(key)
        if isinstance(value, str) and value and pattern.match(value.strip()):
            out["--" + key.replace("_", "-")] = value.strip()
    return out


class StyleCache:
    def __init__(self, transport: Transport, clock: Any = time.monotonic) -> None:
        self.transport = transport
        self._items: dict[str, tuple[float, dict[str, str]]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def variables(self, url: str | None) -> dict[str, str]:
        if not url or not url.startswith(("http://", "https://")):
            return {}
        now = self._clock()
        with self._lock:
            found = self._items.get(url)
        if found and found[0] > now:
            return found[1]
        try:
            reply = self.transport.request("GET", url, headers={"Accept": "application/json"})
            body = reply.json() if reply.status == 200 else {}
            variables = css_variables(body if isinstance(body, dict) else {})
        except (TransportError, ValueError):
            variables = {}
        with self._lock:
            self._items[url] = (now + TTL, variables)
        return variables
