"""Scrub every log record before it can reach a handler: no PHI, no credentials, no query strings.

Names, free-text notes and most identifiers cannot be recognised by a pattern, so the
rule is structural first and pattern-based second:

1. **Our request log lines are whitelisted, not scrubbed.** They are rendered by
   :func:`render_request` (a :class:`RequestLine`) from a fixed list of fields, each checked
   against a strict shape (request id, method, route template, FHIR interaction template,
   status, duration), and pass untouched (the hot path: one per request). Any other record
   carrying a ``telehub_request`` mapping is re-rendered the same way, ignoring its message,
   so a raw path, query string or body cannot get in.
2. **Bodies never enter a message.** ``bytes`` arguments and FHIR resources (mappings with a
   ``resourceType``) are replaced by a placeholder before the message is formatted;
   SQLAlchemy's parameter and row reprs (``echo=True``) are replaced too; an
   over-long message is cut.
3. **Everything else (library records from werkzeug, authlib, sqlalchemy, urllib3, requests,
   granian, and our own non-request records) is formatted once and scrubbed** by
   :func:`scrub_text`: URLs lose their query string; ``Authorization``/cookies and the values
   of ``access_token``, ``refresh_token``, ``id_token``, ``code``, ``client_secret``,
   ``password`` and similar keys become ``[redacted]``; JWTs, long base64/hex secrets and
   passwords in connection URLs are masked; e-mail addresses, phone numbers, SSNs, dates
   (birth dates and dates of service alike), long digit runs, non-loopback IPv4 addresses
   and FHIR resource ids in paths are masked.
4. **Exceptions** are rendered here, with each exception's message scrubbed, or replaced by
   ``[message redacted]`` when ``keep_exception_messages`` is off (production):
   ``pydantic``'s ``input_value=…`` and SQLAlchemy's ``[parameters: …]`` echo the data
   that failed. ``exc_info`` is then dropped from the record so no later handler can
   format the original exception again.

A scrubbed record is marked (``_telehub_scrubbed``), so the record factory, the handler
filter and the formatter may all run without scrubbing twice.
"""
from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

REDACTED = "[redacted]"
MAX_MESSAGE_CHARS = 8000
SCRUBBED_ATTR = "_telehub_scrubbed"
REQUEST_ATTR = "telehub_request"

# ------------------------------------------------------------------ policy


@dataclass
class ScrubPolicy:
    """Process-wide knobs, set by :func:`fhir_gateway.observability.setup.configure_logging`."""

    keep_exception_messages: bool = True  # False in production: tracebacks keep frames, lose messages


POLICY = ScrubPolicy()

# ------------------------------------------------------------------ patterns

# Keys whose values are credentials (or launch/auth codes) wherever they appear:
# query/form ``key=value``, JSON/dict ``"key": "value"``, kwargs ``key='value'``, ``key: value``.
SENSITIVE_KEYS = (
    "access_token", "refresh_token", "id_token", "token", "code", "code_verifier", "client_secret",
    "client_assertion", "assertion", "password", "passwd", "pwd", "secret", "api_key", "apikey",
    "x-api-key", "otp", "totp", "private_key", "kek", "jwt", "session", "sessionid", "cookie", "set-cookie",
    "authorization", "proxy-authorization", "x-twilio-signature", "signature", "username",
)
# Keys whose values are PHI in a partial resource or form (a whole resource is dropped, see _FHIR_BODY).
PHI_KEYS = (
    "patient", "encounter", "name", "family", "given", "birthdate", "birth_date", "dob", "ssn", "mrn",
    "phone", "email", "telecom", "address", "line", "city", "postalcode", "postal_code",
)
_KEYS = "|".join(sorted((re.escape(k) for k in SENSITIVE_KEYS + PHI_KEYS), key=len, reverse=True))

_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){1,3}")
# A query string: "?" then something with "=" (so prose like "why?" is left alone).
_QUERY = re.compile(r"\?(?=[^\s\"'<>#]*=)[^\s\"'<>#]*")
# "Authorization: Bearer abc", "'Authorization': 'Bearer abc'", "Cookie: a=b; c=d" (header-like: to end of value).
_HEADER = re.compile(
    r"(?i)(?P<k>[\"']?(?:proxy-)?(?:authorization|cookie|set-cookie|x-api-key)[\"']?\s*[:=]\s*)"
    r"(?P<q>[\"']?)(?P<v>[^\"'\r\n]*)")
# A credential after an auth scheme; it must contain a digit or symbol, so "Basic authentication" is left alone.
_SCHEME_CRED = re.compile(r"(?i)\b(?P<s>bearer|basic|digest|negotiate)\s+"
                          r"(?P<v>(?=[A-Za-z]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,})")
