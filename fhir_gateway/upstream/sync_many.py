"""Sync many patients at once: a bounded thread pool over one connection's client.

Upstream calls are I/O-bound (an EHR answers in tens of milliseconds to seconds), so patients are
fetched in parallel; the connection's token bucket (:mod:`.throttle`, shared by every worker and,
with Redis, every process) still caps the call rate at the profile's ``rate_limit``, and the pool
is never larger than the bucket's burst (more threads could only wait). Each worker thread has its
own shallow copy of the client (own HTTP session and call counter) sharing the token cache,
throttle, circuit breaker and auditor. Each patient is still one :func:`~.sync.sync_patient`:
fetch-all, then one write transaction; one patient's upstream error is reported, not fatal to
the others.
"""
from __future__ import annotations

import copy
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from fhir_gateway.rest.context import FhirServices
from fhir_gateway.upstream.client import UpstreamClient
from fhir_gateway.upstream.errors import UpstreamError
from fhir_gateway.upstream.sync import SyncReport, sync_patient


@dataclass
class ManyReport:
    reports: list[SyncReport | None] = field(default_factory=list)  # in the order of the patients given
    failures: dict[int, str] = field(default_factory=dict)  # index → "ErrorClass: message" (no PHI)
    workers: int = 1
    wall_s: float = 0.0

    @property
    def calls(self) -> int:
        return sum(r.calls for r in self.reports if r is not None)

    def summary(self) -> str:
        done = sum(r is not None for r in self.reports)
        return (f"{done}/{len(self.reports)} patients synced with {self.workers} worker(s) in {self.wall_s:.2f}s, "
                f"{self.calls} upstream calls" + (f"; {len(self.failures)} failed" if self.failures else ""))


def pool_size(client: UpstreamClient, patients: int, requested: int | None = None) -> int:
    """At most the bucket's burst, at most one per patient, at least one."""
    burst = client.profile.rate_limit.burst
    return max(1, min(requested or burst, burst, patients))


def worker_client(client: UpstreamClient) -> UpstreamClient:
    """A copy for one thread: its own session (same transports, TLS settings and hooks) and call counter;
    token cache, throttle, breaker and auditor are shared."""
    clone = copy.copy(client)
    source, session = client.session, requests.Session()
    for prefix, adapter in source.adapters.items():  # same transports (and connection pools)
        session.mount(prefix, adapter)
    session.headers.update(source.headers)
    session.hooks = {event: list(hooks) for event, hooks in source.hooks.items()}
    session.auth, session.proxies, session.cert = source.auth, dict(source.proxies), source.cert
    session.verify, session.trust_env, session.max_redirects = source.verify, source.trust_env, source.max_redirects
    clone.session = session
    clone.calls = 0
    return clone


def sync_many(services: FhirServices, client: UpstreamClient, patients: Sequence[str], *,
              workers: int | None = None, since: str | None = None,
              types: set[str] | None = None) -> ManyReport:
    size = pool_size(client, len(patients), workers)
    report = ManyReport(reports=[None] * len(patients), workers=size)
    local = threading.local()

    def one(index: int) -> None:
        mine = getattr(local, "client", None)
        if mine is None:
            mine = local.client = worker_client(client)
        try:
            report.reports[index] = sync_patient(services, mine, patients[index], since=since, types=types)
        except UpstreamError as exc:
            report.failures[index] = f"{type(exc).__name__}: {exc}"

    started = time.perf_counter()
    if size == 1:
        for i in range(len(patients)):
            one(i)
    else:
        with ThreadPoolExecutor(max_workers=size, thread_name_prefix="telehub-sync") as pool:
            list(pool.map(one, range(len(patients))))
    report.wall_s = time.perf_counter() - started
    return report
