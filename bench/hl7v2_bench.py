#!/usr/bin/env python3
"""HL7 v2 inbound benchmark (issue 6): parse and parse+convert over all shared sample messages.

    .venv/bin/python bench/hl7v2_bench.py [--rounds 5] [--hl7apy-limit 139] [--json out.json]

Prints, on one core (single process):
- fast parser alone: messages/s;
- hl7apy full parsing (``parse_message``, TOLERANT, find_groups) on the same messages: messages/s
  (slow, so by default on the first ``--hl7apy-limit`` messages only);
- parse + convert to a transaction Bundle: messages/s, p50/p99 per message, per message type;
- peak memory of one parse+convert pass (tracemalloc, measured in a separate pass so the timing
  runs are not slowed by tracing), and the process's peak RSS.

Messages of types the mapper does not cover are parsed, refused (UnsupportedMessage) and counted
as "refused": that cost is part of the inbound path too. Reports, never asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import sys
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mappers.hl7v2 import HL7v2Error, convert, parse  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "hl7v2"


def load_messages() -> list[tuple[str, str]]:
    paths = sorted(
        [*(DATA / "fhir-converter" / "input" / "hl7v2").glob("*.hl7"),
         *(DATA / "linuxforhealth" / "test-messages").glob("*/*.hl7"),
         *(DATA / "linuxforhealth" / "test-resources").glob("*.hl7")]
    )
    return [(p.name, p.read_text(encoding="utf-8-sig", errors="replace")) for p in paths]


def bench_parse(messages: list[tuple[str, str]], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _, text in messages:
            parse(text)
        best = min(best, time.perf_counter() - start)
    return len(messages) / best


def bench_hl7apy(messages: list[tuple[str, str]], limit: int) -> tuple[float, int, int]:
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.exceptions import HL7apyException
    from hl7apy.parser import parse_message

    subset = messages[:limit]
    failed = 0
    start = time.perf_counter()
    for _, text in subset:
        er7 = text.replace("\r\n", "\r").replace("\n", "\r").strip()
        try:
            parse_message(er7, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=True)
        except (HL7apyException, ValueError, KeyError, IndexError, AttributeError, TypeError):
            failed += 1
    elapsed = time.perf_counter() - start
    return len(subset) / elapsed, len(subset), failed


def bench_convert(messages: list[tuple[str, str]], rounds: int) -> dict[str, object]:
    per_message: dict[str, list[float]] = defaultdict(list)
    kinds: dict[str, str] = {}
    refused = 0
    totals = []
    for _ in range(rounds):
        round_start = time.perf_counter()
        for name, text in messages:
            t0 = time.perf_counter()
            try:
                kinds[name] = convert(text).message_type
            except HL7v2Error:
                kinds[name] = "refused"
            per_message[name].append(time.perf_counter() - t0)
        totals.append(time.perf_counter() - round_start)
    refused = sum(1 for k in kinds.values() if k == "refused")
    best_each = {name: min(times) for name, times in per_message.items()}
    lat = sorted(best_each.values())
    by_type: dict[str, list[float]] = defaultdict(list)
    for name, t in best_each.items():
        by_type[kinds[name]].append(t)
    return {
        "messages": len(messages),
        "refused": refused,
        "msgs_per_s": len(messages) / min(totals),
        "converted_msgs_per_s": (len(messages) - refused) / sum(t for n, t in best_each.items()
                                                               if kinds[n] != "refused"),
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
        "max_ms": lat[-1] * 1000,
        "by_type": {k: (len(v), len(v) / sum(v)) for k, v in sorted(by_type.items())},
    }


def peak_memory(messages: list[tuple[str, str]]) -> float:
    tracemalloc.start()
    for _, text in messages:
        with contextlib.suppress(HL7v2Error):
            convert(text)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1024 / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--hl7apy-limit", type=int, default=139, help="messages for the (slow) hl7apy comparison")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = ap.parse_args()
    messages = load_messages()
    for _, text in messages[:50]:  # warm caches (maps, vocabularies)
        with contextlib.suppress(HL7v2Error):
            convert(text)
    parse_rate = bench_parse(messages, args.rounds)
    result = bench_convert(messages, args.rounds)
    peak = peak_memory(messages)
    apy_rate, apy_n, apy_failed = bench_hl7apy(messages, args.hl7apy_limit) if args.hl7apy_limit else (0.0, 0, 0)
    print(f"messages: {result['messages']} ({result['refused']} refused as unsupported or unmappable)")
    print(f"fast parser alone:        {parse_rate:10,.0f} msg/s")
    if apy_n:
        print(f"hl7apy full parse:        {apy_rate:10,.1f} msg/s  (first {apy_n} messages, {apy_failed} failed)")
        print(f"  → fast parser is {parse_rate / apy_rate:,.0f} times hl7apy")
    print(f"parse + convert (all):    {result['msgs_per_s']:10,.0f} msg/s  (best of {args.rounds} rounds, one core)")
    print(f"parse + convert (mapped): {result['converted_msgs_per_s']:10,.0f} msg/s")
    print(f"latency per message:      p50 {result['p50_ms']:.3f} ms  p99 {result['p99_ms']:.3f} ms  "
          f"max {result['max_ms']:.3f} ms")
    print(f"peak traced memory, one pass over all messages: {peak:.1f} MiB (maps already loaded)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS (interpreter, maps, hl7apy if run): {rss:.0f} MiB")
    print("per message type (count, msg/s):")
    by_type = result["by_type"]
    assert isinstance(by_type, dict)
    for kind, (count, rate) in by_type.items():
        print(f"  {kind:<10} {count:>4}  {rate:10,.0f}")
    if args.json:
        args.json.write_text(json.dumps({"parse_msgs_per_s": parse_rate, "hl7apy_msgs_per_s": apy_rate,
                                         "peak_mib": peak, **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