_KEY_VALUE = re.compile(
    rf"(?i)(?<![\w-])(?P<k>[\"']?)(?P<name>{_KEYS})(?P=k)(?P<sep>\s*[:=]\s*)"
    r"(?P<v>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"  # a quoted string
    r"|\[(?![a-z ]+\])[^\[\]]*\]|\{[^{}\[\]]*\}"  # a flat list or mapping (not one of our [placeholders])
    r"|(?![\[{])[^\s&,;})\]\"']+)")
_URL_PASSWORD = re.compile(r"(?P<p>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@")
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_SSN = re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])")
_PHONE = re.compile(r"(?<![\w+])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\w])"
                    r"|(?<![\w+])\+\d{10,15}(?!\w)")
_DATE_ISO = re.compile(r"(?<![\w-])(?:1[89]|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
                       r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?(?![\w])")
_DATE_US = re.compile(r"(?<![\w/])(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])/(?:1[89]|20)\d{2}(?![\w/])")
_DATE_COMPACT = re.compile(r"(?<![\w.])(?:1[89]|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?![\w.])")
_LONG_NUMBER = re.compile(r"(?<![\w.])\d{9,}(?![\w.])")
_HEX_SECRET = re.compile(r"(?<![\w-])[0-9a-fA-F]{40,}(?![\w-])")
_B64URL_SECRET = re.compile(r"(?<![\w+/-])[A-Za-z0-9_-]{32,}(?![\w+/=-])")
_B64_SECRET = re.compile(r"(?<![\w+/-])[A-Za-z0-9+/]{32,}={0,2}(?![\w+/=-])")
_IPV4 = re.compile(r"(?<![\w.])(?!127\.)(?!0\.0\.0\.0(?![\w.]))(?:25[0-5]|2[0-4]\d|1?\d?\d)"
                   r"(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}(?![\w.])")
_SQL_PARAMETERS = re.compile(r"\[parameters: .*?\](?=\s*(?:\n|\(Background|$))", re.DOTALL)
_PYDANTIC_INPUT = re.compile(r"input_value=.*?(?=, input_type=|\]$|\]\n|$)", re.MULTILINE)
_FHIR_BODY = re.compile(r"[{,]\s*[\"']resourceType[\"']\s*:")

_FHIR_ID = re.compile(r"(?<![\w])(?P<t>[A-Z][A-Za-z]+)/(?![_$*{])(?P<id>[A-Za-z0-9\-.]{1,64})(?![\w\-.])")


@cache
def _resource_types() -> frozenset[str]:
    from fhir_gateway.definitions import resource_types

    return frozenset(resource_types())


def _fhir_id(m: re.Match[str]) -> str:
    """``Patient/123`` → ``Patient/{id}``: a path segment after a resource type is an id (maybe an MRN)."""
    return f"{m.group('t')}/{{id}}" if m.group("t") in _resource_types() else m.group(0)


def _mixed(s: str) -> bool:
    return any(c.isupper() for c in s) and any(c.islower() for c in s) and any(c.isdigit() for c in s)


def _b64url_secret(m: re.Match[str]) -> str:
    s = m.group(0)
    return "[secret]" if _mixed(s) else s


def _b64_secret(m: re.Match[str]) -> str:
    s = m.group(0)
    # Base64 secrets have few slashes; file paths (tracebacks) have many short segments.
    if _mixed(s) and s.count("/") * 12 <= len(s):
        return "[secret]"
    return s


def _key_value(m: re.Match[str]) -> str:
    value = m.group("v")
    quote = value[0] if value[:1] in ("'", '"') else ""
    if value[:1] in ("[", "{"):
        return f"{m.group('k')}{m.group('name')}{m.group('k')}{m.group('sep')}{REDACTED}"
    return f"{m.group('k')}{m.group('name')}{m.group('k')}{m.group('sep')}{quote}{REDACTED}{quote}"


def _header(m: re.Match[str]) -> str:
    return f"{m.group('k')}{m.group('q')}{REDACTED}"


# (pattern, replacement, needle): a rule runs only if its needle (or one of them) occurs in the
# lower-cased text, "0" meaning "any digit"; most messages skip most rules.
_Rule = tuple[re.Pattern[str], str | Callable[[re.Match[str]], str], str | tuple[str, ...]]
_RULES: tuple[_Rule, ...] = (
    (_SQL_PARAMETERS, "[parameters: [redacted]]", "[parameters: "),
    (_PYDANTIC_INPUT, "input_value=[redacted]", "input_value="),
    (_URL_PASSWORD, r"\g<p>[redacted]@", "://"),
    (_QUERY, "?[query redacted]", "?"),
    (_HEADER, _header, ("authorization", "cookie", "api-key")),
    (_SCHEME_CRED, r"\g<s> [redacted]", ("bearer", "basic", "digest", "negotiate")),
    (_KEY_VALUE, _key_value, ("=", ":")),
    (_JWT, "[jwt]", "eyj"),
    (_EMAIL, "[email]", "@"),
    (_SSN, "[ssn]", "0"),
    (_DATE_ISO, "[date]", "0"),
    (_DATE_US, "[date]", "0"),
    (_PHONE, "[phone]", "0"),
    (_DATE_COMPACT, "[date]", "0"),
    (_HEX_SECRET, "[hex]", "0"),
    (_B64URL_SECRET, _b64url_secret, "0"),
    (_B64_SECRET, _b64_secret, "0"),
    (_LONG_NUMBER, "[number]", "0"),
    (_IPV4, "[ip]", "0"),
    (_FHIR_ID, _fhir_id, "/"),
)
_HAS_DIGIT = re.compile(r"\d")


def _applies(needle: str | tuple[str, ...], lowered: str, digits: bool) -> bool:
    if needle == "0":
        return digits
    if isinstance(needle, tuple):
        return any(n in lowered for n in needle)
    return needle in lowered


def scrub_text(text: str, *, bodies: bool = True) -> str:
    """Mask credentials, query strings and PHI-shaped values in free text (idempotent).

    With ``bodies`` (the default, for messages) text that contains a serialised FHIR resource
    is replaced as a whole; tracebacks pass ``bodies=False`` because their source lines are code.
    """
    if not text:
        return text
    if bodies and _FHIR_BODY.search(text):
        return "[FHIR resource body redacted]"
    lowered, digits = text.lower(), _HAS_DIGIT.search(text) is not None
    for pattern, replacement, needle in _RULES:
        if _applies(needle, lowered, digits):
            changed = pattern.sub(replacement, text)
            if changed != text:
                text, lowered = changed, changed.lower()
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + f" …[{len(text) - MAX_MESSAGE_CHARS} characters cut]"
    return text


# ------------------------------------------------------------------ arguments (before formatting)


class _Placeholder(str):
    """A placeholder that looks the same through ``%s`` and ``%r``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)



def _scrub_arg(value: Any) -> Any:
    """Structural placeholders for arguments that are bodies; everything else is formatted, then scrubbed."""
    if isinstance(value, bytes | bytearray | memoryview):
        return _Placeholder(f"<{len(value)} bytes redacted>")
    if isinstance(value, Mapping) and "resourceType" in value:
        return _Placeholder(f"<FHIR {str(value.get('resourceType'))[:40]} redacted>")
    name = type(value).__name__
    if name == "_repr_params":  # sqlalchemy.sql.util: bound parameters logged by echo=True
        return _Placeholder("[parameters redacted]")
    if name == "_repr_row":  # sqlalchemy.sql.util: result rows logged by echo="debug"
        return _Placeholder("[row redacted]")
    return value


def _scrub_args(args: Any) -> Any:
    if isinstance(args, tuple):
        return tuple(_scrub_arg(a) for a in args)
    if isinstance(args, Mapping):
        return {k: _scrub_arg(v) for k, v in args.items()}
    return _scrub_arg(args)


# ------------------------------------------------------------------ our request lines (whitelist)

REQUEST_FIELDS = ("request_id", "method", "route", "fhir", "status", "duration_ms")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REQUEST_ID = re.compile(r"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ROUTE = re.compile(r"[A-Za-z0-9_/<>:.$*{}-]{1,200}")


def safe_request_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The whitelisted fields of a request log record, each forced into its expected shape."""
    rid = str(fields.get("request_id") or "")
    method = str(fields.get("method") or "")
    route = str(fields.get("route") or "")
    fhir = str(fields.get("fhir") or "")
    status = fields.get("status")
    duration = fields.get("duration_ms")
    return {
        "request_id": rid if _REQUEST_ID.fullmatch(rid) else "-",
        "method": method if method in METHODS else "OTHER",
        "route": route if _ROUTE.fullmatch(route) else "-",
        "fhir": fhir if _ROUTE.fullmatch(fhir) else "-",
        "status": status if isinstance(status, int) and 100 <= status <= 599 else 0,
        "duration_ms": round(float(duration), 1) if isinstance(duration, int | float) else -1.0,
    }


class RequestLine(str):
    """A request log message built by :func:`render_request` from whitelisted fields: not scrubbed again."""

    __slots__ = ()


def render_request(fields: Mapping[str, Any]) -> RequestLine:
    return render_safe_request(safe_request_fields(fields))


def render_safe_request(safe: Mapping[str, Any]) -> RequestLine:
    """The line of fields that already went through :func:`safe_request_fields`."""
    return RequestLine(f"request request_id={safe['request_id']} method={safe['method']} route={safe['route']} "
                       f"fhir={safe['fhir']} status={safe['status']} duration_ms={safe['duration_ms']}")


# ------------------------------------------------------------------ exceptions


def _exception_name(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def format_exception(exc: BaseException, keep_messages: bool) -> str:
    """A traceback with frames (code locations, source lines) and scrubbed, or redacted, messages."""
    cause = "\nThe above exception was the direct cause of the following exception:\n\n"
    context = "\nDuring handling of the above exception, another exception occurred:\n\n"
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, cause
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, context
        else:
            current = None
    parts: list[str] = []
    for index in range(len(chain) - 1, -1, -1):
        item = chain[index][0]
        if item.__traceback__ is not None:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.format_tb(item.__traceback__))
        message = scrub_text(str(item)) if keep_messages else "[message redacted]"
        parts.append(f"{_exception_name(item)}: {message}" if message else _exception_name(item))
        if index:
            parts.append("\n" + chain[index][1])
    return scrub_text("".join(parts).rstrip("\n"), bodies=False)


# ------------------------------------------------------------------ the record


def _template_request_path(message: str) -> str:
    """Inside a request, the raw path (``Exception on /app/visit/123 [GET]``) becomes its route template.

    Ids in our own non-FHIR routes cannot be recognised by a pattern, but the router knows them.
    """
    try:
        from flask import has_request_context, request
    except ImportError:  # pragma: no cover - Flask is a dependency
        return message
    if not has_request_context():
        return message
    path = request.path
    if len(path) > 1 and path in message:
        rule = request.url_rule.rule if request.url_rule is not None else "[unrouted path]"
        message = message.replace(path, rule)
    return message



def scrub_record(record: logging.LogRecord, policy: ScrubPolicy | None = None) -> logging.LogRecord:
    """Make ``record`` safe in place (idempotent) and return it."""
    if type(record.msg) is RequestLine and not record.args:  # rendered from the whitelist: the hot path
        setattr(record, SCRUBBED_ATTR, True)
        return record
    fields = getattr(record, REQUEST_ATTR, None)
    if isinstance(fields, Mapping):
        # Whitelisted request line: re-rendered from checked fields, even if scrubbed before the
        # ``extra`` fields were attached (Logger.makeRecord adds them after the record factory).
        safe = safe_request_fields(fields)
        setattr(record, REQUEST_ATTR, safe)
        record.msg, record.args = render_request(safe), None
        record.exc_info = record.exc_text = record.stack_info = None
        setattr(record, SCRUBBED_ATTR, True)
        return record
    # Skip only if this very message was scrubbed: logging.makeLogRecord runs the record factory
    # before it fills in msg/args, so a plain "already scrubbed" flag would let those through raw.
    if getattr(record, SCRUBBED_ATTR, None) is record.msg and not record.args:
        return record
    policy = policy or POLICY
    try:
        args = _scrub_args(record.args) if record.args else None
        message = str(record.msg) % args if args else str(record.msg)
    except Exception:  # a malformed call must not leak its arguments via logging's error report
        message = f"[unformattable log message] {record.msg!s}"
    record.msg, record.args = scrub_text(_template_request_path(message)), None
    if record.exc_info and record.exc_info[1] is not None:
        record.exc_text = format_exception(record.exc_info[1], policy.keep_exception_messages)
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = scrub_text(record.exc_text, bodies=False)
    if record.stack_info:
        record.stack_info = scrub_text(record.stack_info, bodies=False)
    setattr(record, SCRUBBED_ATTR, record.msg)
    return record


class PhiScrubFilter(logging.Filter):
    """Scrubs each record in place and lets it through. Put it on every handler."""

    def __init__(self, policy: ScrubPolicy | None = None) -> None:
        super().__init__()
        self.policy = policy

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record, self.policy)
        return True


class PhiSafeFormatter(logging.Formatter):
    """A formatter that scrubs before formatting: safe even on a handler that lacks the filter."""

    DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, policy: ScrubPolicy | None = None) -> None:
        super().__init__(fmt or self.DEFAULT_FORMAT, datefmt)
        self.policy = policy

    def format(self, record: logging.LogRecord) -> str:
        scrub_record(record, self.policy)
        return super().format(record)
