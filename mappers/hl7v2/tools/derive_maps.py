"""Derive the checked-in JSON maps from the HL7 v2-to-FHIR IG mapping tables.

Run from the repository root (needs ../shared, which the product never reads):

    .venv/bin/python -m mappers.hl7v2.tools.derive_maps

Inputs: ``shared/data/hl7v2/v2-to-fhir-ig/mappings/{segments,datatypes,codesystems}``
(HL7/v2-to-fhir @8c9b414b), the R4 StructureDefinitions (to resolve each FHIR path's
cardinality and type, and drop rows whose path is not R4), and hl7apy's segment tables.

Outputs in ``mappers/hl7v2/maps/``:
- ``ig_maps.json``: segment and datatype maps as rows {f, path, dt, vocab, assign, cond, leaf};
  rows the engine cannot express (nested resource paths, prose conditions) are left out
  and counted under ``skipped`` (the per-segment hooks in ``segments/`` cover those).
- ``vocab.json``: the IG concept maps (v2 code → FHIR code, display, system).
- ``structures.json``: trigger event → message structure (HL7 table 0354, from the IG).
- ``segments.json``: every segment id HL7 v2.3-v2.8.2 defines (from hl7apy).
"""

from __future__ import annotations

import csv
import gzip
import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
SHARED = ROOT.parent / "shared" / "data"
IG = SHARED / "hl7v2" / "v2-to-fhir-ig" / "mappings"
OUT = ROOT / "mappers" / "hl7v2" / "maps"

# --------------------------------------------------------------------------- R4 elements


def load_elements() -> dict[str, tuple[bool, list[str]]]:
    """Map every R4 element path (``Encounter.location.status``) to (is_list, type codes)."""
    defs = SHARED / "fhir-r4" / "definitions"
    bundles = [json.loads((defs / "profiles-types.json").read_text())]
    with gzip.open(defs / "profiles-resources.json.gz", "rt") as fh:
        bundles.append(json.load(fh))
    out: dict[str, tuple[bool, list[str]]] = {}
    for bundle in bundles:
        for entry in bundle["entry"]:
            sd = entry["resource"]
            if sd.get("resourceType") != "StructureDefinition" or sd.get("derivation") == "constraint":
                continue
            if sd.get("kind") == "resource":
                RESOURCES.add(sd["type"])
            for el in sd.get("snapshot", {}).get("element", []):
                types = [t.get("code", "") for t in el.get("type", [])]
                types = ["string" if t.startswith("http://hl7.org/fhirpath") else t for t in types]
                out[el["path"]] = (el.get("max") == "*", types)
    return out


ELEMENTS: dict[str, tuple[bool, list[str]]] = {}
RESOURCES: set[str] = set()  # resource type names (StructureDefinition kind = resource)


def resolve(root: str, steps: list[tuple[str, int | None, str | None]]) -> list[dict[str, Any]] | None:
    """Check a path against R4 and annotate each step with list-ness and type; None if not R4."""
    out: list[dict[str, Any]] = []
    base = root
    for name, idx, ref in steps:
        key = f"{base}.{name}"
        info = ELEMENTS.get(key)
        typ: str | None = None
        if info is None:  # choice element: valueQuantity → value[x] of Quantity
            for t in ("Quantity", "String", "CodeableConcept", "DateTime", "Period", "Range", "Ratio",
                      "Time", "Boolean", "Integer", "Reference", "Attachment", "SampledData", "Code",
                      "Date", "Address", "Coding", "Identifier", "Age", "Duration", "Annotation"):
                if name.endswith(t) and f"{base}.{name[: -len(t)]}[x]" in ELEMENTS:
                    choice = ELEMENTS[f"{base}.{name[: -len(t)]}[x]"]
                    typ = t[0].lower() + t[1:] if t in ("String", "DateTime", "Time", "Boolean", "Integer",
                                                          "Code", "Date") else t
                    info = (choice[0], [typ])
                    break
            if info is None:
                return None
        is_list, types = info
        if typ is None:
            typ = types[0] if types else "BackboneElement"
        step: dict[str, Any] = {"n": name, "list": is_list}
        if idx is not None:
            step["i"] = idx
        if ref:
            if typ != "Reference":
                return None
            step["ref"] = ref
        if out and out[-1].get("prim") and name == "extension":
            out[-1]["n"] = "_" + out[-1]["n"]  # extension on a primitive: birthDate → _birthDate
            out[-1]["list"] = False
            out[-1].pop("prim")
        if typ and typ[0].islower() and typ not in ("BackboneElement", "Element"):
            step["prim"] = True
        out.append(step)
        if typ in ("BackboneElement", "Element"):
            base = key
        else:
            base = typ
    out[-1]["type"] = typ
    for step in out:
        step.pop("prim", None)
    return out


