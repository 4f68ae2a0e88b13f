#!/usr/bin/env python3
"""Telehub benchmark runner (issue 2, "Benchmark"): prints figures and writes bench/RESULTS.md.

    python bench/run.py [--db sqlite|postgresql|both] [--duration 30] [--connections 16] [--workers 2] [--quick]

For each database kind, on fresh databases:

1. import of synthea/bench-100 with ``telehub import --no-progress`` (the NDJSON directory into one
   fresh database, the 100 transaction Bundles into another): resources/s, wall time, peak RSS;
2. ``telehub serve`` (granian) on the NDJSON-loaded database, then wrk runs: the ceiling (GET /healthz),
   read by id, a search mix, a CRUD mix; req/s, p50, p99, non-2xx, ratio to the ceiling;
3. the peak RSS of the server's worker processes (VmHWM from /proc).

Only the standard library is used here, so any Python 3.11 runs it; the product is driven through the
project's venv (``.venv/bin/telehub``). Nothing is asserted: the runner reports, including every error
answer it sees. See bench/README.md.
"""
from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import datetime as dt
import gzip
import json
import os
import platform
import random
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA_DIR = BENCH / "lua"
OUT = BENCH / "out"
VENV_BIN = ROOT / ".venv" / "bin"
RESULTS_MD = BENCH / "RESULTS.md"
BEGIN_MARK = "<!-- bench/run.py: generated figures begin -->"
END_MARK = "<!-- bench/run.py: generated figures end -->"

# The issue's targets (2-core machine, load generator on the same cores) and Medplum 4.1's figures.
TARGETS = {
    "import": {"rps": 1000.0},
    "read": {"rps": 2000.0, "p99_ms": 25.0},
    "search": {"rps": 500.0, "p99_ms": 100.0},
    "crud": {"rps": 400.0},
}
MEDPLUM = {
    "read": "1,366 req/s, p99 44 ms",
    "search": "357 req/s, p99 126 ms",
    "crud": "205 req/s, p99 160 ms",
    "import-bundles": "93 resources/s",
}
FIGURES = ("ceiling", "read", "search", "crud")
# py-spy sampling modes: "gil" samples only the thread holding the GIL (where Python CPU goes; waiting for the GIL
# after a syscall is not counted), "active" every thread the OS shows running, "idle" every thread (wall time).
PROFILE_MODES = {"gil": ["--gil"], "active": [], "idle": ["--idle"]}
READ_TYPES = ("Patient", "Observation", "Encounter")
QUICK_TYPES = ("Patient", "Observation", "Encounter")
QUICK_PATIENTS = 20
QUICK_BUNDLES = 3
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """A failure with a message meant for the person running the benchmark."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def default_data_dir() -> Path:
    for candidate in (ROOT.parent / "shared" / "data" / "synthea" / "bench-100",
                      Path("/work/shared/data/synthea/bench-100")):
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared" / "data" / "synthea" / "bench-100"


# ----------------------------------------------------------------------------------------------------------
# Databases
# ----------------------------------------------------------------------------------------------------------

@dataclass
class Database:
    kind: str  # sqlite | postgresql
    label: str
    run_dir: Path
    pg: dict[str, str]
    keep: bool = False
    name: str = ""
    url: str = ""
    created: bool = False

    def create(self) -> Database:
        if self.kind == "sqlite":
            path = self.run_dir / f"{self.label}.sqlite3"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            self.name = str(path)
            self.url = f"sqlite:///{path}"
        else:
            self.name = f"telehub_bench_{self.label.replace('-', '_')}_{secrets.token_hex(4)}"
            PG_CTX["ours"].add(self.name)
            psql(self.pg, f'CREATE DATABASE "{self.name}"')
            self.url = (f"postgresql+psycopg://{self.pg['user']}@{self.pg['host']}:{self.pg['port']}/{self.name}")
        self.created = True
        return self

    def size_bytes(self) -> int | None:
        try:
            if self.kind == "sqlite":
                files = [Path(f"{self.name}{suffix}") for suffix in ("", "-wal")]
                return sum(f.stat().st_size for f in files if f.exists())
            return int(psql(self.pg, f"SELECT pg_database_size('{self.name}')").strip())
        except (OSError, ValueError, BenchError):
            return None

    def drop(self) -> None:
        if not self.created or self.keep:
            return
        try:
            if self.kind == "sqlite":
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{self.name}{suffix}").unlink(missing_ok=True)
                for lock in Path(self.name).parent.glob(Path(self.name).name + ".*.lock"):
                    lock.unlink(missing_ok=True)  # the product's migration/writer lock files
            else:
                psql(self.pg, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            log(f"dropped {self.kind} database {self.name}")
        except Exception as exc:  # cleanup must go on
            log(f"WARNING: could not drop {self.name}: {exc}")
        self.created = False


def psql(pg: dict[str, str], sql: str, database: str = "postgres", timeout: int = 120) -> str:
    if not shutil.which("psql"):
        raise BenchError("psql is not installed; it is needed to create/drop the PostgreSQL benchmark databases")
    cmd = ["psql", "-h", pg["host"], "-p", pg["port"], "-U", pg["user"], "-d", database, "-v", "ON_ERROR_STOP=1",
           "-Atqc", sql]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"psql timed out: {sql}") from exc
    if done.returncode != 0:
        raise BenchError(f"psql failed ({sql}): {done.stderr.strip()}")
    return done.stdout


# ----------------------------------------------------------------------------------------------------------
# Inputs: import sources, id lists and search URLs generated from the data
# ----------------------------------------------------------------------------------------------------------

def read_ndjson(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        return [json.loads(line) for line in fh if line.strip()]


def ref_id(reference: Any, rtype: str) -> str | None:
    if isinstance(reference, dict):
        ref = reference.get("reference") or ""
        if ref.startswith(rtype + "/"):
            return ref.split("/", 1)[1]
    return None


@dataclass
class Inputs:
    ndjson_paths: list[Path]
    bundle_paths: list[Path]
    resources: dict[str, list[dict[str, Any]]]  # the NDJSON that will be loaded and served, by type
    id_files: list[Path] = field(default_factory=list)
    search_file: Path | None = None
    search_urls: list[tuple[str, str]] = field(default_factory=list)


def prepare_inputs(args: argparse.Namespace, run_dir: Path) -> Inputs:
    data: Path = args.data
    ndjson_dir = data / "ndjson"
    bundles = data / "bundles.ndjson.gz"
    if not ndjson_dir.is_dir() or not bundles.is_file():
        raise BenchError(f"benchmark data not found: expected {ndjson_dir}/ and {bundles}")
    files = {p.name.split(".")[0]: p for p in sorted(ndjson_dir.glob("*.ndjson*"))}
    if not args.quick:
        resources = {t: read_ndjson(files[t]) for t in
                     ("Patient", "Observation", "Encounter", "Condition", "MedicationRequest") if t in files}
        return Inputs([ndjson_dir], [bundles], resources)
    # --quick: Patient/Observation/Encounter of a few patients, and the first few bundles.
    qdir = run_dir / "quick-data"
    (qdir / "ndjson").mkdir(parents=True, exist_ok=True)
    patients = read_ndjson(files["Patient"])
    rng = random.Random(20240601)
    chosen = rng.sample(patients, min(QUICK_PATIENTS, len(patients)))
    keep = {p["id"] for p in chosen}
    resources: dict[str, list[dict[str, Any]]] = {"Patient": chosen}
    for rtype in QUICK_TYPES[1:]:
        resources[rtype] = [r for r in read_ndjson(files[rtype]) if ref_id(r.get("subject"), "Patient") in keep]
    for rtype, items in resources.items():
        with open(qdir / "ndjson" / f"{rtype}.ndjson", "w", encoding="utf-8") as fh:
            for r in items:
                fh.write(json.dumps(r, separators=(",", ":")) + "\n")
    qbundles = qdir / "bundles.ndjson"
    with gzip.open(bundles, "rt", encoding="utf-8") as src, open(qbundles, "w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i >= QUICK_BUNDLES:
                break
            dst.write(line)
    return Inputs([qdir / "ndjson"], [qbundles], resources)


def write_id_files(inputs: Inputs, run_dir: Path) -> None:
    for rtype in READ_TYPES:
        items = inputs.resources.get(rtype) or []
        if not items:
            continue
        path = run_dir / f"ids-{rtype}.txt"
        path.write_text("".join(f"{rtype}/{r['id']}\n" for r in items))
        inputs.id_files.append(path)
    if not inputs.id_files:
        raise BenchError("no Patient/Observation/Encounter ids in the input")


def q(value: str) -> str:
    return urllib.parse.quote(value, safe=":/.-_")


def generate_searches(inputs: Inputs, run_dir: Path, per_kind: int, seed: int = 7) -> None:
    """Realistic searches built from the loaded data, ``per_kind`` URLs per kind (equal weights)."""
    rng = random.Random(seed)
    res = inputs.resources
    patients = res.get("Patient") or []
    by_patient: dict[str, dict[str, list[dict[str, Any]]]] = collections.defaultdict(
        lambda: collections.defaultdict(list))
    for rtype in ("Observation", "Encounter", "Condition", "MedicationRequest"):
        for r in res.get(rtype) or []:
            pid = ref_id(r.get("subject"), "Patient")
            if pid:
                by_patient[pid][rtype].append(r)

    def family(p: dict[str, Any]) -> str | None:
        for name in p.get("name") or []:
            if name.get("family"):
                return str(name["family"])
        return None

    def coding(cc: Any) -> tuple[str, str] | None:
        for c in (cc or {}).get("coding") or []:
            if c.get("system") and c.get("code"):
                return c["system"], c["code"]
        return None

    def obs_date(o: dict[str, Any]) -> str | None:
        value = o.get("effectiveDateTime") or (o.get("effectivePeriod") or {}).get("start") or o.get("issued")
        return value[:10] if isinstance(value, str) else None

    makers: dict[str, Any] = {}

    def patient_name(p: dict[str, Any]) -> str | None:
        f = family(p)
        return f"/fhir/Patient?name={q(f)}" if f else None

    def patient_birthdate(p: dict[str, Any]) -> str | None:
        return f"/fhir/Patient?birthdate={p['birthDate']}" if p.get("birthDate") else None

    def patient_identifier(p: dict[str, Any]) -> str | None:
        idents = [i for i in p.get("identifier") or [] if i.get("system") and i.get("value")]
        if not idents:
            return None
        i = rng.choice(idents)
        return f"/fhir/Patient?identifier={q(i['system'] + '|' + i['value'])}"

    def obs_category_date(p: dict[str, Any]) -> str | None:
        obs = [o for o in by_patient[p["id"]]["Observation"] if o.get("category") and obs_date(o)]
        if not obs:
            return None
        o = rng.choice(obs)
        cat = coding(o["category"][0])
        if not cat:
            return None
        return f"/fhir/Observation?patient={p['id']}&category={q(cat[1])}&date=ge{obs_date(o)}"

    def obs_code(p: dict[str, Any]) -> str | None:
        obs = [o for o in by_patient[p["id"]]["Observation"] if coding(o.get("code"))]
        if not obs:
            return None
        system, code = coding(rng.choice(obs)["code"])  # type: ignore[misc]
        return f"/fhir/Observation?patient={p['id']}&code={q(system + '|' + code)}"

    def encounter_date(p: dict[str, Any]) -> str | None:
        encs = [e for e in by_patient[p["id"]]["Encounter"] if (e.get("period") or {}).get("start")]
        if not encs:
            return None
        start = rng.choice(encs)["period"]["start"][:10]
        return f"/fhir/Encounter?patient={p['id']}&date=ge{start}"

    def condition_patient(p: dict[str, Any]) -> str | None:
        conds = by_patient[p["id"]]["Condition"]
        if not conds:
            return None
        cats = [coding(c) for cond in conds for c in cond.get("category") or []]
        cats = [c for c in cats if c]
        if cats:  # bench-100's Synthea Conditions carry no category; use it when the data has it
            system, code = rng.choice(cats)  # type: ignore[misc]
            return f"/fhir/Condition?patient={p['id']}&category={q(system + '|' + code)}"
        return f"/fhir/Condition?patient={p['id']}"

    def obs_revinclude(p: dict[str, Any]) -> str | None:
        if not by_patient[p["id"]]["Observation"]:
            return None
        return f"/fhir/Observation?patient={p['id']}&_revinclude=Provenance:target"

    def medreq_include(p: dict[str, Any]) -> str | None:
        if not by_patient[p["id"]]["MedicationRequest"]:
            return None
        return f"/fhir/MedicationRequest?patient={p['id']}&_include=MedicationRequest:medication"

    def encounter_include(p: dict[str, Any]) -> str | None:
        if not by_patient[p["id"]]["Encounter"]:
            return None
        return f"/fhir/Encounter?patient={p['id']}&_include=Encounter:patient"

    def chained(p: dict[str, Any]) -> str | None:
        f = family(p)
        obs = [o for o in by_patient[p["id"]]["Observation"] if coding(o.get("code"))]
        if not f or not obs:
            return None
        system, code = coding(rng.choice(obs)["code"])  # type: ignore[misc]
        return f"/fhir/Observation?subject:Patient.name={q(f)}&code={q(system + '|' + code)}"

    makers = {
        "patient-name": patient_name, "patient-birthdate": patient_birthdate,
        "patient-identifier": patient_identifier, "obs-patient-category-date": obs_category_date,
        "obs-patient-code": obs_code, "encounter-patient-date": encounter_date,
        "condition-patient": condition_patient, "obs-revinclude-provenance": obs_revinclude,
        "medreq-include-medication": medreq_include, "encounter-include-patient": encounter_include,
        "chained-subject-name-code": chained,
    }
    urls: list[tuple[str, str]] = []
    for kind, make in makers.items():
        made: list[str] = []
        attempts = 0
        while len(made) < per_kind and attempts < per_kind * 20 and patients:
            attempts += 1
            url = make(rng.choice(patients))
            if url:
                made.append(url)
        if made:
            urls.extend((kind, u) for u in made)
        else:
            log(f"search kind {kind}: no data for it in this input, left out of the mix")
    rng.shuffle(urls)
    path = run_dir / "search-urls.tsv"
    path.write_text("".join(f"{k}\t{u}\n" for k, u in urls))
    inputs.search_file = path
    inputs.search_urls = urls


# ----------------------------------------------------------------------------------------------------------
# Processes: CPU and memory from /proc
# ----------------------------------------------------------------------------------------------------------

def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids[ppid].append(int(entry))
    return kids


def descendants(pid: int) -> list[int]:
    kids = children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def proc_status(pid: int) -> dict[str, str]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            out[k] = v.strip()
    except OSError:
        pass
    return out


def kib(value: str | None) -> int:
    if not value:
        return 0
    return int(value.split()[0])


def proc_cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def postgres_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip().startswith("postgres"):
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


def machine_ticks() -> tuple[int, int, int]:
    """(total, idle, irq+softirq) ticks over all CPUs, from /proc/stat."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(x) for x in parts] + [0] * 8
    return sum(values[:8]), values[3] + values[4], values[5] + values[6]


