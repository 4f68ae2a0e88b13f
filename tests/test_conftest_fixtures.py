"""The shared fixtures in tests/conftest.py do what the suite relies on.

In this session: each database fixture hands over a working, empty database.
In a child pytest session (pytester) running the same conftest: the databases and keys
exist during a test and are gone after it, every test gets its own, and a missing
service skips outside CI but fails under CI=true.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import make_url

CONFTEST = Path(__file__).with_name("conftest.py")


def _database_exists(admin_url: str, name: str) -> bool:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone()
    assert row is not None
    return bool(row[0])


def _round_trip(url: str) -> str:
    """Create a table, write and read a row; return the database's own name for itself."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE probe (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
            conn.execute(sa.text("INSERT INTO probe (id, body) VALUES (1, 'ok')"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT body FROM probe WHERE id = 1")).scalar_one() == "ok"
            if engine.dialect.name == "postgresql":
                return str(conn.execute(sa.text("SELECT current_database()")).scalar_one())
            return str(engine.url.database)
    finally:
        engine.dispose()


# ------------------------------------------------------------------ this session


def test_postgres_url_is_a_new_database(postgres_url: str, postgres_admin_url: str) -> None:
    url = make_url(postgres_url)
    assert url.drivername == "postgresql+psycopg"
    assert url.database is not None and url.database.startswith("telehub_test_")
    assert _database_exists(postgres_admin_url, url.database)
    assert _round_trip(postgres_url) == url.database


def test_sqlite_url_is_a_new_file_in_tmp_path(sqlite_url: str, tmp_path: Path) -> None:
    path = Path(make_url(sqlite_url).database or "")
    assert path.parent == tmp_path
    assert not path.exists()
    _round_trip(sqlite_url)
    assert path.is_file()


def test_database_url_covers_both_backends(database_url: str, request: pytest.FixtureRequest) -> None:
    backend = request.node.callspec.params["database_url"]
    assert make_url(database_url).get_backend_name() == backend
    assert (request.node.get_closest_marker("postgres") is not None) == (backend == "postgresql")
    _round_trip(database_url)


def test_redis_url_with_unique_prefix(redis_url: str, redis_key_prefix: str) -> None:
    assert redis_key_prefix.startswith("telehub_test:") and redis_key_prefix.endswith(":")
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(f"{redis_key_prefix}probe", "ok")
        assert client.get(f"{redis_key_prefix}probe") == b"ok"
    finally:
        client.close()


def test_shared_data_is_the_shared_folder(shared_data: Path) -> None:
    assert shared_data.name == "data" and shared_data.parent.name == "shared"
    assert (shared_data / "synthea").is_dir()


# ------------------------------------------------------------------ a child session

CHILD_TESTS = """
import json, os, pathlib

import psycopg, redis
import sqlalchemy as sa

RECORD = pathlib.Path(os.environ["FIXTURE_RECORD"])


def record(kind, value):
    with RECORD.open("a") as f:
        f.write(json.dumps([kind, value]) + "\\n")


def in_use(url):
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))  # fails if not empty
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
    finally:
        engine.dispose()


def test_pg_first(postgres_url):
    in_use(postgres_url)
    record("postgres", postgres_url)


def test_pg_second(postgres_url):
    in_use(postgres_url)
    record("postgres", postgres_url)


def test_both(database_url):
    in_use(database_url)
    record("postgres" if database_url.startswith("postgresql") else "sqlite", database_url)


def test_sqlite(sqlite_url):
    in_use(sqlite_url)
    record("sqlite", sqlite_url)


def test_redis(redis_url, redis_key_prefix):
    client = redis.Redis.from_url(redis_url)
    try:
        for i in range(2500):  # more than one deletion batch
            client.set(f"{redis_key_prefix}{i}", i)
        assert client.exists(f"{redis_key_prefix}0")
    finally:
        client.close()
    record("redis", redis_key_prefix)


def test_shared(shared_data):
    record("shared", str(shared_data))
"""

CHILD_INI = "[pytest]\nfilterwarnings = error\naddopts = -p no:cacheprovider -p no:xdist\n"


@pytest.fixture
def child(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makeini(CHILD_INI)
    pytester.makepyfile(test_child=CHILD_TESTS)
    monkeypatch.setenv("FIXTURE_RECORD", str(pytester.path / "record.jsonl"))
    return pytester


def _records(child: pytest.Pytester) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    path = child.path / "record.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        kind, value = json.loads(line)
        out.setdefault(kind, []).append(value)
    return out


def test_child_session_creates_and_drops(
    child: pytest.Pytester, postgres_admin_url: str, redis_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    result = child.runpytest_subprocess("-q", timeout=300)
    # The child's repository has no ../shared/data beside it: under CI=true that fails.
    result.assert_outcomes(passed=6, failed=0, errors=1)
    result.stdout.fnmatch_lines(["*shared data not found at*CI=true*"])

    records = _records(child)
    databases = [make_url(url).database for url in records["postgres"]]
    assert len(databases) == 3 and len(set(databases)) == 3, databases
    for name in databases:
        assert name is not None and name.startswith("telehub_test_")
        assert not _database_exists(postgres_admin_url, name), f"{name} was not dropped"

    sqlite_files = [Path(make_url(url).database or "") for url in records["sqlite"]]
    assert len(sqlite_files) == 2 and len(set(sqlite_files)) == 2
    assert all(path.is_file() for path in sqlite_files)  # kept in tmp_path for post-mortems

    (prefix,) = records["redis"]
    client = redis.Redis.from_url(redis_server_url)
    try:
        assert list(client.scan_iter(match=f"{prefix}*", count=1000)) == []
    finally:
        client.close()


@pytest.mark.parametrize("ci", ["true", ""], ids=["ci", "developer"])
def test_missing_services_skip_for_developers_and_fail_in_ci(
    child: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("TELEHUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:1/postgres")
    monkeypatch.setenv("TELEHUB_TEST_REDIS_URL", "redis://127.0.0.1:1/0")
    result = child.runpytest_subprocess("-q", "-rs", timeout=300)
    # test_sqlite and test_both[sqlite] need no service; the rest need PostgreSQL, Redis or
    # ../shared/data, none of which the child has.
    if ci:
        result.assert_outcomes(passed=2, errors=5)
        result.stdout.fnmatch_lines(["*PostgreSQL unreachable at*CI=true*", "*Redis unreachable at*CI=true*"])
    else:
        result.assert_outcomes(passed=2, skipped=5)
        result.stdout.fnmatch_lines(["*PostgreSQL unreachable at*", "*Redis unreachable at*"])