# --------------------------------------------------------------------------- conditions

_FIELD = r"(?:[A-Z][A-Z0-9]{2}-\d+(?:\.\d+)*|[A-Z]{2,3}\.\d+(?:\.\d+)*)"
_STR = r'"([^"]*)"'


def parse_condition(text: str) -> Any:
    """Compile the IG's ``IF ...`` conditions into a small list AST; raise ValueError if prose."""
    s = text.strip().replace("\u201c", '"').replace("\u201d", '"')
    s = re.sub(r"^\(?IF\s+", "", s, flags=re.I).strip()
    s = re.sub(r"\bAND IF\b", "AND", s, flags=re.I)
    s = s.replace("(IF ", "(")
    s = s.strip()
    if s.startswith("(") and s.count("(") > s.count(")"):
        s = s[1:]
    if " OR " in s.upper() and " AND " in s.upper():
        raise ValueError("mixed AND/OR")
    joiner = "and"
    parts = re.split(r"\s+AND\s+", s, flags=re.I)
    if len(parts) == 1:
        parts = re.split(r"\s+OR\s+", s, flags=re.I)
        joiner = "or"
    # "PV1-3.2 OR PV1-3.3 VALUED": the predicate distributes over a bare field list
    if joiner == "or" and all(re.fullmatch(_FIELD, p.strip()) for p in parts[:-1]):
        tail = re.sub(r"^" + _FIELD, "", parts[-1].strip())
        parts = [p.strip() + tail for p in parts[:-1]] + [parts[-1]]
    terms = [parse_term(_balance(p.strip())) for p in parts]
    return terms[0] if len(terms) == 1 else [joiner, *terms]


def _balance(t: str) -> str:
    while t.startswith("(") and t.count("(") > t.count(")"):
        t = t[1:].strip()
    while t.endswith(")") and t.count(")") > t.count("("):
        t = t[:-1].strip()
    return t


def parse_term(t: str) -> Any:
    m = re.fullmatch(rf"({_FIELD})\s+(?:IS\s+)?(NOT\s+VALUED|VALUED|DOES NOT EXIST|EXISTS|IS EMPTY|EMPTY)", t, re.I)
    if m:
        neg = m.group(2).upper() in ("NOT VALUED", "DOES NOT EXIST", "IS EMPTY", "EMPTY")
        return ["not", ["valued", m.group(1)]] if neg else ["valued", m.group(1)]
    m = re.fullmatch(rf"({_FIELD})\s*(?:=|EQUALS|IS)\s*{_STR}", t, re.I)
    if m:
        return ["eq", m.group(1), m.group(2)]
    m = re.fullmatch(rf"({_FIELD})\s+(?:NOT EQUALS|IS NOT|!=)\s*{_STR}", t, re.I)
    if m:
        return ["not", ["eq", m.group(1), m.group(2)]]
    m = re.fullmatch(rf"({_FIELD})\s+(NOT\s+)?IN\s*\(([^)]*)\)", t, re.I)
    if m:
        values = re.findall(_STR, m.group(3))
        term = ["in", m.group(1), values]
        return ["not", term] if m.group(2) else term
    m = re.fullmatch(rf"({_FIELD})\s+LENGTH GREATER THAN\s+(\d+)", t, re.I)
    if m:
        return ["longer", m.group(1), int(m.group(2))]
    m = re.fullmatch(rf"({_FIELD})\s+COUNT\s*([>=])\s*(\d+)", t, re.I)
    if m:
        return ["count", m.group(1), m.group(2), int(m.group(3))]
    raise ValueError(f"unparsed condition term: {t}")


# --------------------------------------------------------------------------- rows

_STEP = re.compile(r"([A-Za-z$][A-Za-z0-9]*)(?:\[(\d+)\])?(?:\(([A-Z][A-Za-z]+)\))?$")


