"""The clinic connection file onboarding writes: exactly what ``telehub sync`` reads
(:func:`fhir_gateway.upstream.connection.load_connection`; docs/upstream.md "Connections").

Secrets stay references: a key file becomes ``file:<absolute path>``; a secret typed on stdin is
never written, the file names an environment variable to hold it instead.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fhir_gateway.upstream.connection import Connection, SecretRef

KEYS = ("vendor", "base_url", "client_id", "private_key", "key_id", "jku", "client_secret", "token_url", "practice",
        "scopes")


class StdinSecret(SecretRef):
    """A secret typed on stdin, kept in memory for this run only (its repr shows no value)."""

    def __init__(self, value: str, env_name: str) -> None:
        object.__setattr__(self, "ref", f"env:{env_name}")
        object.__setattr__(self, "_value", value)

    def __post_init__(self) -> None:
        return None

    def reveal(self) -> str:
        return str(object.__getattribute__(self, "_value"))

    def __repr__(self) -> str:
        return f"StdinSecret(ref={self.ref!r})"


def secret_env_name(tenant: str) -> str:
    return "TELEHUB_SECRET_" + re.sub(r"[^A-Z0-9]+", "_", tenant.upper()).strip("_")


def _toml_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string for these values


def render(connection: Connection, *, header: list[str] | None = None) -> str:
    values: dict[str, Any] = {
        "vendor": connection.profile.name, "base_url": connection.base_url, "client_id": connection.client_id,
        "private_key": connection.private_key.ref if connection.private_key else None, "key_id": connection.key_id,
        "jku": connection.jku, "client_secret": connection.client_secret.ref if connection.client_secret else None,
        "token_url": connection.token_url, "practice": connection.practice,
        "scopes": list(connection.scopes) if connection.scopes is not None else None}
    lines = [f"# {line}" for line in header or []]
    lines += [f"{key} = {_toml_value(values[key])}" for key in KEYS if values[key] is not None]
    return "\n".join(lines) + "\n"


def write(connection: Connection, directory: Path | str, *, header: list[str] | None = None) -> Path:
    """``<directory>/<tenant>.toml``, replaced atomically; returns its path."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{connection.tenant}.toml"
    temp = target.with_suffix(".toml.tmp")
    temp.write_text(render(connection, header=header), encoding="utf-8")
    temp.replace(target)
    return target
