"""AWS Signature Version 4 for the Chime SDK calls: botocore's signer when installed, else a minimal one.

botocore (the AWS SDK core, well kept) is preferred; the fallback implements the documented algorithm
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html) for JSON
POST/DELETE requests without query strings, which is all the Chime SDK Meetings calls need.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sign_minimal(method: str, url: str, body: bytes, creds: Credentials, region: str, service: str,
                 now: datetime | None = None) -> dict[str, str]:
    """The headers (Authorization, X-Amz-Date, …) that sign this request."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date, day = moment.strftime("%Y%m%dT%H%M%SZ"), moment.strftime("%Y%m%d")
    parts = urlsplit(url)
    payload_hash = hashlib.sha256(body).hexdigest()
    headers = {"host": parts.netloc, "x-amz-date": amz_date}
    if creds.token:
        headers["x-amz-security-token"] = creds.token
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, quote(parts.path or "/", safe="/-_.~"), parts.query,
                           "".join(f"{k}:{headers[k].strip()}\n" for k in sorted(headers)), signed, payload_hash])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{creds.secret_key}".encode(), day), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out = {"X-Amz-Date": amz_date, "Authorization": f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
                                                    f"SignedHeaders={signed}, Signature={signature}"}
    if creds.token:
        out["X-Amz-Security-Token"] = creds.token
    return out


def sign_botocore(method: str, url: str, body: bytes, creds: Credentials, region: str, service: str
                  ) -> dict[str, str]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    request = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(BotoCredentials(creds.access_key, creds.secret_key, creds.token), service, region).add_auth(request)
    return {k: v for k, v in request.headers.items() if k.lower() in (
        "authorization", "x-amz-date", "x-amz-security-token")}


def have_botocore() -> bool:
    try:
        import botocore.auth  # noqa: F401
    except ImportError:
        return False
    return True


def sign(method: str, url: str, body: bytes, creds: Credentials, region: str, service: str) -> dict[str, str]:
    if have_botocore():
        return sign_botocore(method, url, body, creds, region, service)
    return sign_minimal(method, url, body, creds, region, service)