def parse_path(text: str) -> tuple[list[tuple[str, int | None, str | None]], str | None]:
    """Split ``participant[1].individual(Practitioner)`` into steps; pull ``x="v"`` assignments."""
    s = text.strip()
    if s.startswith("[1]."):
        s = s[4:]  # datatype maps index the root instance: "[1].family"
    elif s.startswith("["):
        raise ValueError("second root instance")
    assign = None
    m = re.search(r'="([^"]*)"\s*$', s)
    if m:
        assign = m.group(1)
        s = s[: m.start()]
    steps: list[tuple[str, int | None, str | None]] = []
    for part in s.split("."):
        sm = _STEP.fullmatch(part.strip())
        if not sm:
            raise ValueError(f"unsupported path {text}")
        steps.append((sm.group(1), int(sm.group(2)) if sm.group(2) else None, sm.group(3)))
    if any(n == "$this" for n, _, _ in steps):
        raise ValueError("$this")
    return steps, assign


def map_root(key: str) -> str | None:
    """``CX[Identifier]`` → Identifier; ``EI[Identifier-Extension]`` → Identifier."""
    m = re.fullmatch(r"[A-Z]{2,3}\[([A-Za-z]+)(?:[-.][^\]]*)?\]", key)
    if not m:
        return None
    name = m.group(1)
    fixed = {"DateTime": "dateTime", "String": "string", "Code": "code", "Boolean": "boolean",
             "PositiveInt": "positiveInt", "UnsignedInt": "unsignedInt", "Decimal": "decimal", "location": "Location"}
    return fixed.get(name, name)


def canonical_dt(key: str) -> str:
    m = re.fullmatch(r"([A-Z]{2,3})\[([^\]]+)\]", key.strip())
    if not m:
        return key.strip()
    inner = m.group(2)
    inner = inner[0].upper() + inner[1:] if inner.split("-")[0] in ("location",) else inner
    return f"{m.group(1)}[{inner}]"


def read_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))[2:]
    return [r + [""] * (20 - len(r)) for r in rows]


