"""Loading and validating vendor profiles (TOML), once at start-up.

A bad profile raises :class:`ProfileError` naming the file and the dotted field,
so an integration engineer can fix it without reading a traceback.
"""
from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from vendor_profiles.schema import VendorProfile

DATA_DIR = Path(__file__).resolve().parent / "data"


class ProfileError(ValueError):
    """A vendor profile that cannot be used: ``path`` and ``field`` say where."""

    def __init__(self, path: Path | str, field: str, message: str) -> None:
        self.path = str(path)
        self.field = field
        self.message = message
        super().__init__(f"{self.path}: {field}: {message}")


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_profile(text: str, path: Path | str = "<string>") -> VendorProfile:
    """Parse and validate one profile's TOML text."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(path, "(syntax)", str(exc)) from None
    try:
        profile = VendorProfile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ProfileError(path, _dotted(tuple(first["loc"])), first["msg"]) from None
    stem = Path(str(path)).stem
    if stem not in ("<string>", profile.name):
        raise ProfileError(path, "name", f"must equal the file name {stem!r}, not {profile.name!r}")
    if profile.hooks is not None:
        from vendor_profiles.hooks import known_hooks

        if profile.hooks not in known_hooks():
            raise ProfileError(path, "hooks", f"no hook module vendor_profiles.hooks.{profile.hooks}")
    return profile


def load_profile(path: Path | str) -> VendorProfile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(path, "(file)", exc.strerror or str(exc)) from None
    return parse_profile(text, path)


class ProfileRegistry:
    """Every profile of a directory, validated up front; looked up by vendor name."""

    def __init__(self, profiles: dict[str, VendorProfile]) -> None:
        self._profiles = dict(profiles)

    @classmethod
    def load(cls, directory: Path | str | None = None) -> ProfileRegistry:
        folder = Path(directory) if directory is not None else DATA_DIR
        profiles: dict[str, VendorProfile] = {}
        for path in sorted(folder.glob("*.toml")):
            profile = load_profile(path)
            profiles[profile.name] = profile
        return cls(profiles)

    def get(self, name: str) -> VendorProfile:
        try:
            return self._profiles[name]
        except KeyError:
            raise KeyError(f"unknown vendor profile {name!r} (known: {', '.join(sorted(self._profiles))})") from None

    def names(self) -> list[str]:
        return sorted(self._profiles)

    def __iter__(self) -> Iterator[VendorProfile]:
        return iter(self._profiles.values())

    def __contains__(self, name: object) -> bool:
        return name in self._profiles
