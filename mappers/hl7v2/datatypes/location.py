"""PL / DLD / HD → Location resources (IG datatype map PL[Location]).

The IG builds one Location per valued PL component, linked by ``partOf`` from the most
granular (bed) to the least (facility). The encounter references the point of care
(PL.1) when valued, else the most granular location present.
"""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import converter
from mappers.hl7v2.datatypes.identifiers import hd_identifier
from mappers.hl7v2.parser.message import Value

_PHYS = "http://terminology.hl7.org/CodeSystem/location-physical-type"
# (PL component, physical type), most granular first; each is partOf the next valued one
_LEVELS = ((3, "bd"), (2, "ro"), (1, "lvl"), (8, "lvl"), (7, "bu"), (4, "si"))


@converter("PL[Location]", "PL[location]")
def pl(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    """Add the chain of Locations to the context; return the one to reference."""
    made: list[tuple[int, dict[str, Any]]] = []
    for comp, phys in _LEVELS:
        part = v.part(comp)
        name = part.get(1) or part.get(2)
        if not name:
            continue
        loc: dict[str, Any] = {"resourceType": "Location", "name": name, "mode": "instance",
                               "physicalType": {"coding": [{"system": _PHYS, "code": phys}]}}
        ident = hd_identifier(part, ctx, None)
        if ident and ident["value"] != name:
            loc["identifier"] = [ident]
        if v.get(9):
            loc["description"] = v.get(9)
        made.append((comp, loc))
    if not made:
        return None
    parent: dict[str, str] | None = None
    for _, loc in reversed(made):
        if parent:
            loc["partOf"] = parent
        parent = {"reference": ctx.add(loc, _loc_key(loc))}
    target = next((loc for comp, loc in made if comp == 1), made[0][1])
    return target


def _loc_key(loc: dict[str, Any]) -> str:
    part_of = loc.get("partOf", {}).get("reference", "")
    return f"Location|{loc['name']}|{loc['physicalType']['coding'][0]['code']}|{part_of}"


@converter("DLD[Location-Discharge]", "HD[Location]", "XON[Location]")
def simple_location(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    name = v.get(1)
    if not name:
        return None
    return {"resourceType": "Location", "name": name}
