"""Fixtures the whole Telehub suite shares.

Databases and Redis keys are isolated per test, so the suite runs in parallel
(``pytest -n auto``, one session per xdist worker):

- ``sqlite_url``: a fresh SQLite file under the test's ``tmp_path``.
- ``postgres_url``: a fresh PostgreSQL database ``telehub_test_<uuid>``, created before
  the test and dropped ``WITH (FORCE)`` after it, as a SQLAlchemy URL
  (``postgresql+psycopg://…``). The admin connection is
  ``postgresql://postgres@127.0.0.1:5432/postgres`` unless ``TELEHUB_TEST_POSTGRES_URL``
  says otherwise. Tests using it are marked ``postgres``.
- ``database_url``: both of the above, as test ids ``[sqlite]`` and ``[postgresql]``,
  for the storage contract tests that must pass on both.
- ``redis_url`` + ``redis_key_prefix``: the Redis server (``TELEHUB_TEST_REDIS_URL``,
  default ``redis://127.0.0.1:6379/0``) and a key prefix unique to the test; every key
  under that prefix is deleted after the test. Code under test must put its keys under
  the prefix. Tests using it are marked ``redis``.
- ``shared_data``: ``../shared/data`` beside the repository.

A service or data set that is missing skips its tests on a developer's machine, and
fails them when ``CI=true``: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import pytest
import redis
from psycopg import sql
from sqlalchemy.engine import make_url

# ``pytester`` lets tests/test_conftest_fixtures.py run these fixtures in a child session.
pytest_plugins = ("pytester",)

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
TEST_DATABASE_PREFIX = "telehub_test_"
TEST_REDIS_PREFIX = "telehub_test:"
CONNECT_TIMEOUT_S = 3


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it under CI=true where a skip would hide a broken set-up."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: this is required, not skipped)", pytrace=False)
    pytest.skip(reason)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def pytest_configure(config: pytest.Config) -> None:
    # Also registered in pyproject.toml; repeated here so the fixtures work in any session.
    config.addinivalue_line("markers", "postgres: needs the PostgreSQL server on 127.0.0.1:5432")
    config.addinivalue_line("markers", "redis: needs the Redis server on 127.0.0.1:6379")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "postgres_url" in names or "postgres_admin_url" in names:
            item.add_marker(pytest.mark.postgres)
        if "redis_url" in names or "redis_server_url" in names:
            item.add_marker(pytest.mark.redis)


# ------------------------------------------------------------------ shared data


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: Synthea patients, R4 examples and definitions, vendor recordings…"""
    if not SHARED_DATA.is_dir():
        unavailable(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


# ------------------------------------------------------------------ databases


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """libpq URL of the PostgreSQL maintenance database, checked once per session."""
    url = make_url(os.environ.get("TELEHUB_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_ADMIN_URL)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    problem = None
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        problem = _one_line(exc)
    if problem is not None:  # reported outside the except block: one clear line, no chained traceback
        unavailable(f"PostgreSQL unreachable at {url.render_as_string(hide_password=True)}: {problem}")
    return conninfo


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """SQLAlchemy URL of a new, empty database that is dropped after the test."""
    name = f"{TEST_DATABASE_PREFIX}{uuid.uuid4().hex}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = make_url(postgres_admin_url).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """SQLAlchemy URL of a SQLite file (not yet created) in the test's own tmp_path."""
    return f"sqlite:///{tmp_path / 'telehub.sqlite3'}"


_DATABASE_FIXTURES = {"sqlite": "sqlite_url", "postgresql": "postgres_url"}


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest) -> str:
    """The same test on SQLite and on PostgreSQL: a fresh database each time."""
    url: str = request.getfixturevalue(_DATABASE_FIXTURES[request.param])
    return url


# ------------------------------------------------------------------ Redis


def _redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=10)


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    """URL of the test Redis server, checked once per session."""
    url = os.environ.get("TELEHUB_TEST_REDIS_URL") or DEFAULT_REDIS_URL
    client = _redis_client(url)
    problem = None
    try:
        client.ping()
    except redis.RedisError as exc:
        problem = _one_line(exc)
    finally:
        client.close()
    if problem is not None:
        unavailable(f"Redis unreachable at {make_url(url).render_as_string(hide_password=True)}: {problem}")
    return url


@pytest.fixture
def redis_key_prefix() -> str:
    """A key prefix no other test uses, e.g. ``telehub_test:3f2a…:``."""
    return f"{TEST_REDIS_PREFIX}{uuid.uuid4().hex}:"


@pytest.fixture
def redis_url(redis_server_url: str, redis_key_prefix: str) -> Iterator[str]:
    """The Redis URL; after the test every key under ``redis_key_prefix`` is deleted."""
    yield redis_server_url
    client = _redis_client(redis_server_url)
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{redis_key_prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
    finally:
        client.close()


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ],
)
def module_database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like ``database_url``, but one fresh database per test module (for data loaded once)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'module.sqlite3'}"
        return
    admin: str = request.getfixturevalue("postgres_admin_url")
    name = f"{TEST_DATABASE_PREFIX}{uuid.uuid4().hex}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(admin).set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Any]:
    """Playwright's sync driver, once per test process (it allows a single driver per thread)."""
    from tests.browser import playwright_session

    with playwright_session() as driver:
        yield driver


@pytest.fixture(scope="session")
def headless_browser(playwright_driver: Any) -> Iterator[Any]:
    """One shared headless Chromium per test process."""
    from tests.browser import launch

    with launch(playwright_driver) as browser:
        yield browser
