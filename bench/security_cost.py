#!/usr/bin/env python3
"""What encryption, blind indexes and the audit trail cost per request (issue 3, "Security cost").

    .venv/bin/python bench/security_cost.py [--n 400] [--rounds 3] [--threads 8] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

In-process and repeatable: for each mode (``off``: encryption, blind indexes and audit off; ``on``: all three
on, the default configuration) the script builds ``create_app(Settings(...))`` on a *fresh* database (SQLite
in a temporary directory; with ``--pg`` also a PostgreSQL database it creates and drops), imports the
bench-100 NDJSON (Patient, Observation, Encounter, Condition, MedicationRequest; ``--patients N`` for a
subset) with the product's importer, and then drives ``app.test_client()``:

- **serial**: ``--n`` reads by id (type uniformly Patient/Observation/Encounter, then a random id) and
  ``--n`` searches from the same search mix ``bench/run.py`` generates (11 kinds x 40 URLs), for ``--rounds``
  rounds, the modes interleaved every ``--chunk`` requests so that the machine's drifting speed (other work,
  other virtual machines on the host) hits every mode alike. Reported: CPU milliseconds per request
  (``time.process_time`` of the whole process around each request), the mean (the median of the rounds'
  means), p50/p99, the in-process req/s that the mean CPU allows (1000 / mean), the overhead of ``on`` over
  ``off``, and the figures per read type and search kind.
- **threaded** (``--threads``, 0 to skip): the same requests (``--rounds`` times) spread over N threads, each
  with its own test client, in bursts of 10 x N requests started together, the modes interleaved burst by
  burst; wall-clock req/s and CPU ms per request. This is where group commit of the audit entries pays
  (several requests' entries in one transaction); it is wall time, so it is noisier.

- **processes** (``--procs P``, reads only): P spawned worker processes, each building its own apps on the same
  databases (so each has its own audit appender and chain, as granian workers do), ``--threads`` clients in
  all; the modes alternate in time slots that every worker follows together; wall-clock req/s per mode.

Every answer must be 200; anything else is counted and reported. ``--profile MODE:FIGURE`` (e.g.
``on:read``) runs that figure once more under cProfile and prints the top functions.
The request log is on (it is in production) at ``--log-level`` (INFO), written to /dev/null.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import gc
import importlib.util
import io
import json
import logging
import os
import pstats
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# --source DIR: benchmark another copy of the product (e.g. `git archive HEAD | tar -x -C DIR`), since other
# engineers change the checkout while one measures; the default is the checkout itself
_SOURCE = next((a.split("=", 1)[1] if "=" in a else sys.argv[i + 2] for i, a in enumerate(sys.argv[1:])
                if a.split("=", 1)[0] == "--source"), None) if __name__ == "__main__" else None
sys.path.insert(0, str(Path(_SOURCE).resolve() if _SOURCE else ROOT))

TYPES = ("Patient", "Observation", "Encounter", "Condition", "MedicationRequest")
READ_TYPES = ("Patient", "Observation", "Encounter")
MODES: dict[str, dict[str, Any]] = {
    "off": {"encryption": False, "blind_indexes": False, "audit": False},
    "on": {"encryption": True, "blind_indexes": True, "audit": True},
    # for attributing the overhead (--modes off,crypto,audit,on)
    "crypto": {"encryption": True, "blind_indexes": True, "audit": False},
    "audit": {"encryption": False, "blind_indexes": False, "audit": True},
}


def _load_runner() -> Any:
    """bench/run.py (standard library only): its data finder, NDJSON reader and search-mix generator."""
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


RUN = _load_runner()


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------------
# data and databases
# ----------------------------------------------------------------------------------------------------------

@dataclass
class Data:
    resources: dict[str, list[dict[str, Any]]]
    paths: list[Path]
    reads: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)  # URL -> search kind (reads: the resource type)
    count: int = 0


def load_data(data_dir: Path, patients: int, work: Path, n: int, seed: int) -> Data:
    ndjson = data_dir / "ndjson"
    files = {p.name.split(".")[0]: p for p in sorted(ndjson.glob("*.ndjson*"))}
    missing = [t for t in TYPES if t not in files]
    if missing:
        raise SystemExit(f"benchmark data incomplete in {ndjson}: no {', '.join(missing)}")
    resources = {t: RUN.read_ndjson(files[t]) for t in TYPES}
    paths = [files[t] for t in TYPES]
    if patients:
        rng = random.Random(seed)
        keep = {p["id"] for p in rng.sample(resources["Patient"], min(patients, len(resources["Patient"])))}
        resources = {t: [r for r in items if (r["id"] in keep if t == "Patient"
                                               else RUN.ref_id(r.get("subject"), "Patient") in keep)]
                     for t, items in resources.items()}
        (work / "ndjson").mkdir(parents=True, exist_ok=True)
        paths = []
        for t, items in resources.items():
            path = work / "ndjson" / f"{t}.ndjson"
            path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in items))
            paths.append(path)
    data = Data(resources, paths, count=sum(len(v) for v in resources.values()))
    rng = random.Random(seed)
    for _ in range(n):
        rtype = rng.choice(READ_TYPES)
        data.reads.append(f"/fhir/{rtype}/{rng.choice(resources[rtype])['id']}")
    inputs = RUN.Inputs([], [], resources)
    with contextlib.redirect_stdout(sys.stderr):
        RUN.generate_searches(inputs, work, 40)
    urls = [u for _, u in inputs.search_urls]
    data.kinds = {u: k for k, u in inputs.search_urls}
    data.kinds.update({u: u.split("/")[2] for u in data.reads})
    data.searches = [urls[i % len(urls)] for i in range(n)] if urls else []
    rng.shuffle(data.searches)
    data.resources = {t: [] for t in resources}  # only the URLs are needed from here on
    return data


class PgDatabases:
    """Databases created on the server of ``--pg`` (an admin URL) and dropped WITH (FORCE) at the end."""

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy.engine import make_url

        self.admin = make_url(admin_url)
        self.names: list[str] = []
        RUN.PG_CTX["pg"] = {"host": self.admin.host or "127.0.0.1", "port": str(self.admin.port or 5432),
                            "user": self.admin.username or "postgres"}

    def _conninfo(self) -> str:
        url = self.admin.set(drivername="postgresql")
        return str(url.render_as_string(hide_password=False))

    def create(self, label: str) -> str:
        import psycopg

        name = f"telehub_seccost_{label}_{secrets.token_hex(4)}"
        RUN.PG_CTX["ours"].add(name)  # its backends are ours, not "other processes"
        with psycopg.connect(self._conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        return str(self.admin.set(drivername="postgresql+psycopg", database=name)
                   .render_as_string(hide_password=False))

    def drop_all(self) -> None:
        import psycopg

        with psycopg.connect(self._conninfo(), autocommit=True) as conn:
            for name in self.names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.names.clear()


@dataclass
class Server:
    db: str
    mode: str
    app: Any
    import_s: float
    import_cpu_s: float
    url: str = ""


def build(db: str, mode: str, url: str, kek: Path, data: Data, work: Path, log_level: str) -> Server:
    from fhir_gateway.app import create_app
    from fhir_gateway.importer.run import run_import
    from fhir_gateway.settings import Settings

    settings = Settings(database_url=url, kek_file=str(kek), base_url="http://bench/fhir",
                        log_level=log_level, **MODES[mode])
    app = create_app(settings)
    services = app.extensions["telehub.fhir"]
    wall, cpu = time.perf_counter(), time.process_time()
    report = run_import(settings, data.paths, on_error="skip", restart=True, progress=False, services=services,
                        state_dir=work / f"state-{db}-{mode}")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if report.failed:
        log(f"{db}/{mode}: {len(report.failed)} records failed to import, e.g. {report.failed[:3]}")
    log(f"{db}/{mode}: imported {report.resources} resources in {wall:.1f} s ({cpu:.1f} s CPU)")
    return Server(db, mode, app, wall, cpu, url)


# ----------------------------------------------------------------------------------------------------------
# measuring
# ----------------------------------------------------------------------------------------------------------

@dataclass
class Sample:
    cpu_ms: list[float] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)
    block_means: list[float] = field(default_factory=list)  # one per measured block (round)
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    others: list[float] = field(default_factory=list)  # cores other processes used during each block

    def add(self, other: Sample) -> None:
        self.cpu_ms += other.cpu_ms
        self.block_means += other.block_means or ([statistics.fmean(other.cpu_ms)] if other.cpu_ms else [])
        self.others += other.others
        for kind, ms in other.by_kind.items():
            self.by_kind.setdefault(kind, []).extend(ms)
        for status, count in other.errors.items():
            self.errors[status] = self.errors.get(status, 0) + count


def serial(apps: dict[str, Any], urls: list[str], kinds: dict[str, str] | None = None,
           chunk: int = 20) -> dict[str, Sample]:
    """The same requests on every app, interleaved: ``chunk`` requests on one, the same on the next…
    (the order of the apps alternates per chunk), so that the machine's drifting speed (other work,
    other virtual machines on the host) hits every mode alike."""
    clients = {mode: app.test_client() for mode, app in apps.items()}
    out = {mode: Sample() for mode in apps}
    order = list(apps)
    clock = time.process_time
    for n, start in enumerate(range(0, len(urls), chunk)):
        part = urls[start:start + chunk]
        for mode in (order if n % 2 == 0 else order[::-1]):
            client, sample = clients[mode], out[mode]
            for url in part:
                t0 = clock()
                resp = client.get(url)
                resp.get_data()
                ms = (clock() - t0) * 1000
                sample.cpu_ms.append(ms)
                if kinds is not None:
                    sample.by_kind.setdefault(kinds.get(url, "?"), []).append(ms)
                if resp.status_code != 200:
                    sample.errors[resp.status_code] = sample.errors.get(resp.status_code, 0) + 1
    return out


def _burst(app: Any, urls: list[str], threads: int, errors: dict[int, int]) -> tuple[float, float]:
    """``urls`` spread over ``threads`` clients started together: (wall s, CPU s)."""
    chunks = [urls[i::threads] for i in range(threads)]
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)

    def work(chunk: list[str]) -> None:
        client = app.test_client()
        start.wait()
        for url in chunk:
            resp = client.get(url)
            resp.get_data()
            if resp.status_code != 200:
                with lock:
                    errors[resp.status_code] = errors.get(resp.status_code, 0) + 1

    pool = [threading.Thread(target=work, args=(c,)) for c in chunks]
    for t in pool:
        t.start()
    start.wait()
    wall, cpu = time.perf_counter(), time.process_time()
    for t in pool:
        t.join()
    return time.perf_counter() - wall, time.process_time() - cpu


def threaded(apps: dict[str, Any], urls: list[str], threads: int, burst: int) -> dict[str, dict[str, Any]]:
    """Per mode: wall-clock req/s and CPU ms per request with ``threads`` concurrent clients, the modes
    interleaved in bursts of ``burst`` requests (as :func:`serial` interleaves chunks)."""
    totals = {mode: [0.0, 0.0] for mode in apps}
    errors: dict[str, dict[int, int]] = {mode: {} for mode in apps}
    order = list(apps)
    for n, begin in enumerate(range(0, len(urls), burst)):
        part = urls[begin:begin + burst]
        for mode in (order if n % 2 == 0 else order[::-1]):
            wall, cpu = _burst(apps[mode], part, threads, errors[mode])
            totals[mode][0] += wall
            totals[mode][1] += cpu
    return {mode: {"rps": len(urls) / wall, "cpu_ms": cpu * 1000 / len(urls), "errors": errors[mode]}
            for mode, (wall, cpu) in totals.items()}


def _process_worker(source: str | None, urls_by_mode: dict[str, str], kek: str, log_level: str, reads: list[str],
                    start: float, slots: int, slot_s: float, threads: int, out: Any) -> None:
    """One worker process of :func:`processes`: its own apps on the same databases, ``threads`` clients,
    the mode switching every ``slot_s`` seconds on the shared clock (every worker switches together)."""
    if source:
        sys.path.insert(0, source)
    logging.disable(logging.WARNING)
    from fhir_gateway.app import create_app
    from fhir_gateway.settings import Settings

    apps = {mode: create_app(Settings(database_url=url, kek_file=kek, base_url="http://bench/fhir",
                                      log_level=log_level, **MODES[mode]))
            for mode, url in urls_by_mode.items()}
    order = list(apps)
    counts = {mode: 0 for mode in apps}
    errors = {mode: 0 for mode in apps}
    lock = threading.Lock()

    def run(k: int) -> None:
        clients = {mode: app.test_client() for mode, app in apps.items()}
        i = k
        while True:
            now = time.time()
            if now < start:
                time.sleep(start - now)
                continue
            slot = int((now - start) // slot_s)
            if slot >= slots:
                return
            mode = order[slot % len(order)]
            status = clients[mode].get(reads[i % len(reads)]).status_code
            i += threads
            if int((time.time() - start) // slot_s) == slot:  # finished within its slot
                with lock:
                    counts[mode] += 1
                    errors[mode] += status != 200

    pool = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    for app in apps.values():
        app.extensions["telehub.fhir"].repository.engine.dispose()
    out.put({"counts": counts, "errors": errors})


def processes(servers: dict[str, Server], reads: list[str], args: argparse.Namespace, kek: Path) -> dict[str, Any]:
    """Reads by ``--procs`` worker processes (``--threads`` clients in all), the modes alternating in time
    slots: wall-clock req/s per mode. Each process has its own appender (and, with audit, its own chain)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    slots, slot_s = 2 * len(servers) * args.proc_slots, args.proc_slot_seconds
    start = time.time() + 20  # time for the workers to build their apps
    per = max(1, args.threads // args.procs)
    workers = [ctx.Process(target=_process_worker, args=(
        str(Path(_SOURCE).resolve()) if _SOURCE else None, {m: s.url for m, s in servers.items()}, str(kek),
        args.log_level.upper(), reads, start, slots, slot_s, per, out)) for _ in range(args.procs)]
    for w in workers:
        w.start()
    results = [out.get(timeout=start - time.time() + slots * slot_s + 120) for _ in workers]
    for w in workers:
        w.join()
    seconds = slots * slot_s / len(servers)
    return {mode: {"rps": sum(r["counts"][mode] for r in results) / seconds,
                   "errors": sum(r["errors"][mode] for r in results)} for mode in servers}


def stats(sample: Sample) -> dict[str, Any]:
    """``mean``: the median of the blocks' means (robust to one disturbed block); p50/p99 over all requests."""
    values = sorted(sample.cpu_ms)
    if not values:
        return {"n": 0}
    mean = statistics.median(sample.block_means) if sample.block_means else statistics.fmean(values)
    return {"n": len(values), "mean": mean, "p50": values[len(values) // 2],
            "p99": values[min(len(values) - 1, int(len(values) * 0.99))], "rps": 1000 / mean if mean else 0.0,
            "block_means": [round(m, 3) for m in sample.block_means],
            "other_cores": [round(o, 2) for o in sample.others]}


def quiet(args: argparse.Namespace) -> None:
    if args.quiet_wait > 0:
        with contextlib.redirect_stdout(sys.stderr):
            RUN.wait_for_quiet(os.getpid(), args.quiet_wait, args.quiet_threshold)


def measured(db: str, apps: dict[str, Any], urls: list[str], args: argparse.Namespace, label: str,
             kinds: dict[str, str] | None = None) -> dict[str, Sample]:
    """One interleaved block (:func:`serial`), repeated (``--retries``) while other processes used more
    than ``--contaminated`` cores during it; the least disturbed attempt is kept."""
    best: dict[str, Sample] | None = None
    best_others = 0.0
    for attempt in range(args.retries + 1):
        quiet(args)
        before = RUN.cpu_snapshot(os.getpid())
        samples = serial(apps, urls, kinds, args.chunk)
        d = RUN.cpu_delta(before, RUN.cpu_snapshot(os.getpid()))
        # our process is the "server"; on SQLite any PostgreSQL work is someone else's
        others = d["other_cores"] + (d["postgres_cores"] if db == "sqlite" else 0.0)
        for sample in samples.values():
            sample.others = [others]
        if best is None or others < best_others:
            best, best_others = samples, others
        if others <= args.contaminated:
            break
        log(f"{db} {label}: other processes used {others:.2f} cores during the block (attempt {attempt + 1})")
    assert best is not None
    return best


def profile(app: Any, urls: list[str], top: int, dump: Path | None = None) -> str:
    prof = cProfile.Profile(time.process_time)  # CPU time: other work on the machine does not count
    client = app.test_client()
    prof.enable()
    for url in urls:
        client.get(url).get_data()
    prof.disable()
    if dump is not None:
        prof.dump_stats(dump)
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    st.sort_stats("tottime").print_stats(top)
    st.sort_stats("cumulative").print_stats(top)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=400, help="requests per figure and round (default 400)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of --n requests per figure (default 3)")
    ap.add_argument("--chunk", type=int, default=20, help="requests per mode before switching to the next (20)")
    ap.add_argument("--warmup", type=int, default=60, help="unmeasured requests per figure first (default 60)")
    ap.add_argument("--threads", type=int, default=8, help="threads for the threaded run (0: skip; default 8)")
    ap.add_argument("--figures", default="read,search", help="read,search (default both)")
    ap.add_argument("--procs", type=int, default=0,
                    help="also reads by this many worker processes (--threads clients in all), modes alternating "
                         "in time slots (0: skip)")
    ap.add_argument("--proc-slots", type=int, default=3, help="slots per mode for --procs (3)")
    ap.add_argument("--proc-slot-seconds", type=float, default=4.0, help="seconds per slot for --procs (4)")
    ap.add_argument("--modes", default="off,on",
                    help="off,on (default); also crypto (encryption + blind indexes only), audit (audit only)")
    ap.add_argument("--patients", type=int, default=0, help="load only N patients' resources (default: all)")
    ap.add_argument("--data", type=Path, default=RUN.default_data_dir(), help="bench-100 directory")
    ap.add_argument("--pg", metavar="ADMIN_URL", help="also PostgreSQL, e.g. postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--no-sqlite", action="store_true", help="only the --pg database")
    ap.add_argument("--profile", action="append", default=[], metavar="MODE:FIGURE",
                    help="cProfile one figure once more (repeatable), e.g. on:read")
    ap.add_argument("--profile-top", type=int, default=30)
    ap.add_argument("--profile-dir", type=Path, help="save raw cProfile stats here (<db>-<mode>-<figure>.prof)")
    ap.add_argument("--log-level", default="INFO", help="the app's log level (lines go to /dev/null)")
    ap.add_argument("--source", help="directory holding the fhir_gateway package to measure (default: this checkout)")
    ap.add_argument("--quiet-wait", type=int, default=120,
                    help="before each block wait up to this many s for other processes to go quiet (0: don't)")
    ap.add_argument("--quiet-threshold", type=float, default=0.3, help="cores other processes may use (0.3)")
    ap.add_argument("--contaminated", type=float, default=0.25,
                    help="repeat a block during which other processes used more cores than this (0.25)")
    ap.add_argument("--retries", type=int, default=2, help="repeats of a disturbed block (2)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    return ap.parse_args(argv)


def overhead(on: float, off: float) -> str:
    return f"{(on / off - 1) * 100:+.0f} %" if off else "-"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures = [f for f in args.figures.split(",") if f]
    modes = [m for m in args.modes.split(",") if m]
    # the request log stays on, as in production, but is not written to the terminal
    devnull = open(os.devnull, "w")  # noqa: SIM115 - open for the whole run
    handler = logging.StreamHandler(devnull)
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(args.log_level.upper())
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "dbs": {}}
    with tempfile.TemporaryDirectory(prefix="telehub-seccost-") as tmp:
        work = Path(tmp)
        kek = work / "kek.key"
        kek.write_text(base64.b64encode(os.urandom(32)).decode())
        kek.chmod(0o600)
        data = load_data(args.data, args.patients, work, args.n, args.seed)
        log(f"data: {data.count} resources from {args.data}; {len(data.reads)} reads, {len(data.searches)} searches "
            f"per round")
        dbs = ([] if args.no_sqlite else ["sqlite"]) + (["postgresql"] if args.pg else [])
        pg = PgDatabases(args.pg) if args.pg else None
        try:
            for db in dbs:
                results["dbs"][db] = run_db(db, modes, figures, args, data, work, kek, pg)
        finally:
            if pg is not None:
                pg.drop_all()
    print_report(results, figures, modes)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


def run_db(db: str, modes: list[str], figures: list[str], args: argparse.Namespace, data: Data, work: Path,
           kek: Path, pg: PgDatabases | None) -> dict[str, Any]:
    servers: dict[str, Server] = {}
    try:
        for mode in modes:
            if db == "sqlite":
                url = f"sqlite:///{work / f'{mode}.sqlite3'}"
            else:
                assert pg is not None
                url = pg.create(mode)
            servers[mode] = build(db, mode, url, kek, data, work, args.log_level.upper())
        urls = {"read": data.reads, "search": data.searches}
        # the loaded NDJSON and the import left a large heap: freeze it so that the collector's full passes
        # (whose cost grows with the heap, not with the request) do not land in random requests
        gc.collect()
        gc.freeze()
        apps = {mode: servers[mode].app for mode in modes}
        for fig in figures:  # warm-up: caches, compiled statements, the first connections
            serial(apps, urls[fig][:args.warmup])
        samples = {(m, f): Sample() for m in modes for f in figures}
        for r in range(args.rounds):
            for fig in figures:
                for mode, sample in measured(db, apps, urls[fig], args, fig, data.kinds).items():
                    samples[(mode, fig)].add(sample)
            log(f"{db}: round {r + 1}/{args.rounds} done: " + ", ".join(
                f"{m}/{f} {samples[(m, f)].block_means[-1]:.3f}" for m in modes for f in figures))
        out: dict[str, Any] = {"serial": {}, "threaded": {}, "import": {}}
        for (mode, fig), sample in samples.items():
            out["serial"][f"{mode}/{fig}"] = {**stats(sample), "errors": sample.errors,
                                              "by_kind": {k: statistics.fmean(v) for k, v in sample.by_kind.items()}}
        for mode in modes:
            out["import"][mode] = {"wall_s": servers[mode].import_s, "cpu_s": servers[mode].import_cpu_s}
        if args.threads:
            for fig in figures:
                quiet(args)
                for mode, figures_ in threaded(apps, urls[fig] * args.rounds, args.threads,
                                               args.threads * 10).items():
                    out["threaded"][f"{mode}/{fig}"] = figures_
                    log(f"{db}: threaded {mode}/{fig}: {figures_['rps']:.0f} req/s, "
                        f"{figures_['cpu_ms']:.2f} ms CPU/request")
        if args.procs > 1 and "read" in figures:
            quiet(args)
            out["processes"] = processes(servers, urls["read"], args, kek)
            log(f"{db}: {args.procs} processes: " + ", ".join(
                f"{m} {v['rps']:.0f} req/s" for m, v in out["processes"].items()))
        for spec in args.profile:
            mode, _, fig = spec.partition(":")
            if mode in servers and fig in urls:
                print(f"==== cProfile {db} {mode}:{fig} ({len(urls[fig])} requests) ====")
                dump = args.profile_dir / f"{db}-{mode}-{fig}.prof" if args.profile_dir else None
                print(profile(servers[mode].app, urls[fig], args.profile_top, dump))
        return out
    finally:
        for server in servers.values():
            server.app.extensions["telehub.fhir"].repository.engine.dispose()
            stopper = getattr(server.app.extensions["telehub.fhir"].audit, "close", None)
            if callable(stopper):
                stopper()


def print_report(results: dict[str, Any], figures: list[str], modes: list[str]) -> None:
    for db, out in results["dbs"].items():
        print(f"\n## {db}: CPU ms per request (serial, in-process)\n")
        print("| figure | mode | mean | p50 | p99 | req/s (1000/mean) | errors | block means | other cores |")
        print("|---|---|---:|---:|---:|---:|---|---|---|")
        for fig in figures:
            for mode in modes:
                s = out["serial"].get(f"{mode}/{fig}")
                if s and s.get("n"):
                    print(f"| {fig} | {mode} | {s['mean']:.2f} | {s['p50']:.2f} | {s['p99']:.2f} | {s['rps']:.0f} | "
                          f"{s['errors'] or '-'} | {' '.join(f'{m:.2f}' for m in s['block_means'])} | "
                          f"{' '.join(f'{o:.2f}' for o in s['other_cores'])} |")
            on, off = out["serial"].get(f"on/{fig}"), out["serial"].get(f"off/{fig}")
            if on and off and on.get("n") and off.get("n"):
                print(f"| {fig} | **overhead** | {overhead(on['mean'], off['mean'])} | "
                      f"{overhead(on['p50'], off['p50'])} | {overhead(on['p99'], off['p99'])} | | | | |")
        for fig in figures:
            on, off = out["serial"].get(f"on/{fig}"), out["serial"].get(f"off/{fig}")
            if on and off and on.get("by_kind") and off.get("by_kind"):
                print(f"\n{fig} by kind (mean CPU ms over all rounds): off / on / overhead")
                for kind in sorted(off["by_kind"]):
                    a, b = off["by_kind"][kind], on["by_kind"].get(kind)
                    if b is not None:
                        print(f"- {kind}: {a:.2f} / {b:.2f} / {overhead(b, a)}")
        if out["threaded"]:
            print(f"\n## {db}: threaded ({results['args']['threads']} threads), wall-clock\n")
            print("| figure | mode | req/s | CPU ms/request | errors |")
            print("|---|---|---:|---:|---|")
            for fig in figures:
                for mode in modes:
                    t = out["threaded"].get(f"{mode}/{fig}")
                    if t:
                        print(f"| {fig} | {mode} | {t['rps']:.0f} | {t['cpu_ms']:.2f} | {t['errors'] or '-'} |")
                on, off = out["threaded"].get(f"on/{fig}"), out["threaded"].get(f"off/{fig}")
                if on and off:
                    print(f"| {fig} | **on vs off** | {overhead(on['rps'], off['rps'])} | "
                          f"{overhead(on['cpu_ms'], off['cpu_ms'])} | |")
        if out.get("processes"):
            print(f"\n## {db}: {results['args']['procs']} processes, {results['args']['threads']} threads in all, "
                  f"reads, wall-clock (modes alternating in time slots)\n")
            print("| mode | req/s | errors |")
            print("|---|---:|---|")
            for mode, v in out["processes"].items():
                print(f"| {mode} | {v['rps']:.0f} | {v['errors'] or '-'} |")
            on, off = out["processes"].get("on"), out["processes"].get("off")
            if on and off:
                print(f"| **on vs off** | {overhead(on['rps'], off['rps'])} | |")
        print(f"\nimport ({db}): " + ", ".join(f"{m} {v['wall_s']:.1f} s wall / {v['cpu_s']:.1f} s CPU"
                                             for m, v in out["import"].items()))


if __name__ == "__main__":
    sys.exit(main())