def kernel_thread_ticks() -> dict[int, int]:
    """CPU of kernel threads (children of kthreadd: writeback, jbd2, kworkers...), work our runs cause too."""
    total: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == "2":
                total[int(entry)] = int(fields[11]) + int(fields[12])
    return total


# PostgreSQL backends serving other people's databases count as "other processes": the runner asks
# pg_stat_activity which backend serves which database (our databases are added to "ours" as they are created).
PG_CTX: dict[str, Any] = {"pg": None, "ours": set()}


def foreign_pg_backends() -> set[int]:
    if not PG_CTX["pg"]:
        return set()
    try:
        out = psql(PG_CTX["pg"], "SELECT pid || ' ' || coalesce(datname, '') FROM pg_stat_activity")
    except BenchError:
        return set()
    foreign = set()
    for line in out.splitlines():
        pid, _, datname = line.partition(" ")
        if datname and datname not in PG_CTX["ours"] and pid.isdigit():
            foreign.add(int(pid))
    return foreign


@dataclass
class CpuSnapshot:
    at: float
    server: dict[int, int]
    postgres: dict[int, int]
    children_s: float
    total: tuple[int, int, int]
    pg_foreign: set[int] = field(default_factory=set)
    kthreads: dict[int, int] = field(default_factory=dict)


def cpu_snapshot(server_pid: int | None) -> CpuSnapshot:
    spids = ([server_pid, *descendants(server_pid)] if server_pid else [])
    foreign = foreign_pg_backends()
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return CpuSnapshot(time.monotonic(), {p: proc_cpu_ticks(p) for p in spids},
                       {p: proc_cpu_ticks(p) for p in postgres_pids()}, ru.ru_utime + ru.ru_stime, machine_ticks(),
                       foreign, kernel_thread_ticks())


def cpu_delta(a: CpuSnapshot, b: CpuSnapshot) -> dict[str, float]:
    wall = max(b.at - a.at, 1e-6)

    def sum_delta(before: dict[int, int], after: dict[int, int]) -> float:
        return sum(max(0, t - before.get(p, 0)) for p, t in after.items()) / CLK_TCK

    total, idle, irq = (b.total[i] - a.total[i] for i in range(3))
    ncpu = os.cpu_count() or 1
    busy = ncpu * (total - idle) / total if total else 0.0
    kthreads = sum(max(0, t - a.kthreads.get(p, 0)) for p, t in b.kthreads.items()) / CLK_TCK / wall
    kernel = (ncpu * irq / total if total else 0.0) + kthreads
    server = sum_delta(a.server, b.server) / wall
    foreign = a.pg_foreign | b.pg_foreign
    pg = sum_delta(a.postgres, {p: t for p, t in b.postgres.items() if p not in foreign}) / wall
    wrk = (b.children_s - a.children_s) / wall
    return {
        "server_cores": round(server, 2), "postgres_cores": round(pg, 2), "wrk_cores": round(wrk, 2),
        "kernel_cores": round(kernel, 2),
        "other_cores": round(max(0.0, busy - server - pg - wrk - kernel), 2),
        "machine_busy_pct": round(100.0 * (total - idle) / total, 1) if total else 0.0,
    }


def wait_for_quiet(server_pid: int | None, max_wait: int, threshold: float) -> float:
    """Wait (at most ``max_wait`` s) until processes other than ours use < ``threshold`` cores; returns that use."""
    deadline = time.monotonic() + max_wait
    announced = False
    while True:
        a = cpu_snapshot(server_pid)
        time.sleep(2.0)
        d = cpu_delta(a, cpu_snapshot(server_pid))
        others = d["other_cores"] + d["postgres_cores"] + d["server_cores"]  # our server is idle here
        if others < threshold or time.monotonic() >= deadline:
            if others >= threshold:
                log(f"WARNING: the machine is still busy with other processes ({others:.2f} cores); measuring anyway")
            elif announced:
                log(f"machine quiet again ({others:.2f} cores busy)")
            return round(others, 2)
        if not announced:
            log(f"other processes use {others:.2f} cores; waiting up to {max_wait}s for a quiet machine "
                f"(threshold {threshold})")
            announced = True


