"""The log scrubber: each kind of secret and PHI-shaped value, on text and on real library records."""
from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask, request
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

from fhir_gateway.observability import configure_logging, unconfigure_logging
from fhir_gateway.observability.log_filter import (
    POLICY,
    PhiSafeFormatter,
    PhiScrubFilter,
    format_exception,
    render_request,
    scrub_record,
    scrub_text,
)
from fhir_gateway.settings import Settings

JWT = ("eyJhbGciOiJSUzM4NCIsImtpZCI6InRlbGVodWIifQ.eyJzdWIiOiJQcmFjdGl0aW9uZXIvOTkiLCJwYXRpZW50IjoiNDIifQ"
       ".c2lnbmF0dXJlLWJ5dGVzLWdvLWhlcmU")
OPAQUE = "Zx8kq2LmN4pQr7sTfV3wYb6Hc9Jd1Ke5"  # 32 mixed characters, like Authlib's generated tokens
KEK = "q83vEjRWeJq9sMS0M0bb7DTTQWJXzWQa8Q5ZJbqvAZE="
SHA = "3f786850e387550fdab836ed7e6dc881de23001b6a1e2f"

# (text containing a secret, the secrets that must disappear, a placeholder that must appear)
CASES: list[tuple[str, str, list[str], str]] = [
    ("query string", '10.0.0.7 - - "GET /fhir/Patient?family=Quixotic&birthdate=1961-07-04 HTTP/1.1" 200 -',
     ["Quixotic", "1961", "10.0.0.7"], "/fhir/Patient?[query redacted] HTTP/1.1"),
    ("absolute URL query", "GET https://fhir.epic.example/api/FHIR/R4/Observation?patient=eVgg3VZ&category=lab",
     ["eVgg3VZ", "category=lab"], "Observation?[query redacted]"),
    ("relative bundle URL", "entry request Patient?identifier=urn:mrn|778899 failed",
     ["778899", "identifier"], "Patient?[query redacted]"),
    ("authorization header", "send: headers={'Authorization': 'Bearer abc.def-123_ghi', 'Accept': 'json'}",
     ["abc.def-123_ghi"], "'Authorization': '[redacted]'"),
    ("authorization line", "Authorization: Basic dXNlcjpwYXNzd29yZA==", ["dXNlcjpwYXNzd29yZA=="],
     "Authorization: [redacted]"),
    ("bearer in prose", f"retrying with Bearer {OPAQUE} after 401", [OPAQUE], "Bearer [redacted]"),
    ("token dict", f"Issue token {{'token_type': 'Bearer', 'access_token': '{OPAQUE}', 'refresh_token': 'r-1x'}}",
     [OPAQUE, "r-1x"], "'access_token': '[redacted]'"),
    ("token JSON", f'{{"access_token": "{OPAQUE}", "id_token": "{JWT}", "expires_in": 300}}',
     [OPAQUE, JWT[:20]], '"id_token": "[redacted]"'),
    ("form body", "grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&code_verifier=dBjftJeZ4CVP",
     ["SplxlOBeZQQYbYS6WxSbIA", "dBjftJeZ4CVP"], "code=[redacted]"),
    ("client secret kwarg", "OAuth2Session(client_id='hub', client_secret='s3cr3t-v4lue')", ["s3cr3t-v4lue"],
     "client_secret='[redacted]'"),
    ("password", "login failed: password: hunter2 for user", ["hunter2"], "password: [redacted]"),
    ("bare JWT", f"assertion error for {JWT} (expired)", [JWT[:20], JWT[-12:]], "[jwt]"),
    ("base64 secret", f"loaded key material {KEK} from file", [KEK], "[secret]"),
    ("opaque token", f"revoked {OPAQUE}", [OPAQUE], "[secret]"),
    ("hex secret", f"hmac {SHA}", [SHA], "[hex]"),
    ("db URL password", "connecting to postgresql+psycopg://telehub:Pa55word@db:5432/telehub", ["Pa55word"],
     "telehub:[redacted]@db"),
    ("email", "reminder to zebulon.quixotic@example.org queued", ["zebulon.quixotic@example.org"], "[email]"),
    ("phone (NANP)", "sms to (617) 555-0199 and 617-555-0123 and 617.555.0145", ["555-0199", "555-0123", "0145"],
     "[phone]"),
    ("phone (E.164)", "To=+16175550199 failed", ["+16175550199"], "[phone]"),
    ("SSN", "identifier 123-45-6789 rejected", ["123-45-6789"], "[ssn]"),
    ("birth date ISO", "birthDate 1961-07-04 and authored 2024-03-01T10:22:33Z", ["1961-07-04", "2024-03-01"],
     "[date]"),
    ("birth date US", "dob 7/4/1961", ["7/4/1961"], "[date]"),
    ("birth date HL7", "PID|1||778899^^^MRN||QUIXOTIC^ZEBULON||19610704|M", ["19610704"], "[date]"),
    ("long number (MRN)", "no match for member 9876543210123", ["9876543210123"], "[number]"),
    ("FHIR id in path", "Exception on /fhir/Patient/mrn-778899/_history/3 [GET]", ["mrn-778899"],
     "/fhir/Patient/{id}/_history/3"),
    ("FHIR body", '{"resourceType": "Patient", "name": [{"family": "Quixotic"}]}', ["Quixotic"],
     "[FHIR resource body redacted]"),
    ("partial resource", "bad element {'name': [{'family': 'Quixotic', 'given': ['Zebulon']}]}",
     ["Quixotic", "Zebulon"], "'family': '[redacted]'"),
    ("SQL parameters", "(sqlite3.IntegrityError) UNIQUE failed\n[SQL: INSERT INTO t VALUES (?, ?)]\n"
     "[parameters: ('Quixotic', '1961-07-04')]\n(Background on this error at: https://sqlalche.me/e/20/gkpj)",
     ["Quixotic"], "[parameters: [redacted]]"),
    ("pydantic input", "1 validation error for Patient\nname.0.family\n  Input should be a valid string "
     "[type=string_type, input_value=['Quixotic'], input_type=list]", ["Quixotic"], "input_value=[redacted]"),
]


