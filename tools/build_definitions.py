"""Copy the FHIR R4 and US Core definitions the server needs into the package.

The product must not read ``../shared`` at run time, so this script distils the
spec's definition bundles (CC0) into small files under
``fhir_gateway/definitions/``. Run it again only when the source data changes:

    python tools/build_definitions.py ../shared/data
"""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

KEEP_SP_FIELDS = (
    "url", "code", "base", "type", "expression", "target", "component",
    "modifier", "comparator", "multipleOr", "multipleAnd", "chain", "description",
)
OUT = Path(__file__).resolve().parent.parent / "fhir_gateway" / "definitions"


def _entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", [])]


def _trim(sp: dict[str, Any], origin: str) -> dict[str, Any]:
    out = {k: sp[k] for k in KEEP_SP_FIELDS if k in sp}
    if "description" in out:
        out["description"] = out["description"][:300]
    out["origin"] = origin
    return out


def build_search_parameters(data: Path) -> list[dict[str, Any]]:
    r4 = _entries(json.loads((data / "fhir-r4/definitions/search-parameters.json").read_text()))
    uscore = _entries(json.loads((data / "us-core/us-core-6.1.0-search-parameters.json").read_text()))
    params = [_trim(sp, "r4") for sp in r4]
    seen = {(b, sp["code"]) for sp in params for b in sp["base"]}
    for sp in uscore:
        bases = [b for b in sp["base"] if (b, sp["code"]) not in seen]
        if bases:
            trimmed = _trim(sp, "us-core-6.1.0")
            trimmed["base"] = bases
            params.append(trimmed)
            seen.update((b, sp["code"]) for b in bases)
    return params


def build_resource_types(data: Path) -> dict[str, Any]:
    with gzip.open(data / "fhir-r4/definitions/profiles-resources.json.gz", "rt", encoding="utf-8") as fh:
        bundle = json.load(fh)
    types: dict[str, Any] = {}
    for sd in _entries(bundle):
        if sd["resourceType"] != "StructureDefinition" or sd.get("kind") != "resource":
            continue
        if sd.get("derivation") != "specialization" or sd.get("abstract"):
            continue
        name = sd["type"]
        summary: list[str] = []
        required: list[str] = []
        choices: dict[str, list[str]] = {}
        for el in sd["snapshot"]["element"]:
            path = el["path"]
            parts = path.split(".")
            if len(parts) != 2:
                continue
            elem = parts[1]
            if elem.endswith("[x]"):
                base = elem[:-3]
                choices[base] = [t["code"] for t in el.get("type", [])]
                elem = base
            if el.get("isSummary"):
                summary.append(elem)
            if el.get("min", 0) >= 1:
                required.append(elem)
        types[name] = {"summary": summary, "required": required, "choices": choices}
    return types


def main(argv: list[str]) -> int:
    data = Path(argv[1] if len(argv) > 1 else "../shared/data").resolve()
    OUT.mkdir(parents=True, exist_ok=True)
    params = build_search_parameters(data)
    payload = json.dumps(params, separators=(",", ":"), sort_keys=True).encode()
    with open(OUT / "search-parameters.json.gz", "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as fh:  # mtime 0: reproducible
        fh.write(payload)
    (OUT / "resource-types.json").write_text(json.dumps(build_resource_types(data), indent=0, sort_keys=True))
    comp = json.loads((data / "fhir-r4/definitions/compartments/CompartmentDefinition-patient.json").read_text())
    (OUT / "compartment-patient.json").write_text(json.dumps(
        {r["code"]: r.get("param", []) for r in comp["resource"]}, indent=0, sort_keys=True))
    uscore = json.loads((data / "us-core/6.1.0/CapabilityStatement-us-core-server.json").read_text())
    profiles = {r["type"]: r.get("supportedProfile", []) for r in uscore["rest"][0]["resource"]}
    (OUT / "us-core-profiles.json").write_text(json.dumps(
        {"instantiates": uscore["url"], "profiles": profiles}, indent=0, sort_keys=True))
    print(f"{len(params)} search parameters written to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
