"""``configure_logging(settings)``: install the PHI scrubber so that no log record escapes it.

A filter on the root *logger* would only see records logged to the root logger itself
(records from ``werkzeug``, ``authlib``… propagate to the root's *handlers*, not through
its filters), so the scrubber is installed in three places:

1. a **log record factory** (:func:`logging.setLogRecordFactory`): every record created in the
   process is scrubbed at birth, whichever logger made it and whichever handler gets it —
   including loggers that do not propagate (granian's) and handlers added later
   (an error tracker, pytest's capture);
2. a :class:`PhiScrubFilter` on every handler of the root logger and of non-propagating
   loggers, for records made without the factory (``logging.makeLogRecord``);
3. a :class:`PhiSafeFormatter` on the root's stream handlers.

Authlib logs issued tokens at DEBUG (``Issue token {...} to <client>``), so its loggers are
held at INFO or above whatever the root level is; the scrubber still masks what they log.

Calling it again (each ``create_app`` does) reconfigures without stacking handlers.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import IO, Any

from fhir_gateway.observability.log_filter import POLICY, PhiSafeFormatter, PhiScrubFilter, scrub_record

FORCED_QUIET = ("authlib",)  # loggers that log secrets at DEBUG: never below INFO
_OUR_HANDLER = "_telehub_handler"
_OUR_FACTORY = "_telehub_factory"


def _setting(settings: Any, name: str, default: Any) -> Any:
    value = getattr(settings, name, None)
    if value is None:
        value = (getattr(settings, "extra", None) or {}).get(name)
    return default if value is None else value


def _flag(value: Any) -> bool:
    """A boolean setting that may arrive as text from the environment (``"false"`` is False)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _level(value: Any) -> int:
    if isinstance(value, int):
        return value
    level = logging.getLevelName(str(value).upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {value!r}")
    return level


def _add_filter(handler: logging.Handler) -> None:
    if not any(isinstance(f, PhiScrubFilter) for f in handler.filters):
        handler.addFilter(PhiScrubFilter())


def _install_factory() -> None:
    current = logging.getLogRecordFactory()
    if getattr(current, _OUR_FACTORY, False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return scrub_record(current(*args, **kwargs))

    setattr(factory, _OUR_FACTORY, True)
    factory.previous = current  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def configure_logging(settings: Any, *, stream: IO[str] | None = None) -> None:
    """Install the scrubber on the root logger, its handlers and the record factory.

    Settings read (all optional): ``env`` (``prod`` drops exception messages from tracebacks),
    ``log_level`` (root level; left alone if unset and logging is already configured),
    ``log_exception_messages`` (overrides the ``env`` default).
    """
    env = str(_setting(settings, "env", "dev"))
    POLICY.keep_exception_messages = _flag(_setting(settings, "log_exception_messages", env != "prod"))
    root = logging.getLogger()
    level = _setting(settings, "log_level", None)
    if level is not None:
        root.setLevel(_level(level))
    elif not root.handlers:
        root.setLevel(logging.INFO)

    ours = [h for h in root.handlers if getattr(h, _OUR_HANDLER, False)]
    foreign = [h for h in root.handlers if h not in ours]
    for handler in ours:  # replaced on every call: the stream may have changed
        root.removeHandler(handler)
    if stream is not None or not foreign:  # don't duplicate a handler someone else configured
        ours_new = logging.StreamHandler(stream or sys.stderr)
        setattr(ours_new, _OUR_HANDLER, True)
        ours_new.setFormatter(PhiSafeFormatter())
        root.addHandler(ours_new)
    for handler in root.handlers:
        _add_filter(handler)
        formatter = handler.formatter
        if isinstance(handler, logging.StreamHandler) and (formatter is None or type(formatter) is logging.Formatter):
            handler.setFormatter(PhiSafeFormatter(formatter._fmt if formatter else None,
                                                  formatter.datefmt if formatter else None))

    for logger in _loggers():
        if not logger.propagate:
            for handler in logger.handlers:
                _add_filter(handler)
    quiet = max(logging.INFO, root.getEffectiveLevel())
    for name in FORCED_QUIET:
        logging.getLogger(name).setLevel(quiet)
    for logger in _loggers():
        if logger.name.startswith(tuple(f"{n}." for n in FORCED_QUIET)) and 0 < logger.level < quiet:
            logger.setLevel(logging.NOTSET)  # inherit the forced level
    _install_factory()


def unconfigure_logging() -> None:
    """Undo :func:`configure_logging` (tests): restore the record factory, remove our handler and filters."""
    factory = logging.getLogRecordFactory()
    previous: Callable[..., logging.LogRecord] | None = getattr(factory, "previous", None)
    if getattr(factory, _OUR_FACTORY, False) and previous is not None:
        logging.setLogRecordFactory(previous)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _OUR_HANDLER, False):
            root.removeHandler(handler)
    for logger in [root, *_loggers()]:
        for handler in logger.handlers:
            for f in [f for f in handler.filters if isinstance(f, PhiScrubFilter)]:
                handler.removeFilter(f)
    POLICY.keep_exception_messages = True


def _loggers() -> list[logging.Logger]:
    return [lg for lg in list(logging.root.manager.loggerDict.values()) if isinstance(lg, logging.Logger)]
