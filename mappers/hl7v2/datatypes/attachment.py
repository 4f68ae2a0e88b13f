"""ED / RP → Attachment (IG ED[Attachment], RP[Attachment]).

ED.2/.3 give the MIME type, ED.4 the encoding of ED.5: Base64 is kept, Hex is
decoded, anything else (A = ASCII text) is encoded, since Attachment.data is base64.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import converter
from mappers.hl7v2.parser.message import Value

_TYPES = {"TEXT": "text/plain", "AP": "application", "IM": "image", "AU": "audio", "MULTIPART": "multipart"}


@converter("ED[Attachment]")
def ed(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    raw = v.part(5).full_text if v.level == 0 else v.get(5)
    if not raw:
        return None
    encoding = v.get(4).upper()
    if encoding in ("BASE64", "B64"):
        data = "".join(raw.split())
        try:
            base64.b64decode(data, validate=True)
        except binascii.Error:
            data = base64.b64encode(raw.encode()).decode("ascii")
    elif encoding == "HEX":
        try:
            data = base64.b64encode(bytes.fromhex(raw)).decode("ascii")
        except ValueError:
            data = base64.b64encode(raw.encode()).decode("ascii")
    else:
        data = base64.b64encode(raw.encode()).decode("ascii")
    out: dict[str, Any] = {"data": data}
    major, minor = v.get(2), v.get(3)
    if major or minor:
        base = _TYPES.get(major.upper(), major.lower() or "application")
        out["contentType"] = base if "/" in base else f"{base}/{(minor or 'octet-stream').lower()}"
    return out


@converter("RP[Attachment]")
def rp(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    url = v.get(1)
    return {"url": url} if url else None
