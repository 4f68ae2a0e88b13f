"""Patient/$everything: https://hl7.org/fhir/R4/patient-operation-everything.html.

Membership comes from the Patient CompartmentDefinition (data), not a hand
list: every type with linking parameters, plus the resources they reference
(practitioners, organizations, medications, locations). Supports ``_since``,
``_type`` and ``_count`` with ``next`` links.
"""
from __future__ import annotations

from fhir_gateway import definitions
from fhir_gateway.errors import Forbidden, InvalidRequest
from fhir_gateway.operations.registry import Operation, register
from fhir_gateway.rest.bundles import bundle, page_url
from fhir_gateway.rest.context import Interaction
from fhir_gateway.rest.messages import FhirRequest, FhirResponse
from fhir_gateway.search.values import DateFormatError, date_range
from fhir_gateway.storage.compartments import compartment_pks, referenced_pks


def everything(it: Interaction, req: FhirRequest, rtype: str | None, fid: str | None) -> FhirResponse:
    assert rtype == "Patient" and fid is not None
    patient = it.current("Patient", fid)
    if patient.resource is None or not it.visible(patient.resource):
        raise Forbidden(f"access to Patient/{fid} is not permitted")
    since = None
    raw_since = req.param("_since")
    if raw_since:
        try:
            since = date_range(raw_since)[0]
        except DateFormatError:
            raise InvalidRequest("_since must be a FHIR instant", expression=["_since"]) from None
    types = None
    raw_types = req.param("_type")
    if raw_types:
        types = [t.strip() for t in raw_types.split(",") if t.strip()]
        for t in types:
            it.require_type(t)
    settings = it.services.settings
    try:
        count = min(int(req.param("_count") or settings.max_page_size), settings.max_page_size)
        offset = max(0, int(req.param("_offset") or 0))
    except ValueError:
        raise InvalidRequest("_count and _offset must be integers", expression=["_count"]) from None
    links = definitions.patient_compartment()
    members = compartment_pks(it.conn, "Patient", fid, links, since=since, types=types)
    extra = referenced_pks(it.conn, members, exclude_types=("Patient",))
    if types is not None:
        extra_rows = it.services.repository.load(it.conn, extra)
        extra = [s.pk for s in extra_rows if s.rtype in types]
    ordered: list[int] = []
    if (types is None or "Patient" in types) and (since is None or patient.last_updated >= since):
        ordered.append(patient.pk)
    seen = set(ordered)
    for pk in [*members, *extra]:
        if pk not in seen:
            seen.add(pk)
            ordered.append(pk)
    page = ordered[offset:offset + count]
    loaded = [s for s in it.services.repository.load(it.conn, page) if s.resource and it.visible(s.resource)]
    base = it.base()
    entries = [{"fullUrl": f"{base}/{s.rtype}/{s.fid}", "resource": it.shape(s.resource), "search": {"mode": "match"}}
               for s in loaded if s.resource is not None]
    keep = [(k, v) for k, v in req.params if k in ("_since", "_type")]
    path = f"Patient/{fid}/$everything"
    link = [{"relation": "self", "url": page_url(base, path, [*keep, ("_count", str(count)),
                                                              ("_offset", str(offset))])}]
    if offset + count < len(ordered):
        link.append({"relation": "next", "url": page_url(base, path, [*keep, ("_count", str(count)),
                                                                      ("_offset", str(offset + count))])})
    return FhirResponse(200, bundle("searchset", entries, total=len(ordered), links=link))


register(Operation("$everything", "http://hl7.org/fhir/OperationDefinition/Patient-everything", system=False,
                   type_level=False, instance=True, types=("Patient",), affects_state=False, handler=everything,
                   public=True))
