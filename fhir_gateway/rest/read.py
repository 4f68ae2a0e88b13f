"""read and vread: https://hl7.org/fhir/R4/http.html#read, #vread."""
from __future__ import annotations

from fhir_gateway.errors import Forbidden, Gone, NotFound
from fhir_gateway.rest.context import Interaction, parse_version
from fhir_gateway.rest.headers import version_headers
from fhir_gateway.rest.messages import FhirRequest, FhirResponse
from fhir_gateway.rest.shaping import shape_resource


def read(it: Interaction, req: FhirRequest, rtype: str, fid: str) -> FhirResponse:
    stored = it.current(rtype, fid)
    assert stored.resource is not None
    if not it.visible(stored.resource):
        raise Forbidden(f"access to {rtype}/{fid} is not permitted")
    headers = version_headers(stored)
    inm = req.header("if-none-match")
    if inm and inm.strip() in (stored.etag, f'"{stored.version}"'):
        return FhirResponse(304, None, headers)
    return FhirResponse(200, shape_resource(it.shape(stored.resource), req), headers)


def vread(it: Interaction, req: FhirRequest, rtype: str, fid: str, vid: str) -> FhirResponse:
    version = parse_version(vid)
    stored = it.services.repository.vread(it.conn, rtype, fid, version)
    if stored is None:
        raise NotFound(f"{rtype}/{fid} has no version {version}", expression=[rtype])
    if stored.deleted or stored.resource is None:
        raise Gone(f"version {version} of {rtype}/{fid} is a deletion", expression=[rtype])
    if not it.visible(stored.resource):
        raise Forbidden(f"access to {rtype}/{fid} is not permitted")
    return FhirResponse(200, shape_resource(it.shape(stored.resource), req), version_headers(stored))
