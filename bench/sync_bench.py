#!/usr/bin/env python3
"""Upstream sync benchmark (issue 5): 20 patients' records through a vendor adapter, sequential versus
concurrent (``sync_many``), against the sandbox's vendor-flavoured endpoint with injected latency.

    .venv/bin/python bench/sync_bench.py [--vendor athena] [--patients 20] [--latency-ms 50]
                                         [--raised-rps 100] [--workers N] [--json out.json]

The sandbox (hub + vendor flavour, ``latency_ms`` per call) is served by werkzeug's threaded server in
a child process, so server work and client waits really overlap and do not share the bench's GIL.
The adapter is the product's: profile, paging, throttle (token bucket), sync into a separate target
hub database (a fresh one per run). Two scenarios, each sequential then concurrent:

- ``profile``: the vendor profile's own ``rate_limit`` (athena 10/s: any speed-up is capped by it);
- ``raised``: ``--raised-rps`` (default 100, the athena figure that circulates unverified,
  vendor-notes §4.5) with the profile's burst.

Printed per run: wall time, upstream calls, calls/s, the busiest 1-second window (must stay within
the bucket: ``burst + rps``), and the speed-up of concurrent over sequential. Reports, never asserts.
"""
from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FLAVOURS = {"generic-r4": "generic", "epic": "epic", "cerner": "cerner", "athena": "athena"}
ADAPTER = "bench-sync-adapter"
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def settings_for(work: Path, port: int) -> Any:
    from fhir_gateway.settings import Settings

    kek = work / "kek.key"
    if not kek.exists():
        kek.write_text(base64.b64encode(os.urandom(32)).decode())
        kek.chmod(0o600)
    return Settings(env="test", database_url=f"sqlite:///{work / 'sandbox.sqlite3'}",
                    base_url=f"http://127.0.0.1:{port}/fhir", auth="smart", kek_file=str(kek))


def serve(work: Path, port: int, flavour: str, latency_ms: int) -> None:
    """Child process: hub + sandbox at 127.0.0.1:port, werkzeug threaded (one thread per request)."""
    import logging

    from werkzeug.serving import make_server

    from fhir_gateway.app import create_app
    from sandbox_fixtures.sandbox.flavours import load_flavours
    from sandbox_fixtures.sandbox.wsgi import mount

    for name in ("werkzeug", "telehub"):
        logging.getLogger(name).setLevel(logging.WARNING)  # one line per request would swamp the figures
    flavours = load_flavours(overrides={flavour: {"latency_ms": latency_ms}})
    app = mount(create_app(settings_for(work, port)), flavours=flavours, with_app=False)
    make_server("127.0.0.1", port, app, threaded=True).serve_forever()


def renamed_copy(raw: bytes) -> bytes:
    """The bundle with every UUID replaced by a fresh one (consistently: references still resolve)."""
    names: dict[bytes, bytes] = {}
    return UUID.sub(lambda m: names.setdefault(m.group(0), str(uuid.uuid4()).encode()), raw)


def seed(work: Path, settings: Any, patients: int) -> None:
    """``patients`` copies of the demo Synthea bundles, every UUID renamed per copy."""
    import gzip

    from fhir_gateway.demo import demo_fixture_dir
    from fhir_gateway.importer.run import run_import

    source = demo_fixture_dir()
    assert source is not None, "demo fixtures not found"
    bundles = sorted(source.glob("*.json.gz"))
    out = work / "seed"
    out.mkdir()
    for i in range(patients):
        raw = gzip.decompress(bundles[i % len(bundles)].read_bytes())
        (out / f"patient-{i:03d}.json").write_bytes(renamed_copy(raw))
    run_import(settings, [out], on_error="skip", restart=True, progress=False, state_dir=work / "import-state")


def adapter_token(settings: Any) -> str:
    from fhir_gateway.app import create_app

    hub = create_app(settings)
    auth = hub.extensions["telehub.auth"].services
    auth.clients.add(ADAPTER, client_type="public", redirect_uris=["http://127.0.0.1/unused"],
                     scope="system/*.rs", name="sync bench adapter")
    token: str = auth.tokens.issue(client_id=ADAPTER, user=None, scope="system/*.rs", lifetime=3600)["access_token"]
    hub.extensions["telehub.fhir"].repository.engine.dispose()
    return token


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, seconds: float = 60.0) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the sandbox did not come up at {url}")


@dataclasses.dataclass
class StaticTokens:
    value: str

    def token(self) -> str | None:
        return self.value

    def invalidate(self) -> None:
        return None


