"""Upstream errors, one class per way an EHR call can fail, each carrying what a caller needs.

::

    UpstreamError                    anything that went wrong talking to the EHR
    ├── UpstreamConfigError          the connection or profile cannot work (bad key, missing secret)
    ├── UpstreamAuthError            token acquisition refused, or 401 after one refresh
    ├── UpstreamHttpError            an HTTP error with an OperationOutcome (or none)
    │   ├── UpstreamNotFound         404
    │   └── UpstreamRateLimited      429/503 after every retry
    ├── UpstreamBadResponse          not FHIR JSON: an HTML error page, malformed JSON, wrong type
    ├── PagingSessionExpired         the vendor's paging session ended (Epic 4113)
    ├── UpstreamUnavailable          circuit open or connection failure / timeout after retries
    └── WriteNotConfirmed            a create's outcome is unknown and the read-back found nothing

Messages never include resource content or query strings (no PHI); only the method, the
resource type, the status and vendor codes.
"""
from __future__ import annotations

from mappers.vendor.searchset import VendorIssue


class UpstreamError(Exception):
    code = "upstream-error"
    retryable = False

    def __init__(self, message: str, *, status: int | None = None,
                 issues: list[VendorIssue] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.issues = issues or []

    @property
    def vendor_codes(self) -> list[str]:
        return [i.vendor_code for i in self.issues if i.vendor_code]


class UpstreamConfigError(UpstreamError):
    code = "upstream-config"


class UpstreamAuthError(UpstreamError):
    code = "upstream-auth"


class UpstreamHttpError(UpstreamError):
    code = "upstream-http"


class UpstreamNotFound(UpstreamHttpError):
    code = "upstream-not-found"


class UpstreamRateLimited(UpstreamHttpError):
    code = "upstream-rate-limited"
    retryable = True


class UpstreamBadResponse(UpstreamError):
    code = "upstream-bad-response"


class PagingSessionExpired(UpstreamError):
    code = "upstream-paging-expired"


class UpstreamUnavailable(UpstreamError):
    code = "upstream-unavailable"
    retryable = True


class WriteNotConfirmed(UpstreamError):
    code = "upstream-write-unconfirmed"