# ----------------------------------------------------------------------------------------------------------
# HTTP helpers
# ----------------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 30.0) -> tuple[int, bytes, float]:
    req = urllib.request.Request(url, headers={"Accept": "application/fhir+json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
            return resp.status, body, time.perf_counter() - started
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), time.perf_counter() - started


def outcome_text(body: bytes | str) -> str:
    """The diagnostics of an OperationOutcome, or the start of the body."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        doc = json.loads(text)
        if isinstance(doc, dict) and doc.get("resourceType") == "OperationOutcome":
            return "; ".join(f"{i.get('severity')}/{i.get('code')}: {i.get('diagnostics')}"
                             + (f" @ {i.get('expression')}" if i.get("expression") else "")
                             for i in doc.get("issue") or [])
    except ValueError:
        pass
    return text[:500]


class Server:
    def __init__(self, db: Database, args: argparse.Namespace, run_dir: Path) -> None:
        self.db = db
        self.args = args
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = run_dir / f"serve-{db.kind}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.run_dir = run_dir
        self.cmd = [*telehub_cmd(), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                    "--workers", str(args.workers)]
        if args.threads:
            self.cmd += ["--threads", str(args.threads)]
        self.env = bench_env(db.url, f"{self.base}/fhir")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        log(f"starting server: {shlex.join(self.cmd)}  (log {self.log_path})")
        with open(self.log_path, "wb") as fh:
            self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=self.run_dir, stdout=fh, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + self.args.ready_timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"server exited with {self.proc.returncode} before it was ready:\n"
                                 f"{tail(self.log_path)}")
            try:
                status, body, _ = http_get(f"{self.base}/fhir/metadata", timeout=5)
                if status == 200:
                    log(f"server ready on {self.base} (pid {self.pid}, workers {descendants(self.pid)})")
                    return
                last = f"HTTP {status}: {outcome_text(body)}"
            except (OSError, urllib.error.URLError) as exc:
                last = str(exc)
            time.sleep(0.5)
        raise BenchError(f"server not ready after {self.args.ready_timeout}s (last: {last}):\n{tail(self.log_path)}")

    def memory(self) -> dict[str, Any]:
        main = proc_status(self.pid)
        workers = []
        for pid in descendants(self.pid):
            st = proc_status(pid)
            if st:
                workers.append({"pid": pid, "name": st.get("Name"), "vmhwm_kib": kib(st.get("VmHWM")),
                                "vmrss_kib": kib(st.get("VmRSS")), "rss_anon_kib": kib(st.get("RssAnon")),
                                "rss_file_kib": kib(st.get("RssFile"))})
        return {"main_vmhwm_kib": kib(main.get("VmHWM")), "workers": workers,
                "workers_vmhwm_sum_kib": sum(w["vmhwm_kib"] for w in workers),
                "workers_vmrss_sum_kib": sum(w["vmrss_kib"] for w in workers)}

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)  # the process group this runner created
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                log("server did not stop in 20 s; SIGKILL to its process group")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        log(f"server stopped (exit {self.proc.returncode})")
        self.proc = None


# Where the product's code is imported from (set by prepare_source): a frozen copy of the working tree
# (default), ``git archive HEAD``, or the live checkout.
SOURCE: dict[str, Any] = {"mode": "live", "root": ROOT}
PACKAGES = ("fhir_gateway", "mappers", "vendor_profiles", "smart_app", "sandbox_fixtures")
EXTRA_ENV: dict[str, str] = {}  # e.g. TELEHUB_KEK_FILE, shared by the importer and the server of one run


def make_kek(run_dir: Path) -> Path:
    """A throwaway key-encryption key for this run's databases (32 random bytes, base64).

    Without TELEHUB_KEK_FILE the product generates ``./var/kek.key`` relative to its working directory, and the
    importer and the server run in different directories here: the server would not unwrap the importer's keys.
    """
    path = run_dir / "kek.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(os.urandom(32)).decode() + "\n")
    return path


def prepare_source(mode: str, run_dir: Path) -> dict[str, Any]:
    """Freeze the code under test: other engineers edit the checkout while a long run goes on."""
    if mode == "live":
        return {"mode": "live", "root": ROOT}
    dest = run_dir / "src"
    dest.mkdir(parents=True, exist_ok=True)
    commit = None
    if mode != "snapshot":
        rev = "HEAD" if mode == "head" else mode
        commit = sh(["git", "rev-parse", "--short", f"{rev}^{{commit}}"])
        if not commit:
            raise BenchError(f"--source {mode}: not a git revision")
        archive = subprocess.run(["git", "archive", commit, *PACKAGES], cwd=ROOT, capture_output=True, timeout=120)
        if archive.returncode != 0:
            raise BenchError(f"git archive {commit} failed: {archive.stderr.decode(errors='replace')}")
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True, timeout=120)
    else:
        listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard", *PACKAGES], cwd=ROOT,
                                capture_output=True, timeout=120)
        if listed.returncode != 0:
            raise BenchError(f"git ls-files failed: {listed.stderr.decode(errors='replace')}")
        for name in filter(None, listed.stdout.decode().split("\0")):
            src = ROOT / name
            if src.is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / name)
    digest = subprocess.run(["bash", "-c", "find . -type f -name '*.py' -o -type f -name '*.toml' -o -type f "
                             "-name '*.json*' | sort | xargs sha256sum | sha256sum | cut -c1-12"],
                            cwd=dest, capture_output=True, text=True, timeout=120).stdout.strip()
    info = {"mode": mode, "root": dest, "sha256": digest, **({"commit": commit} if commit else {})}
    check = subprocess.run([str(VENV_BIN / "python"), "-c", "import fhir_gateway; print(fhir_gateway.__file__)"],
                           env=dict(os.environ, PYTHONPATH=str(dest)), cwd=run_dir, capture_output=True, text=True,
                           timeout=120)
    if not check.stdout.strip().startswith(str(dest)):
        raise BenchError(f"the frozen source is not the one imported: {check.stdout} {check.stderr[-800:]}")
    return info


def telehub_cmd() -> list[str]:
    """The CLI: the frozen source through the venv's python, or ``.venv/bin/telehub`` for the live checkout."""
    script = VENV_BIN / "telehub"
    if SOURCE["mode"] == "live" and script.exists():
        return [str(script)]
    return [str(VENV_BIN / "python"), "-m", "fhir_gateway.cli"]


def bench_env(db_url: str, base_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"TELEHUB_DATABASE_URL": db_url, "TELEHUB_BASE_URL": base_url, "TELEHUB_AUTH": "off",
                "TELEHUB_ENV": "dev", "PYTHONUNBUFFERED": "1"})
    env.update(EXTRA_ENV)
    if SOURCE["mode"] != "live" or not (VENV_BIN / "telehub").exists():
        env["PYTHONPATH"] = os.pathsep.join(x for x in (str(SOURCE["root"]), env.get("PYTHONPATH", "")) if x)
    return env


# ----------------------------------------------------------------------------------------------------------
# Import
# ----------------------------------------------------------------------------------------------------------

IMPORT_RE = re.compile(r"imported (\d+) resources from (\d+) records in ([\d.]+)s \(([\d.]+) resources/s\)")


def run_import(kind: str, paths: list[Path], db: Database, args: argparse.Namespace, run_dir: Path,
               profile: bool = False) -> dict[str, Any]:
    work = run_dir / f"import-{db.kind}-{kind}{'-profile' if profile else ''}"
    work.mkdir(parents=True, exist_ok=True)  # fresh cwd: the importer keeps resume state in ./var/import-state
    time_file = work / "time-v.txt"
    cmd = [*telehub_cmd(), "import", "--no-progress", "--restart", "--on-error", "skip",
           *(["--batch-size", str(args.batch_size)] if args.batch_size else []), *[str(p) for p in paths]]
    full = list(cmd)
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    raw_path = None
    if profile:
        raw_path = run_dir / f"profile-{db.kind}-import-{kind}.txt"
        full = [str(VENV_BIN / "py-spy"), "record", "--format", "raw", "--rate", str(args.profile_rate), "-o",
                str(raw_path), *PROFILE_MODES[args.profile_mode], "--", *cmd]
    elif gnu_time:
        full = [gnu_time, "-v", "-o", str(time_file), *cmd]
    log(f"import {kind} into {db.kind} {db.name}: {shlex.join(cmd)}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    snap = cpu_snapshot(None)
    started = time.perf_counter()
    proc = subprocess.Popen(full, env=bench_env(db.url, "http://127.0.0.1:1/fhir"), cwd=work, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    pg_seen: dict[int, int] = {}  # the importer's backend exits with it: sample postgres CPU while it runs
    pg_foreign: set[int] = set()
    while True:
        try:
            stdout, stderr = proc.communicate(timeout=1.0)
            break
        except subprocess.TimeoutExpired:
            for pid in postgres_pids():
                pg_seen[pid] = proc_cpu_ticks(pid)
            pg_foreign |= foreign_pg_backends()
            if time.perf_counter() - started > args.import_timeout:
                proc.kill()
                proc.communicate()
                raise BenchError(f"import {kind} did not finish in {args.import_timeout}s") from None
    done = subprocess.CompletedProcess(full, proc.returncode, stdout, stderr)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    end = cpu_snapshot(None)
    end.postgres = {**pg_seen, **end.postgres}
    end.pg_foreign |= pg_foreign
    cpu = cpu_delta(snap, end)
    (work / "stdout.txt").write_text(done.stdout)
    (work / "stderr.txt").write_text(done.stderr)
    m = IMPORT_RE.search(done.stdout)
    result: dict[str, Any] = {
        "input": kind, "command": shlex.join(cmd), "exit": done.returncode, "wall_s": round(wall, 2),
        "cpu_s": round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 2),
        "summary": m.group(0) if m else (done.stdout.strip().splitlines() or [""])[-1],
        "cpu": {"importer_cores": cpu["wrk_cores"], "postgres_cores": cpu["postgres_cores"],
                "other_cores": cpu["other_cores"]},
    }
    if m:
        result.update(resources=int(m.group(1)), records=int(m.group(2)), importer_s=float(m.group(3)),
                      importer_rps=float(m.group(4)), wall_rps=round(int(m.group(1)) / wall, 1))
    failed = re.search(r"; (\d+) failed:\n(.*)", done.stdout, re.S)
    result["failed"] = int(failed.group(1)) if failed else 0
    if failed:
        result["failed_sample"] = failed.group(2).strip().splitlines()[:10]
    if done.returncode != 0 or not m:
        result["error"] = f"exit {done.returncode}; stdout: {done.stdout[-1500:]}; stderr: {done.stderr[-1500:]}"
    if not profile:
        peak = None
        if time_file.exists():
            mm = re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_file.read_text())
            peak = int(mm.group(1)) if mm else None
            result["rss_source"] = "/usr/bin/time -v"
        if peak is None:
            peak = after.ru_maxrss  # max over all children so far: an upper bound
            result["rss_source"] = "getrusage(RUSAGE_CHILDREN).ru_maxrss (upper bound)"
        result["peak_rss_kib"] = peak
        result["db_size_bytes"] = db.size_bytes()
    else:
        result["profile_raw"] = str(raw_path)
        if raw_path and raw_path.exists():
            result["profile"] = analyse_profile(raw_path)
    status = "FAILED" if result.get("error") else "ok"
    log(f"import {kind} [{status}]: {result.get('summary') or result.get('error')} | wall {wall:.1f}s, "
        f"cpu {result['cpu']}"
        + (f", peak RSS {result.get('peak_rss_kib', 0) / 1024:.0f} MiB" if not profile else ""))
    return result