def derive_map(path: Path, root: str, stats: dict[str, int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for r in read_rows(path):
        ident, v2type, cond, attr = r[1].strip(), r[3].strip(), r[6].strip(), r[9].strip()
        dt, vocab, assign = r[14].strip(), r[15].strip(), r[16].strip()
        if not attr or not ident:
            continue
        m = re.fullmatch(r"[A-Z][A-Z0-9]{1,2}[-.](\d+)", ident)
        if not m:
            stats["skipped"] += 1
            continue
        try:
            steps, inline = parse_path(attr)
            ast = parse_condition(cond) if cond else None
        except ValueError:
            stats["skipped"] += 1
            continue
        resolved = resolve(root, steps)
        if resolved is None or any(step["n"] == "div" for step in resolved) or (
            resolved[-1]["n"] == "url" and not assign
        ):
            stats["skipped"] += 1
            continue
        row: dict[str, Any] = {"f": int(m.group(1)), "v2": v2type, "path": resolved}
        value = assign.strip().strip('"').strip().strip("#") if assign else inline
        if assign and ("+" in assign or assign.count('"') > 2):
            value = None  # an expression, not a constant: left to hooks
            if not dt:
                stats["skipped"] += 1
                continue
        if value and dt and value.startswith(("http://", "https://")) and "StructureDefinition" not in value:
            value = None  # a value-set pointer written in the assignment column of a datatype row
        if value and (value.startswith("/") or "??" in value):
            value = None  # prose, not a constant
            if not dt:
                stats["skipped"] += 1
                continue
        if value and any("ref" in step for step in resolved):
            value = None  # IG rows that put a constant on a reference row are misplaced
        if value and resolved[-1].get("type") == "uri":
            value = value.rstrip(".").replace("\\", "").replace(" ", "")
        if value:
            row["assign"] = value
        if dt:
            row["dt"] = canonical_dt(dt)
        if vocab and not vocab.startswith("http"):
            row["vocab"] = vocab
        if ast is not None:
            row["cond"] = ast
        rows.append(row)
        stats["rows"] += 1
    return rows


OVERRIDES = Path(__file__).with_name("ig_overrides.json")


def apply_overrides(out: dict[str, Any]) -> None:
    """Correct IG rows that are wrong as data (tools/ig_overrides.json says why)."""
    fixes = json.loads(OVERRIDES.read_text(encoding="utf-8"))
    urls: dict[str, str] = fixes["urls"]
    for kind in ("segments", "datatypes"):
        for spec in out[kind].values():
            for row in spec["rows"]:
                if row.get("assign") in urls:
                    row["assign"] = urls[row["assign"]]
    for key, step_name in fixes["one_instance_per_segment"]["steps"].items():
        for row in out["segments"][key]["rows"]:
            for step in row["path"][:-1]:
                if step["n"] == step_name:
                    step["i"] = 1
    for fix in fixes["assigns"]:
        for row in out["segments"][fix["map"]]["rows"]:
            if row["f"] == fix["f"] and ".".join(s["n"] for s in row["path"]) == fix["path"]:
                row["assign"] = fix["assign"]
    for fix in fixes["conditions"]:
        for row in out["segments"][fix["map"]]["rows"]:
            if row["f"] == fix["f"]:
                row["cond"] = fix["cond"]


def derive_ig() -> dict[str, Any]:
    stats = {"rows": 0, "skipped": 0}
    out: dict[str, Any] = {"segments": {}, "datatypes": {}}
    for path in sorted((IG / "segments").glob("*.csv")):
        m = re.search(r"_ ([A-Z0-9]{3})\[([A-Za-z-]+)\]", path.name)
        if not m:
            continue
        seg, target = m.group(1), m.group(2)
        root = target.split("-")[0]
        if root not in RESOURCES:
            continue
        out["segments"][f"{seg}[{target}]"] = {"root": root, "rows": derive_map(path, root, stats)}
    type_names = {p.split(".")[0] for p in ELEMENTS}
    for path in sorted((IG / "datatypes").glob("*.csv")):
        m = re.search(r"_ ([A-Z]{2,3}\[[^\]]+\])", path.name)
        if not m:
            continue
        key = canonical_dt(m.group(1))
        root = map_root(key)
        if root is None or root[0].islower() or (root not in RESOURCES and root not in type_names):
            continue  # primitive targets are converted in Python
        out["datatypes"][key] = {"root": root, "resource": root in RESOURCES, "rows": derive_map(path, root, stats)}
    apply_overrides(out)
    out["stats"] = stats
    return out


# --------------------------------------------------------------------------- vocabularies


def derive_vocab() -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    for path in sorted((IG / "codesystems").glob("*.csv")):
        m = re.search(r"Concept Map_ (.+?) - ", path.name)
        if not m:
            continue
        table: dict[str, list[str]] = {}
        for r in read_rows(path):
            code, fcode, fdisplay, fsystem = r[0].strip(), r[6].strip(), (r[8] or r[7]).strip(), r[9].strip()
            if code and fcode and code not in table:
                table[code] = [fcode, fdisplay, fsystem]
        if table:
            out[m.group(1).strip()] = table
    return out


def derive_structures() -> dict[str, str]:
    out: dict[str, str] = {}
    path = IG / "codesystems" / "HL7 Concept Map_ MessageStructure - Sheet1.csv"
    for r in read_rows(path):
        structure, events = r[0].strip(), r[1]
        if "_" not in structure:
            continue
        msg_type = structure.split("_")[0]
        for ev in re.findall(r"\b([A-Z]\d{2})\b", events):
            out.setdefault(f"{msg_type}_{ev}", structure)
    return out


def derive_segments() -> list[str]:
    names: set[str] = set()
    for v in ("2_3", "2_3_1", "2_4", "2_5", "2_5_1", "2_6", "2_7", "2_8", "2_8_2"):
        mod = importlib.import_module(f"hl7apy.v{v}.segments")
        names |= {k for k in mod.SEGMENTS if len(k) == 3}
    return sorted(names)


def write(name: str, data: Any) -> None:
    (OUT / name).write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def build() -> dict[str, Any]:
    """Every derived file's content, by file name (what ``main`` writes, what the test compares)."""
    if not ELEMENTS:
        ELEMENTS.update(load_elements())
    return {
        "ig_maps.json": derive_ig(),
        "vocab.json": derive_vocab(),
        "structures.json": derive_structures(),
        "segments.json": derive_segments(),
    }


def main() -> int:
    files = build()
    for name, data in files.items():
        write(name, data)
    ig = files["ig_maps.json"]
    print(f"ig_maps: {len(ig['segments'])} segment maps, {len(ig['datatypes'])} datatype maps, {ig['stats']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
