"""Walk a parsed message and apply the segment plan, building resources in a Context.

Roles hold the resource each kind of segment attaches to (the current patient,
encounter, order, report …); a new PID or order group resets the dependent roles, so
repeated groups (several ORC/OBR, several PID/MRG pairs in A40) map independently.
"""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context, Resource
from mappers.hl7v2.engine import apply_segment, maps
from mappers.hl7v2.messages.plan import APPEND_TARGETS, DEFAULT, OVERRIDES, RESETS, STANDALONE_ORC, Rule
from mappers.hl7v2.parser.message import Segment
from mappers.hl7v2.segments import HOOKS, zsegment

# Fields that identify a resource made from a segment that carries no identifier.
KEY_FIELDS: dict[str, tuple[int, ...]] = {
    "OBX": (1, 3, 4), "AL1": (1, 3), "IAM": (1, 3), "DG1": (1, 3), "PR1": (1, 3, 5), "NK1": (1, 2, 3),
    "IN1": (1, 2, 3, 36),
    "SPM": (2, 4), "PV1": (19,), "TXA": (12,), "RXA": (3, 5), "RXO": (1,), "RXE": (2,), "OBR": (2, 3, 4),
    "SCH": (1, 2), "AIS": (3,), "PID": (3, 5, 7), "ORC": (2, 3),
}
# One resource per segment even when senders repeat an identifier across segments.
_PER_SEGMENT = {"Observation", "Specimen", "AllergyIntolerance", "Condition", "Procedure"}
_ORDER_TYPES = {"ServiceRequest", "DiagnosticReport", "Immunization", "MedicationRequest"}


class Assembler:
    """One message's walk; state lives here, the behaviour in the plan and hooks."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.rules = {**DEFAULT, **OVERRIDES.get(ctx.message.message_type, {})}
        self.roles: dict[str, Resource] = {}
        self.pending_orc: Segment | None = None
        self.orc_used = True
        self.ordinal: dict[str, int] = {}

    def run(self) -> None:
        for seg in self.ctx.message.segments[1:]:
            if seg.name.startswith("Z"):
                if self.ctx.options.keep_z_segments:
                    zsegment.attach(seg, self.roles.get("last") or self.roles.get("patient"), self.ctx)
                continue
            rule = self.rules.get(seg.name)
            if rule is None:
                continue
            self.ctx.group[seg.name] = seg
            self.ordinal[seg.name] = self.ordinal.get(seg.name, 0) + 1
            self.apply(rule, seg)
        self.close_order()

    def close_order(self) -> None:
        """An ORC that no order detail segment used still is an order (IG: ORC → ServiceRequest)."""
        orc = self.pending_orc
        if orc is None or self.orc_used:
            return
        self.orc_used = True
        standalone = STANDALONE_ORC.get(self.ctx.message.message_type)
        if standalone is not None:
            self.create(standalone, orc)

    def apply(self, rule: Rule, seg: Segment) -> None:
        if rule.pending:
            self.close_order()
            self.pending_orc = seg
            self.orc_used = False
            self.ctx.group = {k: v for k, v in self.ctx.group.items() if k in ("PID", "PV1", "MSH", "ORC")}
        if rule.creates:
            self.create(rule, seg)
        elif rule.into:
            self.merge(rule, seg)
        elif rule.hook:
            HOOKS[rule.hook](None, seg, self.ctx, self.roles)
        for sub in rule.also:
            self.apply(sub, seg)

    def create(self, rule: Rule, seg: Segment) -> None:
        assert rule.creates is not None
        res: Resource = {"resourceType": rule.creates}
        if self.pending_orc is not None and rule.creates in _ORDER_TYPES:
            key = f"ORC[{rule.creates}]"
            if key in maps()["segments"]:
                apply_segment(key, self.pending_orc, self.ctx, into=res)
            self.orc_used = True
        for name in rule.maps:
            apply_segment(name, seg, self.ctx, into=res)
        if rule.optional and len(res) == 1:
            return
        url = self.ctx.add(res, self.key(rule.creates, seg, res))
        if rule.hook:
            HOOKS[rule.hook](res, seg, self.ctx, self.roles)
        for element, role in rule.links.items():
            target = self.roles.get(role)
            if target is None or target is res:
                continue
            ref = {"reference": self.ctx.add(target)}
            if element.endswith("[]"):
                refs = res.setdefault(element[:-2], [])
                if ref not in refs:
                    refs.append(ref)
            elif element not in res:
                res[element] = ref
        for role, element in rule.append_to:
            target = self.roles.get(role)
            if target is None:
                continue
            ref = {"reference": url}
            if target["resourceType"] not in APPEND_TARGETS.get(element, {target["resourceType"]}):
                continue
            if element == "participant":
                target.setdefault(element, []).append({"actor": ref, "status": "accepted"})
            elif ref not in target.setdefault(element, []):
                target[element].append(ref)
        if rule.role:
            for dependent in RESETS.get(rule.role, ()):
                self.roles.pop(dependent, None)
            self.roles[rule.role] = res
        self.roles["last"] = res

    def merge(self, rule: Rule, seg: Segment) -> None:
        target = next((self.roles[r] for r in rule.into if r in self.roles), None)
        if target is None:
            return
        names = rule.maps or (f"{seg.name}[{target['resourceType']}]",)
        for name in names:
            if name in maps()["segments"]:
                scratch = apply_segment(name, seg, self.ctx, into={"resourceType": target["resourceType"]})
                merge_resource(target, scratch)
        if rule.hook:
            HOOKS[rule.hook](target, seg, self.ctx, self.roles)

    def key(self, rtype: str, seg: Segment, res: Resource) -> str | None:
        """A re-send-stable key for resources that carry no identifier of their own."""
        if rtype not in _PER_SEGMENT and any(isinstance(i, dict) and i.get("value") for i in res.get("identifier", ())):
            return None
        parts: list[Any] = [rtype]
        for role in ("patient", "order", "report"):
            anchor = self.roles.get(role)
            if anchor is not None and anchor is not res:
                parts.append(anchor.get("_key", ""))
        parts.append(f"{seg.name}#{self.ordinal.get(seg.name, 0)}")
        parts.extend(seg.raw(n) for n in KEY_FIELDS.get(seg.name, (1,)))
        return "|".join(str(p) for p in parts)


# Lists a merging segment extends in place rather than appending to (one dosage per order:
# RXR route and TQ1 timing belong to the dosage RXO/RXE started).
SINGLETON_LISTS = {"dosageInstruction"}


def merge_resource(target: Resource, extra: Resource) -> None:
    """Merge a segment's contribution into an existing resource."""
    for key, value in extra.items():
        current = target.get(key)
        if current is None:
            target[key] = value
        elif key in SINGLETON_LISTS and isinstance(current, list) and current and isinstance(value, list):
            for item in value:
                _deep_merge(current[0], item)
        elif isinstance(current, list) and isinstance(value, list):
            current.extend(v for v in value if v not in current)
        elif isinstance(current, dict) and isinstance(value, dict):
            _deep_merge(current, value)


def _deep_merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        current = into.get(key)
        if current is None:
            into[key] = value
        elif isinstance(current, dict) and isinstance(value, dict):
            _deep_merge(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            current.extend(v for v in value if v not in current)


def assemble(ctx: Context) -> None:
    """Map every segment of ``ctx.message`` into ``ctx.resources``."""
    Assembler(ctx).run()
