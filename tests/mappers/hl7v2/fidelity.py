"""Content-level fidelity of our HL7 v2 → FHIR conversion against Microsoft FHIR-Converter.

Run: ``.venv/bin/python -m tests.mappers.hl7v2.fidelity [--all] [--missing]``

Scoring follows shared/docs/hl7v2-notes.md §8: ids, fullUrls, request, meta and text
are dropped; resources are paired per type by natural keys (identifiers; Patient
name + birthDate; Observation code + time + value) then by leaf overlap; references
are rewritten to the paired partner; each resource is flattened to a multiset of
(path without indices, normalised value) leaves. dateTimes compare as instants at
their precision, numbers numerically, and placeholder systems
(``http://example.com/v2-to-fhir-converter/{Identifier,CodeSystem}/X`` and our
``urn:id:X``) as one token. FHIR-Converter is silver, not gold: ``DIVERGENCES`` lists
leaves where we follow the IG and it does not (see docs/hl7v2-divergences.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mappers.hl7v2 import HL7v2Error, Options, convert
from mappers.hl7v2.messages.plan import EVENTS

DATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "hl7v2" / "fhir-converter"

CORE = ("Patient", "Encounter", "Observation", "DiagnosticReport", "ServiceRequest", "Appointment",
        "MedicationRequest", "Immunization", "AllergyIntolerance", "Condition", "DocumentReference")
SECONDARY = ("Location", "Organization", "Practitioner", "PractitionerRole", "RelatedPerson", "Coverage",
             "Procedure", "Specimen", "Account", "EpisodeOfCare", "Medication")
IGNORED_TYPES = {"Provenance", "MessageHeader", "Device", "Binary"}
DROP_KEYS = {"id", "meta", "text", "fullUrl", "request"}
# (resource type, flattened path prefix) where we follow the IG and FHIR-Converter does not.
DIVERGENCES: set[tuple[str, str]] = {
    ("Appointment", "appointmentType"),  # SCH-7 HL70276 codes: IG → reasonCode (notes §1.4)
    ("Appointment", "minutesDuration"),  # FHIR-Converter divides SCH-9 seconds; IG copies SCH-9
}

_PLACEHOLDER = re.compile(r"^(?:http://example\.com/v2-to-fhir-converter/(?:Identifier|CodeSystem)/|urn:id:)(.+)$")
_DT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")


def norm_value(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return round(float(value), 6)
    if isinstance(value, str):
        v = value.strip()
        m = _PLACEHOLDER.match(v)
        if m:
            return "placeholder:" + re.sub(r"[\s_-]+", "_", m.group(1)).lower()
        if _DT.match(v):
            try:
                return "dt:" + datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp().__repr__()
            except ValueError:
                return v
        return v
    return value


# FHIR-Converter's own invented extensions (no IG row, placeholder URLs) are not content to match.
PEER_ONLY_EXTENSION = "http://example.com/v2-to-fhir-converter/"


def flatten(obj: Any, path: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(obj, dict):
        if str(obj.get("url", "")).startswith(PEER_ONLY_EXTENSION):
            return out
        for k, v in obj.items():
            if k in DROP_KEYS or k == "resourceType":
                continue
            out.extend(flatten(v, f"{path}.{k}" if path else k))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(flatten(v, path))
    else:
        out.append((path, norm_value(obj)))
    return out


def resources(bundle: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(reference label, resource) for every scored entry; label = fullUrl and Type/id forms."""
    out = []
    for e in bundle.get("entry", []):
        r = e["resource"]
        if r["resourceType"] in IGNORED_TYPES or e.get("request", {}).get("method") == "PATCH":
            continue
        out.append((e.get("fullUrl", ""), r))
    return out


def natural_keys(r: dict[str, Any]) -> set[str]:
    keys = {f"id:{norm_value(i.get('value'))}" for i in r.get("identifier", []) if isinstance(i, dict)}
    if r["resourceType"] == "Patient":
        for n in r.get("name", []):
            keys.add(f"name:{n.get('family')}|{r.get('birthDate')}")
    if r["resourceType"] == "Observation":
        codes = [c.get("code") for c in r.get("code", {}).get("coding", [])]
        value = json.dumps({k: v for k, v in r.items() if k.startswith("value")}, sort_keys=True, default=str)
        keys.add(f"obs:{codes[:1]}|{norm_value(r.get('effectiveDateTime', ''))}|{value}")
    if r["resourceType"] in ("Location", "Organization") and r.get("name"):
        keys.add(f"name:{r['name']}")
    return keys


def _leaves(r: dict[str, Any], rename: dict[str, str] | None) -> Counter[tuple[str, Any]]:
    flat = flatten(r)
    out: Counter[tuple[str, Any]] = Counter()
    for path, value in flat:
        if path.endswith("reference") or path == "reference":
            value = (rename or {}).get(str(value), "ref:unpaired") if rename is not None else "ref"
        if any(r["resourceType"] == t and path.startswith(p) for t, p in DIVERGENCES):
            continue
        out[(path, value)] += 1
    return out


def _overlap(a: Counter[Any], b: Counter[Any]) -> int:
    return sum((a & b).values())


def pair(expected: list[tuple[str, dict[str, Any]]], actual: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, int]]:
    """Greedy pairing within a type: shared natural key first, then best leaf overlap."""
    pairs: list[tuple[int, int]] = []
    used_e: set[int] = set()
    used_a: set[int] = set()
    scores = []
    for i, (_, er) in enumerate(expected):
        ek, el = natural_keys(er), _leaves(er, None)
        for j, (_, ar) in enumerate(actual):
            if er["resourceType"] != ar["resourceType"]:
                continue
            shared = len(ek & natural_keys(ar))
            overlap = _overlap(el, _leaves(ar, None))
            if shared or overlap:
                scores.append((shared, overlap, i, j))
    for _shared, _overlap_n, i, j in sorted(scores, key=lambda s: (-s[0], -s[1])):
        if i in used_e or j in used_a:
            continue
        used_e.add(i)
        used_a.add(j)
        pairs.append((i, j))
    return pairs


