"""Interpreter for the IG-derived segment and datatype maps (``maps/ig_maps.json``).

One row says: take field (or component) ``f``; if its condition holds, convert it with a
datatype map, a vocabulary or as a primitive (or assign a constant), and put the result
at a FHIR path. Indexed steps (``participant[1]``) share one element per repetition
across rows, which is how the IG attaches ``type`` codes to the participant that PV1-7
created. A step naming a resource (``individual(Practitioner)``) adds that resource to
the context and stores a Reference.
"""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import CONVERTERS
from mappers.hl7v2.datatypes.coded import lookup, system_uri
from mappers.hl7v2.datatypes.primitives import leaf
from mappers.hl7v2.maps import load
from mappers.hl7v2.parser.message import Segment, Value

Row = dict[str, Any]
Source = Segment | Value


def maps() -> dict[str, Any]:
    data: dict[str, Any] = load("ig_maps.json")
    return data


def apply_segment(key: str, seg: Segment, ctx: Context, into: dict[str, Any] | None = None) -> dict[str, Any]:
    """Map one segment with the IG segment map ``key`` (``PID[Patient]``)."""
    spec = maps()["segments"][key]
    resource = into if into is not None else {"resourceType": spec["root"]}
    _apply_rows(spec["rows"], seg, ctx, resource)
    return resource


def apply_datatype(key: str, value: Value, ctx: Context, vocab: str | None = None) -> Any:
    """Convert one v2 value with a Python converter or the IG datatype map ``key``."""
    fn = CONVERTERS.get(key)
    if fn is not None:
        return fn(value, ctx, vocab)
    spec = maps()["datatypes"].get(key)
    if spec is None:
        return None
    out: dict[str, Any] = {"resourceType": spec["root"]} if spec["resource"] else {}
    _apply_rows(spec["rows"], value, ctx, out)
    if set(out) <= {"resourceType"}:
        return None
    return out


def _sources(src: Source, f: int, first_list: bool) -> list[Value]:
    """The non-empty value(s) a row reads; empty fields cost a string check, no objects."""
    if isinstance(src, Segment):
        fields = src.fields
        if f >= len(fields) or not fields[f]:
            return []
        if first_list:
            return src.reps(f)
        v = src.first(f)
        return [v] if v else []
    parts = src.parts()
    if f > len(parts) or not parts[f - 1]:
        return []
    v = src.part(f)
    return [v] if v else []


_GROUPS: dict[int, list[tuple[int, bool, list[Row]]]] = {}


def _grouped(rows: list[Row]) -> list[tuple[int, bool, list[Row]]]:
    """Rows grouped by (field, repeats?) in first-seen order, so each field is split once
    and an empty field costs one lookup however many rows map it."""
    cached = _GROUPS.get(id(rows))
    if cached is None:
        groups: dict[tuple[int, bool], list[Row]] = {}
        for row in rows:
            groups.setdefault((row["f"], bool(row["path"][0]["list"])), []).append(row)
        cached = [(f, is_list, rs) for (f, is_list), rs in groups.items()]
        _GROUPS[id(rows)] = cached
    return cached


def _apply_rows(rows: list[Row], src: Source, ctx: Context, target: dict[str, Any]) -> None:
    instances: dict[tuple[Any, ...], Any] = {}
    for f, is_list, group in _grouped(rows):
        values = _sources(src, f, is_list)
        if not values:
            continue
        for row in group:
            cond = row.get("cond")
            if cond is not None and not _eval(cond, src, ctx):
                continue
            path = row["path"]
            for rep, value in enumerate(values):
                out = _convert(row, value, ctx)
                if out is None or out == "" or out == {} or out == []:
                    continue
                _set(target, path, out, f, rep, instances, ctx)


def _convert(row: Row, value: Value, ctx: Context) -> Any:
    if "assign" in row:
        leaf_type = row["path"][-1].get("type", "string")
        if leaf_type == "boolean":
            return row["assign"].lower() == "true"
        if leaf_type in ("positiveInt", "integer", "unsignedInt"):
            return leaf(row["assign"], leaf_type)
        if leaf_type == "CodeableConcept" and ":" not in row["assign"]:
            return {"coding": [{"code": row["assign"]}]}
        if leaf_type == "Coding" and ":" not in row["assign"]:
            return {"code": row["assign"]}
        if not _primitive(leaf_type):
            return None
        return row["assign"]
    dt = row.get("dt")
    vocab = row.get("vocab")
    last = row["path"][-1]
    leaf_type = last.get("type", "string")
    if dt:
        out = apply_datatype(dt, value, ctx, vocab)
        if isinstance(out, dict) and "resourceType" in out and leaf_type != "Reference" and "ref" not in last:
            return None  # a resource-rooted map (TQ[ServiceRequest]) cannot sit inside an element
        if isinstance(out, dict) and _primitive(leaf_type) and "resourceType" not in out:
            out = out.get(last["n"])  # FN[HumanName] feeding HumanName.family
        if out is not None or not _primitive(leaf_type):
            return out
        if not vocab:
            return leaf(value.text, leaf_type, ctx.options.default_offset)
    elif not _primitive(leaf_type) or (row.get("v2") not in _PRIMITIVE_V2 and not vocab):
        return None
    text = value.text
    if vocab and leaf_type == "code":
        mapped = lookup(vocab, text)
        return mapped[0] if mapped else None
    if leaf_type == "uri" and text and ":" not in text:
        return system_uri(text, ctx)  # a v2 coding-system or namespace name where FHIR wants a URI
    if leaf_type == "string" and row.get("v2") in ("FT", "TX", "ST") and isinstance(value, Value):
        text = value.full_text.strip() if value.level == 0 and row.get("v2") != "ST" else text
    return leaf(text, leaf_type, ctx.options.default_offset)


