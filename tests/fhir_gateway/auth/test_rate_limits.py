"""Rate limits on /auth/login (HTML 429) and /auth/token (OAuth JSON 429), in memory and in Redis."""
from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest
import redis

from fhir_gateway.auth import ratelimit
from fhir_gateway.auth.ratelimit import Counter, Limit, Limits, MemoryCounter, RedisCounter, Throttle, make_counter

from .conftest import Clock, Env, assertion, begin_login, page_error, post_login

TOO_MANY = {"error": "invalid_request", "error_description": "too many requests"}


@pytest.fixture(params=["memory", "redis"])
def counter(request: pytest.FixtureRequest) -> Iterator[tuple[Counter, Clock | None]]:
    """Each backend; the in-memory one runs on a clock the test moves (Redis keeps its own time)."""
    if request.param == "memory":
        clock = Clock()
        yield MemoryCounter(clock), clock
        return
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_key_prefix")  # its keys are deleted after the test
    client = redis.Redis.from_url(url)
    yield RedisCounter(client, prefix + "rl:"), None
    client.close()


def install(env: Env, counter: Counter, limits: Limits | None = None) -> Throttle:
    return ratelimit.init_app(env.app, None, throttle=Throttle(counter, limits))


def token_post(env: Env, ip: str = "127.0.0.1", **data: str) -> object:
    body = {"grant_type": "authorization_code", "code": "BAD_CODE", "redirect_uri": "https://app.example/cb",
            "client_id": "public-app", "code_verifier": "x" * 50}
    body.update(data)
    return env.client.post("/fhir/auth/token", data=body, environ_base={"REMOTE_ADDR": ip})


def test_counter_counts_within_a_window(counter: tuple[Counter, Clock | None]) -> None:
    c, clock = counter
    assert [c.hit("k", 60)[0] for _ in range(3)] == [1, 2, 3]
    remaining = c.hit("k", 60)[1]
    assert 0 < remaining <= 60
    assert c.hit("other", 60)[0] == 1
    if clock is not None:
        clock.advance(61)
        assert c.hit("k", 60) == (1, 60)


def test_redis_counter_is_atomic_and_expires(redis_url: str, redis_key_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    c = RedisCounter(client, redis_key_prefix)
    throttle = Throttle(c)
    throttle.login("10.1.2.3", "alice@example.org")
    keys = [k.decode() for k in client.scan_iter(match=redis_key_prefix + "*")]
    assert len(keys) == 2 and all("alice" not in k and "10.1.2.3" not in k for k in keys)  # hashed
    assert all(0 < int(client.pttl(k)) <= 60_000 for k in keys)  # type: ignore[arg-type]
    client.pexpire(keys[0], 1)
    time.sleep(0.01)
    assert c.hit(keys[0][len(redis_key_prefix):], 60)[0] == 1  # a new window after expiry
    client.close()


def test_make_counter_picks_the_backend(redis_url: str, redis_key_prefix: str) -> None:
    assert isinstance(make_counter(None), MemoryCounter)
    assert isinstance(make_counter(redis_url, redis_key_prefix), RedisCounter)


def test_login_limit_per_ip_and_username(sqlite_env: Env, counter: tuple[Counter, Clock | None]) -> None:
    env, (c, clock) = sqlite_env, counter
    install(env, c)
    txn = begin_login(env)
    for _ in range(10):
        assert post_login(env, txn, "nobody", password="wrong password").status_code == 401
    resp = post_login(env, txn, "nobody", password="wrong password")
    assert resp.status_code == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 60 and "no-store" in resp.headers["Cache-Control"]
    assert "Too many sign-in attempts" in (page_error(resp) or "") and 'name="otp"' in resp.get_data(as_text=True)
    assert post_login(env, txn, "nobody", ip="10.9.9.9", password="wrong password").status_code == 401  # other IP
    assert post_login(env, txn, "pat").status_code == 200  # other user, same IP
    expired = post_login(env, "no-such-txn", "nobody")
    assert expired.status_code == 429 and expired.headers["Retry-After"]
    assert "Too many" in expired.get_data(as_text=True)
    if clock is not None:
        clock.advance(61)
        assert post_login(env, txn, "nobody", password="wrong password").status_code == 401


def test_login_limit_per_ip(sqlite_env: Env, counter: tuple[Counter, Clock | None]) -> None:
    env, (c, _) = sqlite_env, counter
    install(env, c)
    txn = begin_login(env)
    for i in range(30):
        assert post_login(env, txn, f"user{i}", password="wrong password", ip="10.0.0.2").status_code == 401
    resp = post_login(env, txn, "user30", password="wrong password", ip="10.0.0.2")
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
    assert post_login(env, txn, "user30", password="wrong password", ip="10.0.0.3").status_code == 401


def test_token_limit_per_client_and_ip(sqlite_env: Env, counter: tuple[Counter, Clock | None]) -> None:
    env, (c, clock) = sqlite_env, counter
    install(env, c)
    for _ in range(60):
        assert token_post(env).status_code == 400  # type: ignore[attr-defined]
    resp = token_post(env)
    assert resp.status_code == 429  # type: ignore[attr-defined]
    assert resp.get_json() == TOO_MANY  # type: ignore[attr-defined]
    headers = resp.headers  # type: ignore[attr-defined]
    assert 1 <= int(headers["Retry-After"]) <= 60 and "no-store" in headers["Cache-Control"]
    assert headers["Content-Type"] == "application/json"
    assert token_post(env, ip="10.0.0.7").status_code == 400  # type: ignore[attr-defined]
    assert token_post(env, client_id="conf-app").status_code != 429  # type: ignore[attr-defined]
    if clock is not None:
        clock.advance(61)
        assert token_post(env).status_code == 400  # type: ignore[attr-defined]


def test_token_limit_keys_on_basic_auth_and_assertion_issuer(sqlite_env: Env) -> None:
    env = sqlite_env
    install(env, MemoryCounter(), Limits(token=Limit("token", 2, 60)))
    basic = {"Authorization": "Basic " + base64.b64encode(b"conf-app:wrong").decode()}
    codes = [env.client.post("/fhir/auth/token", data={"grant_type": "client_credentials"}, headers=basic).status_code
             for _ in range(3)]
    assert codes[:2] != [429, 429] and codes[2] == 429
    jwt_body = {"grant_type": "client_credentials", "scope": "system/*.rs",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
    codes = [env.client.post("/fhir/auth/token", data={**jwt_body, "client_assertion": assertion(env)}).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]  # the backend client has its own budget, apart from conf-app's