@dataclass
class Tally:
    expected: int = 0
    actual: int = 0
    matched: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    missing: Counter[str] = field(default_factory=Counter)
    extra: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        for k in ("expected", "actual", "matched", "tp", "fp", "fn"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.missing.update(other.missing)
        self.extra.update(other.extra)

    @property
    def recall(self) -> float:
        return self.matched / self.expected if self.expected else 1.0

    @property
    def precision(self) -> float:
        return self.matched / self.actual if self.actual else 1.0

    @property
    def f1(self) -> float:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        return 2 * p * r / (p + r) if p + r else 0.0


def score_pair(expected_bundle: dict[str, Any], actual_bundle: dict[str, Any]) -> dict[str, Tally]:
    """Per-resource-type tallies for one message."""
    exp = resources(expected_bundle)
    act = resources(actual_bundle)
    by_type_e: dict[str, list[int]] = defaultdict(list)
    by_type_a: dict[str, list[int]] = defaultdict(list)
    for i, (_, r) in enumerate(exp):
        by_type_e[r["resourceType"]].append(i)
    for j, (_, r) in enumerate(act):
        by_type_a[r["resourceType"]].append(j)
    matches: list[tuple[int, int]] = []
    for rtype, idx_e in by_type_e.items():
        idx_a = by_type_a.get(rtype, [])
        local = pair([exp[i] for i in idx_e], [act[j] for j in idx_a])
        matches.extend((idx_e[i], idx_a[j]) for i, j in local)
    rename_e: dict[str, str] = {}
    rename_a: dict[str, str] = {}
    for n, (i, j) in enumerate(matches):
        label = f"pair:{n}"
        er, ar = exp[i][1], act[j][1]
        for form in (exp[i][0], f"{er['resourceType']}/{er.get('id')}"):
            rename_e[form] = label
        rename_a[act[j][0]] = label
        rename_a[f"{ar['resourceType']}/{ar.get('id')}"] = label
    tallies: dict[str, Tally] = defaultdict(Tally)
    for _, r in exp:
        tallies[r["resourceType"]].expected += 1
    for _, r in act:
        tallies[r["resourceType"]].actual += 1
    for i, j in matches:
        er, ar = exp[i][1], act[j][1]
        t = tallies[er["resourceType"]]
        t.matched += 1
        el, al = _leaves(er, rename_e), _leaves(ar, rename_a)
        common = el & al
        t.tp += sum(common.values())
        t.fn += sum((el - common).values())
        t.fp += sum((al - common).values())
        t.missing.update(p for p, _ in (el - common))
        t.extra.update(p for p, _ in (al - common))
    return dict(tallies)


def in_scope(root_template: str) -> bool:
    return root_template.replace("_", "^", 1) in EVENTS


@dataclass
class Report:
    by_message: dict[str, Tally]
    by_type: dict[str, Tally]
    failures: list[str]

    def core(self) -> Tally:
        t = Tally()
        for rtype in CORE:
            if rtype in self.by_type:
                t.add(self.by_type[rtype])
        return t


def run(all_types: bool = False) -> Report:
    by_message: dict[str, Tally] = defaultdict(Tally)
    by_type: dict[str, Tally] = defaultdict(Tally)
    failures = []
    with (DATA / "manifest.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["expected"]]
    options = Options(default_offset="+05:30")  # the zone FHIR-Converter's expected files were made in
    for row in rows:
        if not all_types and not in_scope(row["root_template"]):
            continue
        text = (DATA / row["input"]).read_text(encoding="utf-8-sig")
        expected = json.loads((DATA / row["expected"]).read_text(encoding="utf-8-sig"))
        try:
            actual = convert(text, options).bundle
        except HL7v2Error as exc:
            failures.append(f"{row['input']}: {exc}")
            actual = {"entry": []}
        for rtype, tally in score_pair(expected, actual).items():
            by_type[rtype].add(tally)
            if rtype in CORE:
                by_message[row["root_template"]].add(tally)
    return Report(dict(by_message), dict(by_type), failures)


def _line(name: str, t: Tally) -> str:
    return (f"{name:<22} exp {t.expected:>5} act {t.actual:>5} matched {t.matched:>5}  "
            f"recall {t.recall:5.2f} precision {t.precision:5.2f}  field F1 {t.f1:5.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="score every message type, not only issue 6's")
    ap.add_argument("--missing", action="store_true", help="list the leaf paths most often missing/extra")
    args = ap.parse_args()
    report = run(args.all)
    print("per message type (core resource types):")
    for name in sorted(report.by_message):
        print("  " + _line(name, report.by_message[name]))
    print("per resource type:")
    for rtype in (*CORE, *SECONDARY):
        if rtype in report.by_type:
            marker = "*" if rtype in CORE else " "
            print(f" {marker}" + _line(rtype, report.by_type[rtype]))
    print(_line("CORE OVERALL", report.core()))
    if report.failures:
        print("conversion failures:", *report.failures, sep="\n  ")
    if args.missing:
        for rtype in CORE:
            t = report.by_type.get(rtype)
            if t:
                print(rtype, "missing:", t.missing.most_common(8))
                print(rtype, "extra:  ", t.extra.most_common(8))


if __name__ == "__main__":
    main()
