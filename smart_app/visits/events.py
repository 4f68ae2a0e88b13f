"""Live visit events: an in-process bus (one worker, tests) and a Redis pub/sub bus (several workers agree).

Events are small JSON objects without PHI (states, ids, counts); the pages re-read what they need.
:func:`sse` frames one event for ``text/event-stream``. Subscriptions register *before* they are
iterated, so an event published right after ``subscribe()`` returns is never lost.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
import redis


def channel_for(visit_id: str) -> str:
    return f"visit:{visit_id}"


def sse(event: Mapping[str, Any] | None, *, event_id: str | None = None) -> str:
    """One server-sent-events frame (a comment line for a keep-alive)."""
    if event is None:
        return ": keep-alive\n\n"
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event.get('type', 'message')}\ndata: {orjson.dumps(dict(event)).decode()}\n\n"


class _Subscription:
    def __init__(self, bus: InProcessBus, channel: str, timeout: float) -> None:
        self.bus, self.channel, self.timeout = bus, channel, timeout
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue()
        bus._add(channel, self.queue)

    def __iter__(self) -> Iterator[dict[str, Any] | None]:
        return self

    def __next__(self) -> dict[str, Any] | None:
        try:
            return self.queue.get(timeout=self.timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.bus._remove(self.channel, self.queue)


class InProcessBus:
    """Fan-out to queues in this process: right for one worker and for tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str, list[queue.Queue[dict[str, Any]]]] = {}

    def _add(self, channel: str, q: queue.Queue[dict[str, Any]]) -> None:
        with self._lock:
            self._subs.setdefault(channel, []).append(q)

    def _remove(self, channel: str, q: queue.Queue[dict[str, Any]]) -> None:
        with self._lock:
            if q in self._subs.get(channel, []):
                self._subs[channel].remove(q)

    def publish(self, channel: str, event: Mapping[str, Any]) -> None:
        with self._lock:
            targets = list(self._subs.get(channel, []))
        for q in targets:
            q.put(dict(event))

    def subscribe(self, channel: str, *, timeout: float = 15.0) -> _Subscription:
        return _Subscription(self, channel, timeout)


class _RedisSubscription:
    def __init__(self, client: redis.Redis, name: str, timeout: float) -> None:
        self.timeout = timeout
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        self.pubsub.subscribe(name)
        self.pubsub.get_message(timeout=1.0)  # wait for the subscribe confirmation: no event is missed after

    def __iter__(self) -> Iterator[dict[str, Any] | None]:
        return self

    def __next__(self) -> dict[str, Any] | None:
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self.pubsub.get_message(timeout=left)
            if message and message.get("type") == "message":
                data: dict[str, Any] = orjson.loads(message["data"])
                return data
        return None

    def close(self) -> None:
        self.pubsub.close()


class RedisBus:
    """Redis pub/sub under a key prefix, so every worker behind the load balancer sees every event."""

    def __init__(self, client: redis.Redis, prefix: str = "telehub:") -> None:
        self.client = client
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, prefix: str = "telehub:") -> RedisBus:
        return cls(redis.Redis.from_url(url), prefix)

    def publish(self, channel: str, event: Mapping[str, Any]) -> None:
        self.client.publish(self.prefix + channel, orjson.dumps(dict(event)))

    def subscribe(self, channel: str, *, timeout: float = 15.0) -> _RedisSubscription:
        return _RedisSubscription(self.client, self.prefix + channel, timeout)
