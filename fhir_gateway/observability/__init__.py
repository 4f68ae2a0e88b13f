"""Operating without leaking PHI: log scrubbing, per-request log lines, logging set-up.

- :mod:`.log_filter`: the scrubber (a :class:`logging.Filter`, a formatter and a record factory)
  that removes query strings, bodies, credentials and PHI-shaped values from every log record.
- :mod:`.request_log`: one whitelisted line per HTTP request (request id, method, route
  template, status, duration), never the raw path, query or body.
- :mod:`.setup`: ``configure_logging(settings)``, called once by the app factory.
- :mod:`.hooks`: one before/after/teardown hook per app, running the request log's and the security
  headers' steps (instead of a Flask hook each).
"""
from __future__ import annotations

from fhir_gateway.observability.log_filter import PhiSafeFormatter, PhiScrubFilter, scrub_text
from fhir_gateway.observability.setup import configure_logging, unconfigure_logging

__all__ = ["PhiSafeFormatter", "PhiScrubFilter", "configure_logging", "scrub_text", "unconfigure_logging"]