def busiest_second(stamps: list[float]) -> int:
    stamps = sorted(stamps)
    best, start = 0, 0
    for end, t in enumerate(stamps):
        while t - stamps[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def run_once(base: str, vendor: str, token: str, patients: list[str], work: Path, label: str, *,
             rps: float | None, workers: int | None, concurrent: bool) -> dict[str, Any]:
    import requests

    from fhir_gateway.app import build_services
    from fhir_gateway.rest.context import Validator
    from fhir_gateway.settings import Settings
    from fhir_gateway.upstream.audit import MemoryAuditor
    from fhir_gateway.upstream.connection import connection_from_dict
    from fhir_gateway.upstream.factory import build_client
    from fhir_gateway.upstream.sync import sync_patient
    from fhir_gateway.upstream.sync_many import sync_many
    from vendor_profiles import ProfileRegistry

    conn = connection_from_dict({"tenant": f"bench-{label}", "vendor": vendor, "practice": "195900",
                                 "base_url": base}, ProfileRegistry.load())
    limits = conn.profile.rate_limit
    if rps is not None:
        limits = limits.model_copy(update={"requests_per_second": rps})
        conn = dataclasses.replace(conn, profile=conn.profile.model_copy(update={"rate_limit": limits}))
    session = requests.Session()
    stamps: list[float] = []
    lock = threading.Lock()

    def stamp(response: Any, *args: Any, **kwargs: Any) -> Any:
        sent = time.monotonic() - response.elapsed.total_seconds()  # when the request left, as the bucket sees it
        with lock:
            stamps.append(sent)
        return response

    session.hooks["response"].append(stamp)
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)
    session.mount("http://", adapter)
    client = build_client(conn, session=session, auditor=MemoryAuditor())
    client.tokens = StaticTokens(token)
    kek = work / "kek.key"
    target = dataclasses.replace(build_services(Settings(
        env="test", database_url=f"sqlite:///{work / f'target-{label}.sqlite3'}",
        base_url="http://127.0.0.1:1/fhir", kek_file=str(kek))), validator=Validator(r4b_models=False))
    try:
        started = time.perf_counter()
        if concurrent:
            many = sync_many(target, client, patients, workers=workers)
            reports, failures, pool = [r for r in many.reports if r is not None], len(many.failures), many.workers
        else:
            reports, failures, pool = [sync_patient(target, client, p) for p in patients], 0, 1
        wall = time.perf_counter() - started
    finally:
        target.repository.engine.dispose()
    calls = len(stamps)
    return {"label": label, "mode": "concurrent" if concurrent else "sequential", "workers": pool,
            "patients": len(reports), "failures": failures, "wall_s": round(wall, 2), "calls": calls,
            "calls_per_s": round(calls / wall, 1), "busiest_1s": busiest_second(stamps),
            "limit_rps": limits.requests_per_second, "burst": limits.burst,
            "resources": sum(sum(r.fetched.values()) for r in reports),
            "created": sum(r.created for r in reports), "throttle_wait_s": round(client.throttle.waited, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vendor", default="athena", choices=sorted(FLAVOURS))
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--raised-rps", type=float, default=100.0)
    parser.add_argument("--workers", type=int, default=None, help="pool size (default: the profile's burst)")
    parser.add_argument("--scenarios", default="profile,raised")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (databases) afterwards")
    parser.add_argument("--serve", nargs=4, metavar=("WORK", "PORT", "FLAVOUR", "LATENCY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]), args.serve[2], int(args.serve[3]))
        return
    import requests

    work = Path(tempfile.mkdtemp(prefix="telehub-sync-bench-"))
    port = free_port()
    settings = settings_for(work, port)
    print(f"seeding {args.patients} patients into {work} …", flush=True)
    seed(work, settings, args.patients)
    token = adapter_token(settings)
    flavour = FLAVOURS[args.vendor]
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(work), str(port), flavour,
                               str(args.latency_ms)], cwd=ROOT)
    results: list[dict[str, Any]] = []
    try:
        wait_up(f"http://127.0.0.1:{port}/fhir/metadata")
        bundle = requests.get(f"http://127.0.0.1:{port}/fhir/Patient", params={"_count": "500"}, timeout=30,
                              headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}).json()
        patients = sorted(e["resource"]["id"] for e in bundle.get("entry", []))[:args.patients]
        from sandbox_fixtures.sandbox.flavours import load_flavours

        base = f"http://127.0.0.1:{port}/sandbox{load_flavours()[flavour].base_path}"
        print(f"{len(patients)} patients via {args.vendor} flavour at {base}, {args.latency_ms} ms per call",
              flush=True)
        for scenario in args.scenarios.split(","):
            rps = None if scenario == "profile" else args.raised_rps
            for concurrent in (False, True):
                label = f"{scenario}-{'con' if concurrent else 'seq'}"
                result = run_once(base, args.vendor, token, patients, work, label, rps=rps, workers=args.workers,
                                  concurrent=concurrent)
                results.append({"scenario": scenario, **result})
                print(json.dumps(results[-1]), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"{'scenario':9} {'mode':11} {'workers':>7} {'wall s':>7} {'calls':>6} {'calls/s':>8} {'busiest 1s':>10} "
          f"{'limit/s':>8} {'burst':>5} {'speed-up':>8}")
    for row in results:
        seq = next(r for r in results if r["scenario"] == row["scenario"] and r["mode"] == "sequential")
        speedup = seq["wall_s"] / row["wall_s"] if row["wall_s"] else 0.0
        # a token bucket allows burst + rps * t calls in any window t: the whole run and its busiest second
        within = (row["busiest_1s"] <= row["limit_rps"] + row["burst"]
                  and row["calls"] <= row["burst"] + row["limit_rps"] * row["wall_s"])
        print(f"{row['scenario']:9} {row['mode']:11} {row['workers']:>7} {row['wall_s']:>7} {row['calls']:>6} "
              f"{row['calls_per_s']:>8} {row['busiest_1s']:>10} {row['limit_rps']:>8} {row['burst']:>5} "
              f"{speedup:>7.1f}x{'' if within else '  (over the limit!)'}")
    best = max((r for r in results if r["mode"] == "concurrent"), key=lambda r: r["calls_per_s"], default=None)
    if best is not None:
        seq = next(r for r in results if r["scenario"] == best["scenario"] and r["mode"] == "sequential")
        print(f"\nbest concurrent speed-up: {seq['wall_s'] / best['wall_s']:.1f}x ({best['scenario']} limit "
              f"{best['limit_rps']}/s, {best['calls_per_s']} calls/s); target >= 5x")
    if args.json:
        args.json.write_text(json.dumps({"vendor": args.vendor, "latency_ms": args.latency_ms, "runs": results},
                                        indent=2))


if __name__ == "__main__":
    main()