# ----------------------------------------------------------------------------------------------------------
# Preflight: every generated search once, a sample of reads (single client, also a warm-up)
# ----------------------------------------------------------------------------------------------------------

def preflight(server: Server, inputs: Inputs) -> dict[str, Any]:
    kinds: dict[str, dict[str, Any]] = {}
    for kind, url in inputs.search_urls:
        status, body, seconds = http_get(server.base + url, timeout=60)
        k = kinds.setdefault(kind, {"n": 0, "statuses": collections.Counter(), "ms": [], "entries": [],
                                    "included": [], "errors": [], "example": url})
        k["n"] += 1
        k["statuses"][status] += 1
        k["ms"].append(seconds * 1000)
        if status == 200:
            try:
                doc = json.loads(body)
                entries = doc.get("entry") or []
                k["entries"].append(sum(1 for e in entries if (e.get("search") or {}).get("mode", "match") == "match"))
                k["included"].append(sum(1 for e in entries if (e.get("search") or {}).get("mode") == "include"))
            except ValueError:
                k["errors"].append({"url": url, "status": status, "outcome": "200 but not JSON"})
        elif len(k["errors"]) < 3:
            k["errors"].append({"url": url, "status": status, "outcome": outcome_text(body)})
    out: dict[str, Any] = {}
    for kind, k in kinds.items():
        out[kind] = {"n": k["n"], "statuses": dict(k["statuses"]), "median_ms": round(statistics.median(k["ms"]), 1),
                     "max_ms": round(max(k["ms"]), 1),
                     "mean_matches": round(statistics.mean(k["entries"]), 1) if k["entries"] else None,
                     "mean_included": round(statistics.mean(k["included"]), 1) if k["included"] else None,
                     "errors": k["errors"], "example": k["example"]}
        flag = "" if set(k["statuses"]) == {200} else f"  <-- ERRORS {dict(k['statuses'])}"
        log(f"  preflight {kind:28s} n={k['n']:3d} median {out[kind]['median_ms']:7.1f} ms  "
            f"matches {out[kind]['mean_matches']}  included {out[kind]['mean_included']}{flag}")
    reads: collections.Counter[int] = collections.Counter()
    read_ms: list[float] = []
    read_errors = []
    for path in inputs.id_files:
        lines = path.read_text().split()
        for ref in random.Random(3).sample(lines, min(20, len(lines))):
            status, body, seconds = http_get(f"{server.base}/fhir/{ref}")
            reads[status] += 1
            read_ms.append(seconds * 1000)
            if status != 200 and len(read_errors) < 3:
                read_errors.append({"url": f"/fhir/{ref}", "status": status, "outcome": outcome_text(body)})
    median_read = round(statistics.median(read_ms), 1) if read_ms else None
    log(f"  preflight reads: {dict(reads)}, median {median_read} ms")
    return {"search": out, "reads": {"statuses": dict(reads), "errors": read_errors, "median_ms": median_read}}


def http_call(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, str], bytes, float]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Accept": "application/fhir+json", **({"Content-Type": "application/fhir+json"} if data else {})})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read(), time.perf_counter() - started
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read(), time.perf_counter() - started