@pytest.mark.parametrize(("text", "secrets", "placeholder"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_scrub_text_masks_each_kind(text: str, secrets: list[str], placeholder: str) -> None:
    out = scrub_text(text)
    for secret in secrets:
        assert secret not in out, out
    assert placeholder in out, out
    assert scrub_text(out) == out  # idempotent: the factory, the filter and the formatter may all run


@pytest.mark.parametrize("text", [
    "request id f2fb0afa49bf4afeb692a4f5969a2247 ok",  # our request ids survive
    "Listening at: https://127.0.0.1:8443",
    "route=/fhir/<path:path> fhir=Patient/{id}/_history/{vid} status=200 duration_ms=3.1",
    "Basic authentication is not enabled; a Bearer token is required",
    'File "/work/main/.venv/lib/python3.11/site-packages/flask/app.py", line 917, in full_dispatch_request',
    "TELEHUB_AUTH=off: the FHIR API is open to anyone who can reach it (development only)",
])
def test_scrub_text_keeps_operational_text(text: str) -> None:
    assert scrub_text(text) == text


# ------------------------------------------------------------------ records


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """configure_logging() writing to a buffer, at DEBUG; every global it touches is restored after."""
    root = logging.getLogger()
    names = ("authlib", "urllib3", "werkzeug", "sqlalchemy.engine", "sqlalchemy.engine.Engine")
    saved = (root.level, {n: logging.getLogger(n).level for n in names}, logging.getLogRecordFactory())
    stream = io.StringIO()
    configure_logging(Settings(env="test", extra={"log_level": "DEBUG"}), stream=stream)
    yield stream
    unconfigure_logging()
    logging.setLogRecordFactory(saved[2])  # as before (the app factory may have installed the scrubber already)
    root.setLevel(saved[0])
    for name, level in saved[1].items():
        logging.getLogger(name).setLevel(level)


def test_bodies_never_enter_a_message(logs: io.StringIO) -> None:
    log = logging.getLogger("telehub.test")
    log.info("stored %s and %r", b'{"family": "Quixotic"}', {"resourceType": "Patient", "id": "mrn-1",
                                                                  "name": [{"family": "Quixotic"}]})
    out = logs.getvalue()
    assert "Quixotic" not in out and "mrn-1" not in out
    assert "<22 bytes redacted>" in out and "<FHIR Patient redacted>" in out


def test_malformed_call_does_not_leak_its_arguments(logs: io.StringIO) -> None:
    logging.getLogger("telehub.test").info("only one placeholder %s", "Quixotic", "1961-07-04")
    out = logs.getvalue()
    assert "[unformattable log message] only one placeholder %s" in out
    assert "Quixotic" not in out


def test_exceptions_are_scrubbed_in_dev_and_messageless_in_prod(logs: io.StringIO) -> None:
    log = logging.getLogger("telehub.test")

    inner, outer = "mrn 9876543210", "patient Quixotic born 1961-07-04, ssn 123-45-6789"

    def fail() -> None:  # tracebacks show source lines (code, never data): keep the data out of them
        try:
            raise KeyError(inner)
        except KeyError as exc:
            raise ValueError(outer) from exc

    with pytest.raises(ValueError) as info:
        fail()
    log.error("import failed", exc_info=info.value)
    dev = logs.getvalue()
    assert "Traceback (most recent call last):" in dev and "in fail" in dev
    assert "The above exception was the direct cause" in dev
    assert "1961-07-04" not in dev and "123-45-6789" not in dev and "9876543210" not in dev
    assert "ValueError: patient Quixotic born [date], ssn [ssn]" in dev  # names cannot be recognised…

    POLICY.keep_exception_messages = False  # …so production drops exception messages altogether
    logs.seek(0)
    logs.truncate()
    log.error("import failed", exc_info=info.value)
    prod = logs.getvalue()
    assert "Quixotic" not in prod
    assert "ValueError: [message redacted]" in prod and "KeyError: [message redacted]" in prod
    assert format_exception(info.value, keep_messages=False).count("[message redacted]") == 2


def test_exc_info_is_dropped_so_no_later_handler_can_reformat_it() -> None:
    try:
        raise RuntimeError("Quixotic")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, exc_info=sys.exc_info())
    scrub_record(record)
    assert record.exc_info is None and record.exc_text and "RuntimeError: Quixotic" in record.exc_text
    assert "Quixotic" not in logging.Formatter().format(record).replace(record.exc_text, "")


def test_sqlalchemy_echo_parameters_and_rows_are_redacted(logs: io.StringIO,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    engine = create_engine("sqlite://", echo="debug")  # echo adds SQLAlchemy's own stdout handler
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT :family AS family, :dob AS dob"),
                                {"family": "Quixotic", "dob": "1961-07-04"}).all()
    finally:
        engine.dispose()
    assert rows == [("Quixotic", "1961-07-04")]
    out = logs.getvalue() + capsys.readouterr().out
    assert "SELECT ? AS family" in out  # statements stay (values are bound, not inlined)
    assert "[parameters redacted]" in out and "[row redacted]" in out
    assert "Quixotic" not in out and "1961-07-04" not in out


def test_non_propagating_logger_with_its_own_handler_is_scrubbed(logs: io.StringIO) -> None:
    own = io.StringIO()
    logger = logging.getLogger("telehub.test.isolated")  # like granian's '_granian' / 'granian.access'
    handler = logging.StreamHandler(own)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("GET /fhir/Patient?name=Quixotic from 10.2.3.4 token=%s", OPAQUE)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert "Quixotic" not in own.getvalue() and OPAQUE not in own.getvalue() and "10.2.3.4" not in own.getvalue()
    assert "?[query redacted]" in own.getvalue()


def test_filter_and_formatter_work_without_the_factory() -> None:
    """Records made by logging.makeLogRecord bypass the factory: the handler filter / formatter catch them."""
    record = logging.makeLogRecord({"name": "urllib3.connectionpool", "levelno": 10, "levelname": "DEBUG",
                                    "msg": '%s "%s %s %s" %s', "args": ("https://ehr:443", "GET",
                                    "/Patient?identifier=778899", "HTTP/1.1", 200)})
    assert PhiScrubFilter().filter(record) is True
    assert "778899" not in PhiSafeFormatter().format(record)
    other = logging.makeLogRecord({"msg": "secret %s", "args": (OPAQUE,)})
    assert OPAQUE not in PhiSafeFormatter("%(message)s").format(other)


def test_request_records_are_whitelisted_not_scrubbed() -> None:
    evil = {"request_id": "Quixotic-1961", "method": "GET /x", "route": "/fhir/Patient/1?name=Quixotic",
            "fhir": "Patient/{id} name=Quixotic", "status": "200", "duration_ms": "1.5", "body": "Quixotic"}
    line = render_request(evil)
    assert line == "request request_id=- method=OTHER route=- fhir=- status=0 duration_ms=-1.0"
    record = logging.makeLogRecord({"msg": "anything %s", "args": ("Quixotic",), "telehub_request": evil})
    assert PhiSafeFormatter("%(message)s").format(record) == line


def test_werkzeug_and_urllib3_records_from_a_real_server(logs: io.StringIO) -> None:
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    app = Flask("probe")

    @app.get("/fhir/Patient/<pid>")
    def _read(pid: str) -> Any:
        return {"seen": request.args.get("family", "")}

    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        resp = requests.get(f"http://127.0.0.1:{server.port}/fhir/Patient/mrn-778899",
                            params={"family": "Quixotic", "birthdate": "1961-07-04"},
                            headers={"Authorization": f"Bearer {OPAQUE}"}, timeout=10)
        resp.close()
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
    assert resp.status_code == 200
    out = logs.getvalue()
    assert "werkzeug" in out and "urllib3.connectionpool" in out  # both libraries did log the request
    assert "/fhir/Patient/{id}?[query redacted]" in out
    for secret in ("Quixotic", "1961-07-04", "mrn-778899", OPAQUE):
        assert secret not in out
