"""Event buses: in-process, and Redis pub/sub with two independent clients (two workers)."""
from __future__ import annotations

import threading

import redis

from smart_app.visits.events import InProcessBus, RedisBus, channel_for, sse
from smart_app.visits.ports import EventBus


def _roundtrip(publisher: EventBus, subscriber: EventBus) -> None:
    sub = subscriber.subscribe(channel_for("v1"), timeout=2)
    other = subscriber.subscribe(channel_for("v2"), timeout=0.2)
    try:
        publisher.publish(channel_for("v1"), {"type": "state", "state": "waiting"})
        assert next(sub) == {"type": "state", "state": "waiting"}
        assert next(other) is None  # another visit's channel hears nothing: a keep-alive tick
    finally:
        sub.close()
        other.close()


def test_in_process_bus() -> None:
    bus = InProcessBus()
    assert isinstance(bus, EventBus)
    _roundtrip(bus, bus)


def test_in_process_bus_fans_out_to_every_subscriber_across_threads() -> None:
    bus = InProcessBus()
    subs = [bus.subscribe("c", timeout=2) for _ in range(3)]
    threading.Thread(target=bus.publish, args=("c", {"type": "chat", "id": "1"})).start()
    assert [next(s) for s in subs] == [{"type": "chat", "id": "1"}] * 3
    for s in subs:
        s.close()
    bus.publish("c", {"type": "x"})  # no subscribers left: nothing breaks


def test_redis_bus_two_workers_agree(redis_url: str, redis_key_prefix: str) -> None:
    worker_a = RedisBus(redis.Redis.from_url(redis_url), prefix=redis_key_prefix)
    worker_b = RedisBus(redis.Redis.from_url(redis_url), prefix=redis_key_prefix)
    assert isinstance(worker_a, EventBus)
    try:
        _roundtrip(worker_a, worker_b)
    finally:
        worker_a.client.close()
        worker_b.client.close()


def test_redis_bus_respects_the_prefix(redis_url: str, redis_key_prefix: str) -> None:
    ours = RedisBus(redis.Redis.from_url(redis_url), prefix=redis_key_prefix)
    theirs = RedisBus(redis.Redis.from_url(redis_url), prefix=redis_key_prefix + "other:")
    sub = ours.subscribe("c", timeout=0.3)
    try:
        theirs.publish("c", {"type": "x"})
        assert next(sub) is None
    finally:
        sub.close()
        ours.client.close()
        theirs.client.close()


def test_sse_frames() -> None:
    assert sse(None) == ": keep-alive\n\n"
    assert sse({"type": "chat", "id": "7"}, event_id="3") == 'id: 3\nevent: chat\ndata: {"type":"chat","id":"7"}\n\n'