def crud_preflight(server: Server, iterations: int) -> dict[str, Any]:
    """The CRUD iteration of bench/lua/crud.lua by one client: latency of each step, and its statuses."""
    fhir = server.base + "/fhir"
    steps: dict[str, dict[str, Any]] = {}
    errors: list[dict[str, Any]] = []

    def record(step: str, status: int, seconds: float, body: bytes, ok: set[int]) -> bool:
        s = steps.setdefault(step, {"ms": [], "statuses": collections.Counter()})
        s["ms"].append(seconds * 1000)
        s["statuses"][status] += 1
        if status not in ok and len(errors) < 5:
            errors.append({"step": step, "status": status, "outcome": outcome_text(body)})
        return status in ok

    def new_id(headers: dict[str, str]) -> str | None:
        loc = headers.get("Location") or headers.get("location") or ""
        return loc.split("/_history/")[0].rsplit("/", 1)[-1] or None

    for i in range(iterations):
        patient = {"resourceType": "Patient", "identifier": [{"system": "urn:telehub:bench", "value": f"pf-{i}"}],
                   "name": [{"family": "Preflight", "given": ["Ada"]}], "gender": "female", "birthDate": "1970-01-01"}
        st, h, b, t = http_call("POST", f"{fhir}/Patient", patient)
        if not record("POST Patient", st, t, b, {201}) or not (pid := new_id(h)):
            continue
        enc = {"resourceType": "Encounter", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": {"reference": f"Patient/{pid}"}, "period": {"start": "2024-01-01T10:00:00Z"}}
        st, h, b, t = http_call("POST", f"{fhir}/Encounter", enc)
        if not record("POST Encounter", st, t, b, {201}) or not (eid := new_id(h)):
            continue
        obs = {"resourceType": "Observation", "status": "final", "category": [{"coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": f"Patient/{pid}"}, "encounter": {"reference": f"Encounter/{eid}"},
            "effectiveDateTime": "2024-01-01T10:00:00Z",
            "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}
        st, h, b, t = http_call("POST", f"{fhir}/Observation", obs)
        if not record("POST Observation", st, t, b, {201}) or not (oid := new_id(h)):
            continue
        med = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
               "medicationCodeableConcept": {"coding": [
                   {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "314076"}]},
               "subject": {"reference": f"Patient/{pid}"}, "encounter": {"reference": f"Encounter/{eid}"}}
        st, h, b, t = http_call("POST", f"{fhir}/MedicationRequest", med)
        record("POST MedicationRequest", st, t, b, {201})
        st, h, b, t = http_call("GET", f"{fhir}/Patient/{pid}")
        record("GET Patient", st, t, b, {200})
        st, h, b, t = http_call("PUT", f"{fhir}/Patient/{pid}", {**patient, "id": pid, "gender": "male"})
        record("PUT Patient", st, t, b, {200})
        st, h, b, t = http_call("DELETE", f"{fhir}/Observation/{oid}")
        record("DELETE Observation", st, t, b, {200, 204})
    out = {step: {"n": len(s["ms"]), "statuses": dict(s["statuses"]), "median_ms": round(statistics.median(s["ms"]), 1)}
           for step, s in steps.items()}
    log("  preflight CRUD (one client): "
        + ", ".join(f"{k} {v['median_ms']} ms {v['statuses']}" for k, v in out.items()))
    for e in errors:
        log(f"  preflight CRUD ERROR {e}")
    return {"steps": out, "errors": errors}


# ----------------------------------------------------------------------------------------------------------
# wrk
# ----------------------------------------------------------------------------------------------------------

def wrk_command(figure: str, server: Server, inputs: Inputs, args: argparse.Namespace, duration: int) -> list[str]:
    threads = min(args.wrk_threads, args.connections)
    script_args: list[str] = []
    if figure == "read":
        script_args = [str(p) for p in inputs.id_files]
    elif figure == "search":
        script_args = [str(inputs.search_file)]
    elif figure == "crud":
        threads = args.connections  # one connection per wrk thread: the Lua state machine is per thread
    return ["wrk", f"-t{threads}", f"-c{args.connections}", f"-d{duration}s", "--latency", "--timeout",
            f"{args.wrk_timeout}s", "-s", str(LUA_DIR / f"{figure}.lua"), server.base,
            *(["--", *script_args] if script_args else [])]


def parse_wrk(stdout: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            out = json.loads(line[len("BENCH_JSON "):])
    m = re.search(r"Requests/sec:\s+([\d.]+)", stdout)
    out["wrk_rps_text"] = float(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", stdout)
    out["wrk_non2xx_text"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", stdout)
    names = ("connect", "read", "write", "timeout")
    out["wrk_socket_errors_text"] = dict(zip(names, map(int, m.groups()), strict=True)) if m else {}
    return out


def run_wrk(figure: str, server: Server, inputs: Inputs, args: argparse.Namespace, run_dir: Path, duration: int,
            tag: str = "", profile_to: Path | None = None) -> dict[str, Any]:
    cmd = wrk_command(figure, server, inputs, args, duration)
    env = dict(os.environ, BENCH_LUA_DIR=str(LUA_DIR))
    spy = None
    if profile_to:
        spy_cmd = [str(VENV_BIN / "py-spy"), "record", "--pid", str(server.pid), "--subprocesses", "--format", "raw",
                   "--rate", str(args.profile_rate), "--duration", str(max(1, duration - 2)), "-o", str(profile_to),
                   *PROFILE_MODES[args.profile_mode]]
        spy = subprocess.Popen(spy_cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(1.0)
    before = cpu_snapshot(server.pid)
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 90)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk {figure} did not finish in {duration + 90}s") from exc
    finally:
        if spy is not None:
            try:
                spy_out, _ = spy.communicate(timeout=60)
                if spy.returncode != 0:
                    log(f"py-spy exited {spy.returncode}: {spy_out[-800:]}")
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
    after = cpu_snapshot(server.pid)
    name = f"wrk-{server.db.kind}-{figure}{tag}.txt"
    (run_dir / name).write_text(f"$ {shlex.join(cmd)}\n{done.stdout}\n--- stderr ---\n{done.stderr}")
    if done.returncode != 0:
        raise BenchError(f"wrk {figure} exited {done.returncode}: {done.stderr.strip()[-1500:]}")
    parsed = parse_wrk(done.stdout)
    if "requests" not in parsed:
        raise BenchError(f"wrk {figure}: no BENCH_JSON line in its output (see {run_dir / name}):\n"
                         f"{done.stdout[-1500:]}")
    secs = parsed["duration_us"] / 1e6
    lat = parsed["latency_us"]
    counts: dict[str, int] = parsed.get("counts") or {}
    if figure == "crud":
        ok_status = {"POST": {"201"}, "GET": {"200"}, "PUT": {"200"}, "DELETE": {"200", "204"}}
        bad = {k: n for k, n in counts.items() if k.rsplit(" ", 1)[1] not in ok_status[k.split(" ", 1)[0]]}
    elif figure == "ceiling":
        bad = {"status>=400": parsed["errors"]["status"]} if parsed["errors"]["status"] else {}
        if parsed["wrk_non2xx_text"]:
            bad["non-2xx (wrk)"] = parsed["wrk_non2xx_text"]
    else:
        bad = {k: n for k, n in counts.items() if not k.endswith(" 200")}
    sock = {k: v for k, v in parsed["errors"].items() if k != "status" and v}
    result = {
        "figure": figure, "command": shlex.join(cmd), "requests": parsed["requests"], "seconds": round(secs, 2),
        "rps": round(parsed["requests"] / secs, 1) if secs else 0.0,
        "p50_ms": round(lat["p50"] / 1000, 2), "p90_ms": round(lat["p90"] / 1000, 2),
        "p99_ms": round(lat["p99"] / 1000, 2), "mean_ms": round(lat["mean"] / 1000, 2),
        "max_ms": round(lat["max"] / 1000, 2), "counts": counts, "bad": bad, "bad_total": sum(bad.values()),
        "socket_errors": sock, "samples": parsed.get("samples") or [], "cpu": cpu_delta(before, after),
        "wrk_output": name,
    }
    if profile_to is not None:
        result["profile_raw"] = str(profile_to)
        if profile_to.exists():
            result["profile"] = analyse_profile(profile_to)
    flag = ""
    if result["bad_total"] or sock:
        flag = f"  <-- ERRORS: {bad} {sock}"
    log(f"{server.db.kind:10s} {figure + tag:14s} {result['rps']:9.1f} req/s  p50 {result['p50_ms']:7.2f} ms  "
        f"p99 {result['p99_ms']:7.2f} ms  cpu {result['cpu']}{flag}")
    for s in result["samples"][:3]:
        log(f"    sample: {s[:400]}")
    return result


# ----------------------------------------------------------------------------------------------------------
# Profiles (py-spy raw = collapsed stacks)
# ----------------------------------------------------------------------------------------------------------

FRAME_RE = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def short_file(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/", str(ROOT) + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def frame_key(frame: str) -> str:
    m = FRAME_RE.match(frame.strip())
    if not m:
        return frame.strip()
    return f"{m.group('func')} ({short_file(m.group('file'))})"


def bucket(key: str) -> str:
    m = re.search(r"\(([^()]*)\)$", key)
    path = m.group(1) if m else key
    if path.startswith("fhir_gateway/"):
        parts = path.split("/")
        return "/".join(parts[:2]) if len(parts) > 2 else path
    top = path.split("/", 1)[0]
    if top.endswith(".py"):
        top = "stdlib:" + top[:-3]
    return top


def analyse_profile(raw: Path, top: int = 25) -> dict[str, Any]:
    self_c: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    buckets: collections.Counter[str] = collections.Counter()
    app_incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        keys = [frame_key(f) for f in frames]
        total += n
        self_c[keys[-1]] += n
        buckets[bucket(keys[-1])] += n
        for k in set(keys):
            incl[k] += n
            if "(fhir_gateway/" in k:
                app_incl[k] += n

    def pct(c: collections.Counter[str], k: int) -> list[list[Any]]:
        return [[key, round(100.0 * v / total, 1)] for key, v in c.most_common(k)] if total else []

    return {"samples": total, "self": pct(self_c, top), "inclusive_app": pct(app_incl, top),
            "inclusive_all": pct(incl, top), "self_by_package": pct(buckets, 20)}


# ----------------------------------------------------------------------------------------------------------
# One database kind, end to end
# ----------------------------------------------------------------------------------------------------------

def import_with_retries(kind: str, paths: list[Path], db: Database, args: argparse.Namespace, run_dir: Path,
                        served: bool = False) -> dict[str, Any]:
    """Import into a fresh database; again into another fresh one while other processes disturbed it."""
    attempts: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for attempt in range(args.retries + 1):
        if attempt:
            db.drop()
        db.create()
        if args.quiet_wait:
            wait_for_quiet(None, args.quiet_wait, args.quiet_threshold)
        r = run_import(kind, paths, db, args, run_dir)
        attempts.append(r)
        if best is None or r["cpu"]["other_cores"] < best["cpu"]["other_cores"]:
            best = r
        if r.get("error") or r["cpu"]["other_cores"] <= args.contaminated:
            break
        if attempt < args.retries:
            log(f"import {kind}: other processes used {r['cpu']['other_cores']} cores; importing again into a fresh "
                f"database ({attempt + 1}/{args.retries})")
    assert best is not None
    if served and best is not attempts[-1]:
        best = dict(best, note="the served database is the last attempt's")
    best["attempts"] = [{"importer_rps": x.get("importer_rps"), "other_cores": x["cpu"]["other_cores"]}
                        for x in attempts]
    return best


def run_db(kind: str, args: argparse.Namespace, inputs: Inputs, run_dir: Path, pg: dict[str, str],
           cleanup: list[Any]) -> dict[str, Any]:
    res: dict[str, Any] = {"db": kind, "imports": {}, "figures": {}, "errors": []}
    ndjson_db = Database(kind, "ndjson", run_dir, pg, keep=args.keep)
    cleanup.append(ndjson_db.drop)
    res["imports"]["ndjson"] = import_with_retries("ndjson", inputs.ndjson_paths, ndjson_db, args, run_dir, served=True)
    if "bundles" in args.imports:
        bundle_db = Database(kind, "bundles", run_dir, pg, keep=args.keep)
        cleanup.append(bundle_db.drop)
        try:
            res["imports"]["bundles"] = import_with_retries("bundles", inputs.bundle_paths, bundle_db, args, run_dir)
        finally:
            bundle_db.drop()
    for target in [p for p in args.profile if p.startswith("import-")]:
        pkind = target.split("-", 1)[1]
        pdb = Database(kind, f"prof_{pkind}", run_dir, pg, keep=False)
        cleanup.append(pdb.drop)
        pdb.create()
        try:
            paths = inputs.ndjson_paths if pkind == "ndjson" else inputs.bundle_paths
            res.setdefault("profiles", {})[target] = run_import(pkind, paths, pdb, args, run_dir, profile=True)
        finally:
            pdb.drop()
    if kind == "postgresql" and args.pg_set:
        for setting in args.pg_set:
            name, _, value = setting.partition("=")
            if not re.fullmatch(r"[a-z_]+", name) or not value:
                raise BenchError(f"--pg-set {setting!r}: expected name=value")
            psql(pg, f'ALTER DATABASE "{ndjson_db.name}" SET {name} = \'{value}\'')
        log(f"database settings of {ndjson_db.name}: {args.pg_set}")
    if kind == "postgresql" and args.analyze and res["imports"]["ndjson"].get("resources"):
        # autovacuum is off on this machine's PostgreSQL (see RESULTS.md): without statistics the planner picks
        # nested loops over whole index tables (a chained search took seconds). ANALYZE stands in for autovacuum.
        started = time.perf_counter()
        psql(pg, "ANALYZE", database=ndjson_db.name, timeout=600)
        res["analyze_s"] = round(time.perf_counter() - started, 2)
        log(f"ANALYZE of {ndjson_db.name}: {res['analyze_s']} s")
    if not res["imports"]["ndjson"].get("resources"):
        raise BenchError(f"NDJSON import into {kind} failed; nothing to serve: {res['imports']['ndjson']['error']}")

    server = Server(ndjson_db, args, run_dir)
    cleanup.append(server.stop)
    try:
        server.start()
        res["serve_command"] = (f"TELEHUB_DATABASE_URL={ndjson_db.url} TELEHUB_BASE_URL={server.base}/fhir "
                                f"TELEHUB_AUTH=off TELEHUB_ENV=dev {shlex.join(server.cmd)}")
        res["preflight"] = preflight(server, inputs)
        if "crud" in args.figures:
            res["preflight"]["crud"] = crud_preflight(server, 5 if args.quick else 20)
        for figure in args.figures:
            if not server.alive():
                raise BenchError(f"server died before {figure}:\n{tail(server.log_path)}")
            if args.warmup:
                run_wrk(figure, server, inputs, args, run_dir, args.warmup, tag="-warmup")
            attempts: list[dict[str, Any]] = []
            for attempt in range(args.retries + 1):
                busy_before = (wait_for_quiet(server.pid, args.quiet_wait, args.quiet_threshold)
                               if args.quiet_wait else None)
                r = run_wrk(figure, server, inputs, args, run_dir, args.duration,
                            tag="" if attempt == 0 else f"-retry{attempt}")
                r["others_busy_before"] = busy_before
                attempts.append(r)
                if r["cpu"]["other_cores"] <= args.contaminated:
                    break
                if attempt < args.retries:
                    log(f"{figure}: other processes used {r['cpu']['other_cores']} cores during the run; "
                        f"measuring again ({attempt + 1}/{args.retries})")
            best = min(attempts, key=lambda x: x["cpu"]["other_cores"])
            best["attempts"] = [{"rps": x["rps"], "p99_ms": x["p99_ms"], "other_cores": x["cpu"]["other_cores"]}
                                for x in attempts]
            res["figures"][figure] = best
        res["server_memory"] = server.memory()
        log(f"server peak RSS: workers' VmHWM sum {res['server_memory']['workers_vmhwm_sum_kib'] / 1024:.0f} MiB "
            f"({[w['vmhwm_kib'] // 1024 for w in res['server_memory']['workers']]} MiB), main "
            f"{res['server_memory']['main_vmhwm_kib'] / 1024:.0f} MiB")
        for figure in [p for p in args.profile if p in FIGURES]:
            raw = run_dir / f"profile-{kind}-{figure}.txt"
            res.setdefault("profiles", {})[figure] = run_wrk(figure, server, inputs, args, run_dir,
                                                             args.profile_duration, tag="-profiled", profile_to=raw)
        res["db_size_after_bytes"] = ndjson_db.size_bytes()
        res["server_log_tail"] = tail(server.log_path, 30)
    finally:
        server.stop()
        ndjson_db.drop()
    return res


# ----------------------------------------------------------------------------------------------------------
# Reporting
# ----------------------------------------------------------------------------------------------------------

def sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info(args: argparse.Namespace, pg: dict[str, str]) -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = next((line.split(":", 1)[1].strip() for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), "")
    dirty = sh(["git", "status", "--porcelain", "--untracked-files=no"])
    untracked = sh(["git", "status", "--porcelain"])
    info = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "nproc": sh(["nproc"]), "cpu_model": model, "memory": mem, "kernel": platform.release(),
        "commit": sh(["git", "rev-parse", "--short", "HEAD"]),
        "tree": ("clean" if not untracked else
                 f"uncommitted changes: {len(dirty.splitlines())} modified, "
                 f"{len([x for x in untracked.splitlines() if x.startswith('??')])} untracked paths"),
        "modified": [line.split(maxsplit=1)[-1] for line in dirty.splitlines() if line.strip()][:30],
        "diff_sha256": sh(["bash", "-c", "git diff HEAD | sha256sum | cut -c1-12"]),
        "python": sh([str(VENV_BIN / "python"), "-c", "import sys; print(sys.version.split()[0])"]),
        "granian": sh([str(VENV_BIN / "python"), "-c", "import granian; print(granian.__version__)"]),
        "sqlalchemy": sh([str(VENV_BIN / "python"), "-c", "import sqlalchemy; print(sqlalchemy.__version__)"]),
        "wrk": (sh(["wrk", "--version"]).splitlines() or [""])[0].split(" Copyright")[0],
        "command": "python " + shlex.join(["bench/run.py", *sys.argv[1:]]),
    }
    if "postgresql" in args.dbs:
        try:
            info["postgresql"] = psql(pg, "SHOW server_version").strip()
            info["pg_settings"] = psql(pg, "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM "
                                           "pg_settings WHERE name IN ('autovacuum', 'shared_buffers', 'work_mem', "
                                           "'synchronous_commit', 'fsync', 'max_connections', 'effective_cache_size')"
                                       ).strip()
        except BenchError:
            info["postgresql"] = "?"
    info["sqlite"] = sh([str(VENV_BIN / "python"), "-c", "import sqlite3; print(sqlite3.sqlite_version)"])
    return info


def verdict(figure: str, r: dict[str, Any]) -> str:
    if r.get("bad_total") or r.get("socket_errors"):
        return "**ERRORS**"
    t = TARGETS.get(figure)
    if not t:
        return ""
    misses = []
    if r["rps"] < t["rps"]:
        misses.append(f"req/s {r['rps'] / t['rps']:.0%} of target")
    if "p99_ms" in t and r["p99_ms"] > t["p99_ms"]:
        misses.append(f"p99 {r['p99_ms'] / t['p99_ms']:.1f} x target")
    return "met" if not misses else "**short**: " + ", ".join(misses)


def fmt_int(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def render(meta: dict[str, Any], results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    L: list[str] = []
    L.append(f"## Run of {meta['date']}{' (--quick smoke test: NOT the real figures)' if args.quick else ''}")
    L.append("")
    L.append(f"- Machine: {meta['nproc']} cores ({meta['cpu_model']}), {meta['memory']} RAM, Linux {meta['kernel']}; "
             "server, PostgreSQL and wrk share the cores.")
    src_commit = meta.get("source", {}).get("commit")
    if src_commit:
        L.append(f"- Code under test: commit `{src_commit}` exactly (`git archive`); the checkout's HEAD was "
                 f"`{meta['commit']}`.")
    L.append(f"- Checkout: HEAD `{meta['commit']}` (working tree: {meta['tree']}"
             + (f"; `git diff HEAD` sha256 {meta['diff_sha256']}, modified: "
                + ", ".join(f"`{m}`" for m in meta["modified"]) if meta.get("modified") else "") + "). "
             "Other engineers edit the product while benchmarks run, so the code under test is "
             + ({"snapshot": f"a copy of the working tree taken when the run started (`--source snapshot`, "
                             f"content hash {meta.get('source', {}).get('sha256', '?')})",
                 "live": "the live checkout (`--source live`)"}.get(args.source)
                or f"`git archive {meta.get('source', {}).get('commit', args.source)}` (`--source {args.source}`)")
             + ".")
    L.append(f"- Software: Python {meta['python']}, granian {meta['granian']}, SQLAlchemy {meta['sqlalchemy']}, "
             f"SQLite {meta['sqlite']}" + (f", PostgreSQL {meta['postgresql']}" if meta.get("postgresql") else "")
             + f", {meta['wrk']}.")
    if meta.get("pg_settings"):
        L.append(f"- PostgreSQL settings: {meta['pg_settings']} (shared_buffers in 8 kB pages). "
                 + ("The served PostgreSQL database was `ANALYZE`d after the import "
                    f"({', '.join(str(r.get('analyze_s')) + ' s' for r in results if r.get('analyze_s'))}), "
                    "standing in for autovacuum." if args.analyze else
                    "The served database was NOT analyzed after the import (`--no-analyze`)."))
    if args.pg_set:
        L.append(f"- **What-if experiment**: the served PostgreSQL database had `ALTER DATABASE … SET` "
                 f"{', '.join(f'`{x}`' for x in args.pg_set)} — not the product's default configuration.")
    L.append(f"- Command: `{meta['command']}`")
    L.append(f"- Settings: {args.duration} s per figure (after a {args.warmup} s warm-up run), {args.connections} "
             f"connections, `telehub serve --workers {args.workers}`"
             + (f" --threads {args.threads}" if args.threads else " (default threads)")
             + f"; input `{args.data}`" + (" (quick subset)" if args.quick else "") + ".")
    L.append("")
    L.append("### Import (`telehub import --no-progress`, fresh database each)")
    L.append("")
    L.append("| DB | input | resources | importer resources/s | wall s | wall resources/s | importer peak RSS "
             "| DB size | failed | other procs (cores) | target ≥ 1,000/s | Medplum |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in results:
        for kind, imp in r.get("imports", {}).items():
            ok = imp.get("importer_rps") is not None and imp["importer_rps"] >= TARGETS["import"]["rps"]
            v = "**FAILED**" if imp.get("error") else ("met" if ok else "**short**")
            if imp.get("failed"):
                v = f"**{imp['failed']} failed**"
            size = imp.get("db_size_bytes")
            L.append(f"| {r['db']} | {kind} | {fmt_int(imp.get('resources'))} | {fmt_int(imp.get('importer_rps'))} | "
                     f"{imp.get('wall_s')} | {fmt_int(imp.get('wall_rps'))} | "
                     f"{imp.get('peak_rss_kib', 0) / 1024:,.0f} MiB | "
                     f"{(size or 0) / 2**20:,.0f} MiB | {imp.get('failed', 0)} | "
                     f"{(imp.get('cpu') or {}).get('other_cores', '?')} | {v} | "
                     f"{MEDPLUM['import-bundles'] if kind == 'bundles' else ''} |")
    L.append("")
    L.append("CPU during the imports (cores): " + "; ".join(
        f"{r['db']} {kind}: importer {imp['cpu']['importer_cores']}, postgres {imp['cpu']['postgres_cores']}, "
        f"other processes {imp['cpu']['other_cores']}" for r in results for kind, imp in r.get("imports", {}).items()
        if imp.get("cpu")) + ".")
    L.append("")
    L.append("Import commands (run with `TELEHUB_DATABASE_URL=<fresh db>`, in a fresh working directory):")
    L.append("")
    for r in results:
        for kind, imp in r.get("imports", {}).items():
            L.append(f"- {r['db']} {kind}: `{imp['command']}`")
    L.append("")
    L.append("### HTTP figures (wrk, 127.0.0.1)")
    L.append("")
    L.append("| DB | figure | req/s | p50 ms | p99 ms | requests | non-2xx / errors | ratio to ceiling "
             "| other procs (cores) | target | Medplum 4.1 | verdict |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|")
    for r in results:
        ceiling = (r["figures"].get("ceiling") or {}).get("rps")
        for figure, f in r["figures"].items():
            t = TARGETS.get(figure, {})
            tgt = (f"≥ {t['rps']:,.0f}" + (f", p99 ≤ {t['p99_ms']:.0f} ms" if "p99_ms" in t else "")) if t else ""
            if figure == "ceiling":
                ratio = "1"
            else:
                ratio = f"{f['rps'] / ceiling:.3f}" if ceiling else "-"
            errs = f["bad_total"] + sum(f["socket_errors"].values())
            L.append(f"| {r['db']} | {figure} | {f['rps']:,.0f} | {f['p50_ms']:.1f} | {f['p99_ms']:.1f} | "
                     f"{f['requests']:,} | {errs:,} | {ratio} | {f['cpu'].get('other_cores', '?')} | {tgt} | "
                     f"{MEDPLUM.get(figure, '')} | "
                     f"{verdict(figure, f)} |")
    L.append("")
    retried = [(r["db"], fig, f["attempts"]) for r in results for fig, f in r["figures"].items()
               if len(f.get("attempts") or []) > 1]
    retried += [(r["db"], f"import {k}", i["attempts"]) for r in results for k, i in r.get("imports", {}).items()
                if len(i.get("attempts") or []) > 1]
    if retried:
        L.append("Runs repeated because other processes used more than "
                 f"{args.contaminated} cores during them (the least disturbed attempt is reported): "
                 + "; ".join(f"{db} {fig}: {att}" for db, fig, att in retried) + ".")
        L.append("")
    L.append("CPU use during each measured run (cores, out of "
             f"{meta['nproc']}; server = granian main + workers, postgres = the backends of the benchmark database and "
             "PostgreSQL's own background processes, other = everything else, e.g. other people's test runs "
             "and their PostgreSQL backends):")
    L.append("")
    L.append("| DB | figure | server | postgres | wrk | kernel (irq, kthreads) | other processes | machine busy |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        for figure, f in r["figures"].items():
            c = f["cpu"]
            L.append(f"| {r['db']} | {figure} | {c['server_cores']} | {c['postgres_cores']} | {c['wrk_cores']} | "
                     f"{c.get('kernel_cores', '?')} | {c.get('other_cores', '?')} | {c['machine_busy_pct']}% |")
    L.append("")
    L.append("wrk commands (`BENCH_LUA_DIR=bench/lua`; the CRUD mix uses one wrk thread per connection because "
             "wrk's Lua state is per thread and the create→read→update→delete chain must stay on one connection):")
    L.append("")
    seen = set()
    for r in results:
        for figure, f in r["figures"].items():
            cmd = re.sub(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:PORT", f["command"])
            cmd = cmd.replace(str(ROOT) + "/", "")
            cmd = re.sub(r"bench/out/[^ ]+/", "bench/out/RUN/", cmd)
            if cmd not in seen:
                seen.add(cmd)
                L.append(f"- {figure}: `{cmd}`")
    L.append("")
    if results:
        L.append(f"Server: `{re.sub(r'127.0.0.1:[0-9]+', '127.0.0.1:PORT', results[0].get('serve_command', ''))}`")
        L.append("")
    L.append("### Server peak RSS (after all runs; VmHWM from /proc)")
    L.append("")
    L.append("| DB | granian workers (sum of VmHWM) | per worker | now: anonymous / file-backed per worker "
             "| granian main |")
    L.append("|---|---:|---|---|---:|")
    for r in results:
        m = r.get("server_memory")
        if m:
            per = ", ".join(f"{w['vmhwm_kib'] / 1024:.0f}" for w in m["workers"])
            split = ", ".join(f"{w.get('rss_anon_kib', 0) / 1024:.0f} / {w.get('rss_file_kib', 0) / 1024:.0f}"
                              for w in m["workers"])
            L.append(f"| {r['db']} | {m['workers_vmhwm_sum_kib'] / 1024:,.0f} MiB | {per} MiB | {split} MiB | "
                     f"{m['main_vmhwm_kib'] / 1024:,.0f} MiB |")
    L.append("")
    L.append("VmHWM counts file-backed pages too: with SQLite's `mmap_size` the mapped database file shows up in "
             "every worker's RSS (shared, reclaimable), so the sum over workers over-counts it.")
    L.append("")
    L.append("### Search mix: the kinds (one client, each generated URL once, before the load run)")
    L.append("")
    L.append("| DB | kind | n | statuses | median ms | max ms | mean matches | mean included | example |")
    L.append("|---|---|---:|---|---:|---:|---:|---:|---|")
    for r in results:
        for kind, k in (r.get("preflight") or {}).get("search", {}).items():
            L.append(f"| {r['db']} | {kind} | {k['n']} | {k['statuses']} | {k['median_ms']} | {k['max_ms']} | "
                     f"{k['mean_matches']} | {k['mean_included']} | `{k['example']}` |")
    L.append("")
    crud_rows = [(r["db"], step, v) for r in results
                 for step, v in ((r.get("preflight") or {}).get("crud") or {}).get("steps", {}).items()]
    if crud_rows:
        L.append("### CRUD mix: the steps (one client, sequential iterations, before the load run)")
        L.append("")
        L.append("| DB | step | n | statuses | median ms |")
        L.append("|---|---|---:|---|---:|")
        for db, step, v in crud_rows:
            L.append(f"| {db} | {step} | {v['n']} | {v['statuses']} | {v['median_ms']} |")
        L.append("")
        reads = [(r["db"], (r.get("preflight") or {}).get("reads", {}).get("median_ms")) for r in results]
        L.append("Single-client read by id, median: " + ", ".join(f"{db} {ms} ms" for db, ms in reads) + ".")
        L.append("")
    L.append("### Errors seen")
    L.append("")
    any_err = False
    for r in results:
        for kind, imp in r.get("imports", {}).items():
            if imp.get("error") or imp.get("failed"):
                any_err = True
                L.append(f"- {r['db']} import {kind}: {imp.get('failed', 0)} failed; "
                         f"{imp.get('failed_sample') or ''} {imp.get('error', '')}")
        pf = r.get("preflight") or {}
        for kind, k in pf.get("search", {}).items():
            for e in k["errors"]:
                any_err = True
                L.append(f"- {r['db']} preflight {kind}: HTTP {e['status']} for `{e['url']}`: {e['outcome']}")
        for e in (pf.get("crud") or {}).get("errors", []):
            any_err = True
            L.append(f"- {r['db']} preflight CRUD {e['step']}: HTTP {e['status']}: {e['outcome']}")
        for e in pf.get("reads", {}).get("errors", []):
            any_err = True
            L.append(f"- {r['db']} preflight read: HTTP {e['status']} for `{e['url']}`: {e['outcome']}")
        for figure, f in r["figures"].items():
            if f["bad_total"] or f["socket_errors"]:
                any_err = True
                L.append(f"- {r['db']} {figure}: {f['bad_total']:,} unexpected answers {f['bad']}; "
                         f"socket errors {f['socket_errors']}; all answers: {f['counts']}")
                for s in f["samples"][:4]:
                    clean = s[:600].replace("`", "'").replace("\n", " ")
                    L.append(f"  - sample: `{clean}`")
    if not any_err:
        L.append("None: every answer had the expected status (201/200/204), no socket errors or timeouts.")
    L.append("")
    profiles = [(r["db"], name, p) for r in results for name, p in (r.get("profiles") or {}).items()]
    if profiles:
        L.append(f"### Profiles (py-spy --rate {args.profile_rate}, mode `{args.profile_mode}`: "
             + {"gil": "samples of the thread holding the GIL, i.e. where Python CPU time goes",
                "active": "samples of every running thread", "idle": "samples of every thread (wall time)"}[
                 args.profile_mode] + ")")
        L.append("")
        for db, name, p in profiles:
            prof = p.get("profile") or {}
            extra = (f": {p['rps']:,.0f} req/s under profiling" if "rps" in p else
                     f": {fmt_int(p.get('importer_rps'))} resources/s under profiling")
            L.append(f"#### {db} {name}{extra} ({prof.get('samples', 0)} samples, raw stacks "
                     f"`{Path(p.get('profile_raw', '')).name}`)")
            L.append("")
            L.append("Self time by package: " + ", ".join(f"{k} {v}%" for k, v in prof.get("self_by_package", [])[:12]))
            L.append("")
            L.append("| top self | % | top inclusive (Telehub code) | % |")
            L.append("|---|---:|---|---:|")
            selfs, incls = prof.get("self", [])[:15], prof.get("inclusive_app", [])[:15]
            for i in range(max(len(selfs), len(incls))):
                a = selfs[i] if i < len(selfs) else ["", ""]
                b = incls[i] if i < len(incls) else ["", ""]
                L.append(f"| `{a[0]}` | {a[1]} | `{b[0]}` | {b[1]} |")
            L.append("")
    return "\n".join(L)


def write_results(text: str, path: Path) -> None:
    block = f"{BEGIN_MARK}\n{text}\n{END_MARK}"
    if path.exists():
        old = path.read_text()
        if BEGIN_MARK in old and END_MARK in old:
            head, rest = old.split(BEGIN_MARK, 1)
            _, tail_text = rest.split(END_MARK, 1)
            path.write_text(head + block + tail_text)
            return
    path.write_text("# Telehub benchmark results\n\nGenerated by `bench/run.py` between the markers below (a new run "
                    "replaces that block; text outside it is kept). How to run: bench/README.md.\n\n" + block + "\n")


def print_summary(results: list[dict[str, Any]]) -> None:
    print("\n==== figures ====")
    for r in results:
        for kind, imp in r.get("imports", {}).items():
            print(f"{r['db']:10s} import {kind:8s} {fmt_int(imp.get('resources')):>7s} resources  "
                  f"{fmt_int(imp.get('importer_rps')):>6s} resources/s  wall {imp.get('wall_s')} s  "
                  f"peak RSS {imp.get('peak_rss_kib', 0) / 1024:.0f} MiB  failed {imp.get('failed', 0)}"
                  f"{'  ERROR ' + imp['error'][:200] if imp.get('error') else ''}")
        ceiling = (r["figures"].get("ceiling") or {}).get("rps")
        for figure, f in r["figures"].items():
            ratio = f"{f['rps'] / ceiling:.3f}" if ceiling else "-"
            print(f"{r['db']:10s} {figure:8s} {f['rps']:9.1f} req/s  p50 {f['p50_ms']:7.2f} ms  "
                  f"p99 {f['p99_ms']:7.2f} ms"
                  f"  ratio {ratio}  non-2xx/errors {f['bad_total'] + sum(f['socket_errors'].values())}  "
                  f"{verdict(figure, f)}")
        m = r.get("server_memory")
        if m:
            print(f"{r['db']:10s} server peak RSS (workers' VmHWM sum) {m['workers_vmhwm_sum_kib'] / 1024:.0f} MiB")
        for e in r.get("errors", []):
            print(f"{r['db']:10s} ERROR {e}")


# ----------------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--duration", type=int, default=None, help="seconds per figure (30; 5 with --quick)")
    p.add_argument("--warmup", type=int, default=None,
                   help="seconds of unmeasured wrk run before each figure (5; 2 with --quick)")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (not for the CRUD mix: one per connection)")
    p.add_argument("--wrk-timeout", type=int, default=10, help="wrk --timeout seconds")
    p.add_argument("--workers", type=int, default=2, help="telehub serve --workers")
    p.add_argument("--threads", type=int, default=None, help="telehub serve --threads (default: its own)")
    p.add_argument("--quick", action="store_true", help="5 s runs and a small subset of the data (smoke test)")
    p.add_argument("--figures", default=",".join(FIGURES), help="comma list of " + ",".join(FIGURES))
    p.add_argument("--imports", default="ndjson,bundles", help="ndjson is always imported (it is served); add bundles")
    p.add_argument("--batch-size", type=int, default=None, help="telehub import --batch-size (default: its own)")
    p.add_argument("--profile", default="", help="comma list of figures and/or import-ndjson,import-bundles to run "
                   "again under py-spy (after the measured runs; profiled numbers are reported separately)")
    p.add_argument("--profile-duration", type=int, default=20)
    p.add_argument("--profile-rate", type=int, default=100)
    p.add_argument("--profile-mode", choices=sorted(PROFILE_MODES), default="gil",
                   help="py-spy: gil = samples of the GIL holder (CPU in Python), active, idle (wall time)")
    p.add_argument("--per-kind", type=int, default=None, help="generated URLs per search kind (40; 8 with --quick)")
    p.add_argument("--data", type=Path, default=default_data_dir())
    p.add_argument("--results", type=Path, default=None,
                   help="markdown file to write (default bench/RESULTS.md; with --quick the run directory)")
    p.add_argument("--source", default="snapshot",
                   help="code under test: snapshot = a copy of the working tree taken at start (default; immune to "
                        "edits during the run), head or any git revision = git archive of it, live = the checkout")
    p.add_argument("--no-analyze", dest="analyze", action="store_false",
                   help="PostgreSQL: do not ANALYZE the served database after the import (autovacuum may be off)")
    p.add_argument("--pg-set", action="append", default=[], metavar="NAME=VALUE",
                   help="PostgreSQL: ALTER DATABASE <served db> SET NAME = VALUE before serving (what-if experiments, "
                        "e.g. plan_cache_mode=force_custom_plan); repeatable")
    p.add_argument("--keep", action="store_true", help="keep the benchmark databases (default: drop them)")
    p.add_argument("--quiet-wait", type=int, default=None,
                   help="before each measured run wait up to this many seconds for other processes to go idle "
                        "(300; 0 with --quick); the CPU they use during each run is reported either way")
    p.add_argument("--quiet-threshold", type=float, default=0.3, help="cores other processes may use (0.3)")
    p.add_argument("--contaminated", type=float, default=0.25,
                   help="a run during which other processes used more cores than this is repeated (0.25)")
    p.add_argument("--retries", type=int, default=None, help="repeats of a disturbed run (2; 0 with --quick)")
    p.add_argument("--ready-timeout", type=int, default=180)
    p.add_argument("--import-timeout", type=int, default=3600)
    p.add_argument("--pg-host", default="127.0.0.1")
    p.add_argument("--pg-port", default="5432")
    p.add_argument("--pg-user", default="postgres")
    args = p.parse_args(argv)
    args.dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    args.duration = args.duration or (5 if args.quick else 30)
    args.warmup = args.warmup if args.warmup is not None else (2 if args.quick else 5)
    args.per_kind = args.per_kind or (8 if args.quick else 40)
    args.quiet_wait = args.quiet_wait if args.quiet_wait is not None else (0 if args.quick else 900)
    args.retries = args.retries if args.retries is not None else (0 if args.quick else 2)
    args.figures = [f for f in args.figures.split(",") if f]
    bad = set(args.figures) - set(FIGURES)
    if bad:
        p.error(f"unknown figures: {', '.join(sorted(bad))}")
    args.imports = {x for x in args.imports.split(",") if x}
    args.profile = [x for x in args.profile.split(",") if x]
    bad = set(args.profile) - set(FIGURES) - {"import-ndjson", "import-bundles"}
    if bad:
        p.error(f"unknown --profile targets: {', '.join(sorted(bad))}")
    return args


def check_tools(args: argparse.Namespace) -> None:
    problems = []
    if not (VENV_BIN / "python").exists():
        problems.append(f"{VENV_BIN / 'python'} not found (create the venv: make run)")
    elif not (VENV_BIN / "telehub").exists():
        log(f"note: {VENV_BIN / 'telehub'} not installed; using {shlex.join(telehub_cmd())} with PYTHONPATH={ROOT}")
    if not shutil.which("wrk"):
        problems.append("wrk not found (apt-get install -y wrk)")
    if "postgresql" in args.dbs and not shutil.which("psql"):
        problems.append("psql not found (apt-get install -y postgresql-client)")
    if args.profile and not (VENV_BIN / "py-spy").exists():
        problems.append(f"--profile needs py-spy in the venv: {VENV_BIN / 'pip'} install py-spy")
    if not shutil.which("time") and not Path("/usr/bin/time").exists():
        log("note: /usr/bin/time not found (apt-get install -y time); importer RSS falls back to getrusage")
    if problems:
        raise BenchError("; ".join(problems))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pg = {"host": args.pg_host, "port": str(args.pg_port), "user": args.pg_user}
    run_dir = OUT / f"run-{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if args.quick else ''}"
    run_dir.mkdir(parents=True, exist_ok=True)
    results_md = args.results or (run_dir / "RESULTS.md" if args.quick else RESULTS_MD)

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if shutil.which("psql"):
        PG_CTX["pg"] = pg
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    cleanup: list[Any] = []
    results: list[dict[str, Any]] = []
    failed = False
    try:
        check_tools(args)
        log(f"run directory {run_dir}")
        meta = machine_info(args, pg)
        SOURCE.update(prepare_source(args.source, run_dir))
        EXTRA_ENV["TELEHUB_KEK_FILE"] = str(make_kek(run_dir))
        meta["source"] = {k: str(v) for k, v in SOURCE.items()}
        log(f"code under test: {meta['source']}")
        log(f"machine: {meta['nproc']} cores {meta['cpu_model']}, {meta['memory']}; "
            f"commit {meta['commit']} ({meta['tree']})")
        inputs = prepare_inputs(args, run_dir)
        write_id_files(inputs, run_dir)
        generate_searches(inputs, run_dir, args.per_kind)
        log(f"inputs: NDJSON {[str(p) for p in inputs.ndjson_paths]}, bundles {[str(p) for p in inputs.bundle_paths]}; "
            f"{len(inputs.search_urls)} search URLs, id files {[p.name for p in inputs.id_files]}")
        for kind in args.dbs:
            log(f"==== {kind} ====")
            try:
                results.append(run_db(kind, args, inputs, run_dir, pg, cleanup))
            except BenchError as exc:
                failed = True
                log(f"FAILED on {kind}: {exc}")
                results.append({"db": kind, "imports": {}, "figures": {}, "errors": [str(exc)]})
            finally:
                while cleanup:
                    cleanup.pop()()
            (run_dir / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=str))
        text = render(meta, results, args)
        errors = [f"- {r['db']}: {e}" for r in results for e in r.get("errors", [])]
        if errors:
            text += "\n### Runner failures\n\n" + "\n".join(errors) + "\n"
        write_results(text, results_md)
        print_summary(results)
        log(f"wrote {results_md} and {run_dir / 'results.json'}")
    except BenchError as exc:
        log(f"FAILED: {exc}")
        return 2
    except KeyboardInterrupt as exc:
        log(f"interrupted ({exc}); cleaning up")
        return 130
    finally:
        while cleanup:
            try:
                cleanup.pop()()
            except Exception as exc:  # keep cleaning
                log(f"cleanup error: {exc}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
