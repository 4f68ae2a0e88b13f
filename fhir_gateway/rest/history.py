"""history at instance, type and system level: https://hl7.org/fhir/R4/http.html#history.

``_since``, ``_at`` and ``_count`` are honoured; next/prev links carry an
``_offset`` and a ``_snapshot`` (the highest version row seen at page one) so
pages stay stable while others write.
"""
from __future__ import annotations

from dataclasses import replace

from fhir_gateway.errors import InvalidRequest, NotFound
from fhir_gateway.rest.bundles import bundle, history_entry, page_url
from fhir_gateway.rest.context import Interaction
from fhir_gateway.rest.messages import FhirRequest, FhirResponse
from fhir_gateway.search.values import DateFormatError, date_range
from fhir_gateway.storage.tables import resource_version

HISTORY_PARAMS = ("_since", "_at", "_count", "_offset", "_snapshot", "_format", "_pretty", "_list", "_sort")


def _int_param(req: FhirRequest, name: str, default: int | None, minimum: int = 0) -> int | None:
    raw = req.param(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be an integer", expression=[name]) from None
    if value < minimum:
        raise InvalidRequest(f"{name} must be at least {minimum}", expression=[name])
    return value


def _instant(req: FhirRequest, name: str) -> tuple[int, int] | None:
    raw = req.param(name)
    if raw is None:
        return None
    try:
        return date_range(raw)
    except DateFormatError:
        raise InvalidRequest(f"{name} must be a FHIR instant or dateTime", expression=[name]) from None


def history(it: Interaction, req: FhirRequest, rtype: str | None = None, fid: str | None = None) -> FhirResponse:
    for name, _ in req.params:
        if name not in HISTORY_PARAMS:
            raise InvalidRequest(f"unknown history parameter '{name[:64]}'", expression=[name[:64]],
                                 code="not-supported")
    if rtype is not None and fid is not None and it.services.repository.read(it.conn, rtype, fid) is None:
        raise NotFound(f"{rtype}/{fid} is not known", expression=[rtype])
    settings = it.services.settings
    count = min(_int_param(req, "_count", settings.default_page_size) or 0, settings.max_page_size)
    offset = _int_param(req, "_offset", 0) or 0
    snapshot = _int_param(req, "_snapshot", None)
    since = _instant(req, "_since")
    at = _instant(req, "_at")
    page, total, snapshot = it.services.repository.history(
        it.conn, rtype=rtype, fid=fid, since=since[0] if since else None, at=at, count=count,
        offset=offset, snapshot=snapshot, scope=it.scope(resource_version))
    base = it.base()
    path = "/".join(p for p in (rtype, fid, "_history") if p)
    fixed = [(k, v) for k, v in req.params if k in ("_since", "_at")]
    links = [{"relation": "self", "url": page_url(base, path, [*fixed, ("_count", str(count)),
                                                               ("_offset", str(offset)),
                                                               ("_snapshot", str(snapshot))])}]
    if count and offset + count < total:
        links.append({"relation": "next", "url": page_url(base, path, [
            *fixed, ("_count", str(count)), ("_offset", str(offset + count)), ("_snapshot", str(snapshot))])})
    if offset > 0:
        links.append({"relation": "previous", "url": page_url(base, path, [
            *fixed, ("_count", str(count)), ("_offset", str(max(0, offset - count))), ("_snapshot", str(snapshot))])})
    entries = [history_entry(base, s if s.resource is None else replace(s, resource=it.shape(s.resource)))
               for s in page if s.resource is None or it.visible(s.resource)]
    return FhirResponse(200, bundle("history", entries, total=total, links=links))
