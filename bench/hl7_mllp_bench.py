"""MLLP end-to-end throughput: 8 concurrent senders, each waiting for its ACK (sent after commit).

    python bench/hl7_mllp_bench.py [--db sqlite|postgresql|both] [--messages 100] [--senders 8]
                                   [--workers 1] [--mix adt|samples]

Starts ``python -m fhir_gateway.hl7 listen`` on a fresh database (a SQLite file in a temp
directory; a new PostgreSQL database under TELEHUB_BENCH_POSTGRES_URL, default
postgresql://postgres@127.0.0.1:5432/postgres, dropped afterwards), warms it up, then
streams ``--messages`` per sender and prints messages/s and ACK latency. Senders run as
threads of this process and share the machine's cores with the listener and the database:
what is measured is the whole box. ``--mix samples`` sends the shared FHIR-Converter inputs
the hub maps (MSH-3/MSH-10 rewritten per sender), ``adt`` small ADT A04/A08 messages.
"""
from __future__ import annotations

import argparse
import base64
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fhir_gateway.hl7.ack import ack_code_of  # noqa: E402
from fhir_gateway.hl7.client import MllpClient  # noqa: E402

SAMPLES = REPO.parent / "shared" / "data" / "hl7v2" / "fhir-converter" / "input" / "hl7v2"


def adt_message(sender: int, n: int, run: str) -> bytes:
    trigger = "A04" if n < 20 else "A08"
    return (f"MSH|^~\\&|SND{sender}|CLINIC|TELEHUB|HUB|20260101120000||ADT^{trigger}^ADT_A01|{run}-{sender}-{n}"
            "|P|2.5.1\r"
            f"EVN|{trigger}|20260101120000\r"
            f"PID|1||{run}{sender}-{n % 20}^^^CLINIC&1.2.3&ISO^MR||Fam{n}^Jane||19800101|F|||1 Main St^^Town^MA^02100\r"
            f"PV1|1|O|||||1234^Who^Doctor|||||||||||V{run}{sender}-{n}\r").encode()


def sample_messages() -> list[bytes]:
    """The shared samples the hub accepts (checked with the pure mapper only)."""
    from mappers.hl7v2 import HL7v2Error, convert

    out = []
    for path in sorted(SAMPLES.glob("*.hl7")):
        raw = path.read_bytes().lstrip(b"\xef\xbb\xbf").replace(b"\r\n", b"\r").replace(b"\n", b"\r")
        try:
            convert(raw)
        except HL7v2Error:
            continue
        out.append(raw)
    return out


def rewrite(raw: bytes, sender: int, control: str) -> bytes:
    msh, _, rest = raw.partition(b"\r")
    sep = msh[3:4]
    fields = msh.split(sep)
    fields[2] = f"SND{sender}".encode()
    fields[9] = control.encode()
    return sep.join(fields) + b"\r" + rest


class Listener:
    def __init__(self, url: str, workers: int, kek: str) -> None:
        env = {**os.environ, "TELEHUB_DATABASE_URL": url, "TELEHUB_KEK_FILE": kek, "TELEHUB_ENV": "test",
               "PYTHONPATH": str(REPO)}
        args = [sys.executable, "-m", "fhir_gateway.hl7", "listen", "--port", "0"]
        if workers > 1:
            args += ["--workers", str(workers)]
        self.log = tempfile.NamedTemporaryFile(prefix="hl7-bench-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, env=env, cwd=REPO)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening on"):
            raise SystemExit(f"listener did not start (log: {self.log.name})")
        self.port = int(line.strip().rsplit(":", 1)[1].split()[0])

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.log.close()


def stream(port: int, messages: list[list[bytes]]) -> tuple[float, list[float], dict[str, int]]:
    latencies: list[list[float]] = [[] for _ in messages]
    codes: dict[str, int] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(len(messages) + 1)

    def run(i: int) -> None:
        with MllpClient("127.0.0.1", port, timeout=120) as client:
            barrier.wait()
            for raw in messages[i]:
                t = time.perf_counter()
                code = ack_code_of(client.send(raw)) or "?"
                latencies[i].append(time.perf_counter() - t)
                with lock:
                    codes[code] = codes.get(code, 0) + 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(messages))]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - start, [x for lat in latencies for x in lat], codes


def database(kind: str) -> tuple[str, object]:
    if kind == "sqlite":
        tmp = tempfile.TemporaryDirectory(prefix="hl7-bench-")
        return f"sqlite:///{tmp.name}/bench.db", tmp
    import psycopg

    admin = os.environ.get("TELEHUB_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"telehub_hl7_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    class Drop:
        def cleanup(self) -> None:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')

    return re.sub(r"/[^/]*$", f"/{name}", admin).replace("postgresql://", "postgresql+psycopg://", 1), Drop()


def bench(kind: str, args: argparse.Namespace, kek: str) -> None:
    url, handle = database(kind)
    run = uuid.uuid4().hex[:6]
    samples = sample_messages() if args.mix == "samples" else []

    def batch(prefix: str, count: int) -> list[list[bytes]]:
        if samples:
            return [[rewrite(samples[(s * 7 + n) % len(samples)], s, f"{prefix}{run}-{s}-{n}") for n in range(count)]
                    for s in range(args.senders)]
        return [[adt_message(s, n, prefix + run) for n in range(count)] for s in range(args.senders)]

    try:
        listener = Listener(url, args.workers, kek)
        try:
            stream(listener.port, batch("W", args.warmup))
            cpu0 = os.times()
            wall, lat, codes = stream(listener.port, batch("M", args.messages))
            cpu1 = os.times()
        finally:
            listener.stop()
    finally:
        handle.cleanup()  # type: ignore[attr-defined]
    total = sum(codes.values())
    lat_ms = sorted(x * 1000 for x in lat)
    p99 = lat_ms[int(len(lat_ms) * 0.99) - 1]
    print(f"{kind:10s} mix={args.mix:7s} workers={args.workers} senders={args.senders} messages={total} "
          f"wall={wall:.2f}s  {total / wall:7.1f} msg/s  ACK latency p50={statistics.median(lat_ms):.1f} ms "
          f"p99={p99:.1f} ms  codes={codes}  "
          f"bench-process CPU={cpu1.user - cpu0.user + cpu1.system - cpu0.system:.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--messages", type=int, default=100, help="per sender")
    parser.add_argument("--warmup", type=int, default=10, help="per sender")
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--mix", choices=["adt", "samples"], default="adt")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kek = os.path.join(tmp, "kek")
        with open(os.open(kek, os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
            fh.write(base64.b64encode(os.urandom(32)).decode())
        for kind in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
            bench(kind, args, kek)


if __name__ == "__main__":
    main()