_PRIMITIVE_V2 = {"ST", "ID", "IS", "DTM", "DT", "TS", "NM", "SI", "TX", "FT", "TM", "varies", "", "GTS", "NUL"}


def _primitive(t: str) -> bool:
    return bool(t) and t[0].islower()


def _prefix(path: list[dict[str, Any]], k: int) -> tuple[str, int | None]:
    """Instance key prefix of step ``k`` (``participant[1].type``), computed once per step."""
    step = path[k]
    cached = _PREFIXES.get(id(step))
    if cached is None:
        parts = []
        for s in path[: k + 1]:
            # the IG reuses extension[n] across fields; extensions belong to one field
            i = None if s["n"] == "extension" else s.get("i")
            parts.append(f"{s['n']}[{i}]" if i else s["n"])
        cached = (".".join(parts), None if step["n"] == "extension" else step.get("i"))
        _PREFIXES[id(step)] = cached
    return cached


_PREFIXES: dict[int, tuple[str, int | None]] = {}


def _set(
    target: dict[str, Any],
    path: list[dict[str, Any]],
    value: Any,
    f: int,
    rep: int,
    instances: dict[tuple[Any, ...], Any],
    ctx: Context,
) -> None:
    node = target
    last_index = len(path) - 1
    for k, step in enumerate(path):
        name = step["n"]
        prefix, idx = _prefix(path, k)
        if "ref" in step:
            if isinstance(value, dict) and "resourceType" in value:
                value = ctx.ref(value)
            elif not (isinstance(value, dict) and "reference" in value):
                return
        if k == last_index:
            if step.get("type") == "Reference" and isinstance(value, dict) and "resourceType" in value:
                value = ctx.ref(value)
            _put(node, name, step, value, (prefix, idx or f, rep), instances)
            return
        if step["list"]:
            key = (prefix, idx or f, rep)
            child = instances.get(key)
            if child is None:
                child = {}
                node.setdefault(name, []).append(child)
                instances[key] = child
            node = child
        else:
            existing = node.get(name)
            if not isinstance(existing, dict):
                existing = {}
                node[name] = existing
            node = existing


def _put(
    node: dict[str, Any],
    name: str,
    step: dict[str, Any],
    value: Any,
    key: tuple[Any, ...],
    instances: dict[tuple[Any, ...], Any],
) -> None:
    if not step["list"]:
        current = node.get(name)
        if isinstance(current, dict) and isinstance(value, dict):
            _merge(current, value)
        else:
            node[name] = value
        return
    lst = node.setdefault(name, [])
    existing = instances.get(key)
    if existing is not None and isinstance(existing, dict) and isinstance(value, dict):
        _merge(existing, value)
        return
    if isinstance(value, list):
        lst.extend(value)
        return
    lst.append(value)
    instances[key] = value


def _merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for k, v in other.items():
        cur = into.get(k)
        if isinstance(cur, dict) and isinstance(v, dict):
            _merge(cur, v)
        elif isinstance(cur, list) and isinstance(v, list):
            cur.extend(x for x in v if x not in cur)
        elif cur is None:
            into[k] = v


# --------------------------------------------------------------------------- conditions


def _field_value(ref: str, src: Source, ctx: Context) -> list[Value]:
    """Resolve ``PV1-2.1`` / ``CX.4`` against the current segment, its group, or composite."""
    if "-" not in ref and ref[3:4] == "." and (isinstance(src, Segment) or ref[:3] in ctx.group):
        ref = ref[:3] + "-" + ref[4:]  # the IG sometimes writes ORC.1 for ORC-1
    if "-" in ref:
        seg_id, rest = ref.split("-", 1)
        nums = [int(x) for x in rest.split(".")]
        seg = src if isinstance(src, Segment) and src.name == seg_id else ctx.group.get(seg_id)
        if seg is None:
            return []
        reps = seg.reps(nums[0])
        out = []
        for v in reps:
            for n in nums[1:]:
                v = v.part(n)
            if v:
                out.append(v)
        return out
    nums = [int(x) for x in ref.split(".")[1:]]
    if isinstance(src, Segment):
        return []
    v = src
    for n in nums:
        v = v.part(n)
    return [v] if v else []


def _eval(cond: list[Any], src: Source, ctx: Context) -> bool:
    op = cond[0]
    if op == "and":
        return all(_eval(c, src, ctx) for c in cond[1:])
    if op == "or":
        return any(_eval(c, src, ctx) for c in cond[1:])
    if op == "not":
        return not _eval(cond[1], src, ctx)
    values = _field_value(cond[1], src, ctx)
    if op == "valued":
        return bool(values)
    text = values[0].text if values else ""
    if op == "eq":
        return bool(text.upper() == str(cond[2]).upper())
    if op == "in":
        return text.upper() in {c.upper() for c in cond[2]}
    if op == "longer":
        return len(values[0].raw if values else "") > int(cond[2])
    if op == "count":
        return len(values) > int(cond[3]) if cond[2] == ">" else len(values) == int(cond[3])
    return False
