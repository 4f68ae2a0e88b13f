"""Recorded vendor responses (copied from the shared fixtures; see each vendor's SOURCES.md).

Helpers for ``responses`` replay: :func:`body` gives the verbatim response of a capture
(the ``body`` of the ``{"_request", "body"}`` wrapper, or the file itself for discovery
documents), :func:`request` the recorded call.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent


def path(vendor: str, name: str) -> Path:
    return ROOT / vendor / name


def load(vendor: str, name: str) -> Any:
    return json.loads(path(vendor, name).read_text(encoding="utf-8"))


def body(vendor: str, name: str) -> Any:
    data = load(vendor, name)
    if isinstance(data, dict) and "_request" in data and "body" in data:
        return data["body"]
    return data


def request(vendor: str, name: str) -> dict[str, Any]:
    data = load(vendor, name)
    return dict(data["_request"])
