"""Distil the FHIR R4 (4.0.1) StructureDefinitions into the table the structure validator walks.

The product must not read ``../shared`` at run time, so this script writes
``fhir_gateway/validation/r4_structure.json.gz`` from the spec's definition
bundles (CC0, ``hl7.fhir.r4.core`` 4.0.1):

* ``primitives``: every primitive type -> ``[json_kind, regex]`` where ``json_kind``
  is the JSON type the value must have (``boolean``, ``integer``, ``decimal``,
  ``string``) and ``regex`` the spec's ``value`` regex (``null`` where the spec has none);
* ``types``: every resource, complex datatype and backbone element (named by its
  path, e.g. ``Patient.contact``) -> its elements, each
  ``json name -> [type, min, many, choice]``: ``type`` is a primitive, a complex type,
  a backbone path or ``Resource``; ``many`` is true when max > 1; ``choice`` is the
  ``[x]`` base name for choice elements (one entry per allowed type, named as in JSON,
  ``valueQuantity``) and ``""`` otherwise.

Run it again only when the source data changes:

    .venv/bin/python tools/build_validation_data.py ../shared/data

``--differences`` prints instead the R4/R4B difference table of
``docs/r4-r4b-differences.md``, computed from the installed fhir.resources models:

    .venv/bin/python tools/build_validation_data.py --differences
"""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "fhir_gateway" / "validation" / "r4_structure.json.gz"
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
# Constraint profiles R4 elements use by profile on a base type code
PROFILED_TYPES = {
    "http://hl7.org/fhir/StructureDefinition/SimpleQuantity": "SimpleQuantity",
    "http://hl7.org/fhir/StructureDefinition/MoneyQuantity": "MoneyQuantity",
}
JSON_KIND = {"boolean": "boolean", "integer": "integer", "positiveInt": "integer",
             "unsignedInt": "integer", "decimal": "decimal"}
# Resource.id is declared as System.String in the snapshots; the spec text says it is an ``id``.
RESOURCE_ID_REGEX = r"[A-Za-z0-9\-\.]{1,64}"


def _entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", [])]


def _ext(obj: dict[str, Any], url: str) -> Any:
    for ext in obj.get("extension", []):
        if ext.get("url") == url:
            return ext.get("valueUrl", ext.get("valueString"))
    return None


def _type_code(t: dict[str, Any]) -> str:
    code: str = t["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        # Element.id, Extension.url, the primitives' own value: the FHIR type is in an extension
        return str(_ext(t, FHIR_TYPE_EXT) or "string")
    for profile in t.get("profile", []):
        if profile in PROFILED_TYPES:
            return PROFILED_TYPES[profile]
    return code


def _elements(sd: dict[str, Any], types: dict[str, dict[str, list[Any]]]) -> None:
    """Add the elements of one StructureDefinition snapshot, one table entry per owner path."""
    root = sd["snapshot"]["element"][0]["path"]
    name = sd["id"] if sd.get("derivation") == "constraint" else sd["type"]
    types.setdefault(name, {})
    for el in sd["snapshot"]["element"][1:]:
        path: str = el["path"]
        if el.get("max") == "0":
            continue
        owner_path, elem = path.rsplit(".", 1)
        owner = name if owner_path == root else name + owner_path[len(root):]
        many = el.get("max") != "1"
        mn = int(el.get("min", 0))
        if "contentReference" in el:
            ref = el["contentReference"].lstrip("#")
            target = name + ref[len(root):] if ref.startswith(root) else ref
            codes = [target]
        else:
            codes = [_type_code(t) for t in el.get("type", [])]
        if not elem.endswith("[x]") and codes and codes[0] in ("BackboneElement", "Element") and len(codes) == 1:
            codes = [owner + "." + elem]
            types.setdefault(codes[0], {})
        if el.get("base", {}).get("path") == "Resource.id":
            codes = ["id"]
        entries = types.setdefault(owner, {})
        if elem.endswith("[x]"):
            base = elem[:-3]
            for code in codes:
                json_code = "Quantity" if code in PROFILED_TYPES.values() else code
                entries[base + json_code[0].upper() + json_code[1:]] = [code, mn, many, base]
        else:
            entries[elem] = [codes[0], mn, many, ""]


def build(data: Path) -> dict[str, Any]:
    with gzip.open(data / "fhir-r4/definitions/profiles-resources.json.gz", "rt", encoding="utf-8") as fh:
        resources = _entries(json.load(fh))
    datatypes = _entries(json.loads((data / "fhir-r4/definitions/profiles-types.json").read_text()))
    primitives: dict[str, list[Any]] = {}
    types: dict[str, dict[str, list[Any]]] = {}
    resource_names: list[str] = []
    for sd in datatypes:
        if sd["resourceType"] != "StructureDefinition":
            continue
        if sd["kind"] == "primitive-type":
            value = next(el for el in sd["snapshot"]["element"] if el["path"] == sd["type"] + ".value")
            regex = _ext(value["type"][0], REGEX_EXT)
            primitives[sd["type"]] = [JSON_KIND.get(sd["type"], "string"), regex]
        elif sd["id"] != "BackboneElement":
            _elements(sd, types)
    primitives["id"][1] = RESOURCE_ID_REGEX
    for sd in resources:
        if sd["resourceType"] != "StructureDefinition" or sd.get("kind") != "resource":
            continue
        if sd.get("derivation") != "specialization" or sd.get("abstract"):
            continue
        resource_names.append(sd["type"])
        _elements(sd, types)
    return {"fhirVersion": "4.0.1", "primitives": primitives, "resources": sorted(resource_names),
            "types": types}


def print_differences() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from fhir_gateway.validation.r4b_models import differences

    print("| R4 type or backbone | element | kind | R4B stricter | detail |")
    print("|---|---|---|---|---|")
    for d in differences():
        print(f"| {d.owner} | {d.element or '(whole type)'} | {d.kind} | {'yes' if d.stricter else 'no'} "
              f"| {d.detail} |")


def main(argv: list[str]) -> int:
    if "--differences" in argv:
        print_differences()
        return 0
    data = Path(argv[1] if len(argv) > 1 else "../shared/data").resolve()
    table = build(data)
    raw = json.dumps(table, separators=(",", ":"), sort_keys=True).encode()
    # mtime=0 keeps the file reproducible
    with OUT.open("wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    n_elements = sum(len(v) for v in table["types"].values())
    print(f"{len(table['resources'])} resources, {len(table['types'])} types, {n_elements} elements "
          f"({len(raw)} bytes) written to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
