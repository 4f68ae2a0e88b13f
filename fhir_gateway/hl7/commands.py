"""``telehub hl7 …``: the HL7 v2 interface's operator commands.

    telehub hl7 listen [--host 127.0.0.1] [--port 2575] [--workers N] [--tls-cert C --tls-key K]
    telehub hl7 convert FILE|- [--to fhir|v2]
    telehub hl7 send FILE --to host:port
    telehub hl7 replay [--id ID]…
    telehub hl7 dead-letters
    telehub hl7 outbound enqueue FILE --to host:port | flush [--loop] | retry | list
"""
from __future__ import annotations

import sys
import time
from typing import Any

import click
import orjson


def _settings() -> Any:
    from fhir_gateway.cli import _settings as load

    return load()


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as fh:
        return fh.read()


@click.group()
def hl7() -> None:
    """HL7 v2 interface: MLLP listener, conversion, dead letters and the outbound queue."""


@hl7.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=2575, show_default=True, type=int, help="0 picks a free port (printed).")
@click.option("--threads", default=8, show_default=True, type=int, help="Database worker threads per process.")
@click.option("--workers", default=1, show_default=True, type=int,
              help="Processes accepting on the port (the listener is CPU-bound: one per core).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), envvar="TELEHUB_HL7_TLS_CERT",
              help="PEM certificate chain: MLLP over TLS 1.2+.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), envvar="TELEHUB_HL7_TLS_KEY",
              help="PEM private key.")
def listen(host: str, port: int, threads: int, workers: int, tls_cert: str | None, tls_key: str | None) -> None:
    """Receive HL7 v2 over MLLP; ACK each message only after it and its FHIR result are committed."""
    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    from fhir_gateway.hl7.listen import run_listener
    from fhir_gateway.hl7.server import ListenerConfig

    settings = _settings()
    if settings.env == "prod" and not tls_cert and host not in ("127.0.0.1", "localhost", "::1"):
        click.echo("warning: MLLP without TLS on a non-loopback address carries PHI in clear; use "
                   "--tls-cert/--tls-key or a VPN/stunnel in front", err=True)
    config = ListenerConfig(host=host, port=port, threads=threads, tls_cert=tls_cert, tls_key=tls_key)

    def ready(bound: int) -> None:
        click.echo(f"listening on {host}:{bound}{' (TLS)' if tls_cert else ''}")
        sys.stdout.flush()

    run_listener(settings, config, ready, workers=max(1, workers))


@hl7.command()
@click.argument("file")
@click.option("--to", "target", type=click.Choice(["fhir", "v2"]), default="fhir", show_default=True,
              help="fhir: v2 message → transaction Bundle; v2: FHIR resource/Bundle → v2 message(s).")
@click.option("--strict", is_flag=True, help="v2 → FHIR: validate the message structure with hl7apy first.")
@click.option("--event", help="v2 output: the trigger event (e.g. SIU^S14); default: what a create would send.")
@click.option("--focus", help="v2 output: the resource to send (Type/id) when the input holds several.")
@click.option("--version", "v2_version", default="2.5.1", show_default=True, help="v2 output version.")
@click.option("--receiving-application", default="", help="v2 output MSH-5.")
@click.option("--receiving-facility", default="", help="v2 output MSH-6.")
def convert(file: str, target: str, strict: bool, event: str | None, focus: str | None, v2_version: str,
            receiving_application: str, receiving_facility: str) -> None:
    """Convert FILE (or - for stdin) and print the result: a FHIR Bundle, or v2 ER7 with --to v2."""
    data = _read(file)
    if target == "fhir":
        from mappers.hl7v2 import HL7v2Error
        from mappers.hl7v2 import convert as to_fhir

        try:
            conversion = to_fhir(data, strict=strict)
        except HL7v2Error as exc:
            raise click.ClickException(f"{type(exc).__name__} ({exc.ack_code} {exc.error_code}): {exc}") from None
        click.echo(orjson.dumps(conversion.bundle, option=orjson.OPT_INDENT_2).decode())
        return
    from fhir_gateway.hl7.ack import control_id, timestamp
    from fhir_gateway.hl7.fhir_input import change_from_json
    from mappers.hl7v2.outbound import OutboundConfig, OutboundError, build_message, events_for

    try:
        change = change_from_json(orjson.loads(data), focus)
        config = OutboundConfig(version=v2_version, receiving_application=receiving_application,
                                receiving_facility=receiving_facility)
        events = [event] if event else events_for(change.resource)
        if not events:
            raise click.ClickException("this resource's state sends no v2 message (give --event to force one)")
        for name in events:
            message = build_message(change, name, config, control_id=control_id(), now=timestamp())
            click.echo(message.er7.replace("\r", "\n"))
    except (ValueError, orjson.JSONDecodeError, OutboundError) as exc:
        raise click.ClickException(str(exc)) from None


@hl7.command()
@click.argument("file")
@click.option("--to", "destination", required=True, help="host:port of the MLLP receiver.")
@click.option("--timeout", default=30.0, show_default=True, type=float)
def send(file: str, destination: str, timeout: float) -> None:
    """Send the messages in FILE (ER7 text or MLLP blocks) on one connection; print each ACK code."""
    from fhir_gateway.hl7.ack import ack_code_of
    from fhir_gateway.hl7.client import MllpClient, parse_destination, split_messages

    try:
        host, port = parse_destination(destination)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--to") from None
    messages = split_messages(_read(file))
    failed = 0
    with MllpClient(host, port, timeout=timeout) as client:
        for n, message in enumerate(messages, start=1):
            code = ack_code_of(client.send(message))
            failed += code not in ("AA", "CA")
            click.echo(f"message {n}: {code}")
    if failed:
        sys.exit(1)


@hl7.command()
@click.option("--id", "ids", multiple=True, help="Only these dead letters (default: all open ones).")
def replay(ids: tuple[str, ...]) -> None:
    """Reprocess dead letters (after a mapping fix); each is applied once or stays open."""
    from fhir_gateway.hl7.listen import build_ingestor
    from fhir_gateway.hl7.replay import replay as run

    click.echo(run(build_ingestor(_settings()), list(ids) or None).summary())


@hl7.command("dead-letters")
@click.option("--all", "show_all", is_flag=True, help="Include replayed and superseded ones.")
def dead_letters(show_all: bool) -> None:
    """List dead letters: id, time, sender, control id, event, code and reason (no message content)."""
    from sqlalchemy import select

    from fhir_gateway.app import build_services
    from fhir_gateway.hl7.tables import hl7_dead_letter as t

    services = build_services(_settings())
    query = select(t.c.id, t.c.received, t.c.sender, t.c.control_id, t.c.event, t.c.ack_code, t.c.error_code,
                   t.c.location, t.c.reason, t.c.status, t.c.attempts).order_by(t.c.received)
    if not show_all:
        query = query.where(t.c.status == "open")
    with services.repository.transaction() as conn:
        for r in conn.execute(query):
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.received / 1e6))
            click.echo(f"{r.id} {when} {r.status} x{r.attempts} {r.sender} {r.control_id} {r.event} "
                       f"{r.ack_code}/{r.error_code} {r.location or '-'} {r.reason}")


@hl7.group()
def outbound() -> None:
    """The outbound queue (v2 messages to a clinic's engine, retried with back-off)."""


def _queue() -> Any:
    from fhir_gateway.app import build_services
    from fhir_gateway.hl7.outbound_queue import OutboundQueue

    return OutboundQueue(build_services(_settings()).repository)


@outbound.command("enqueue")
@click.argument("file")
@click.option("--to", "destination", help="host:port of the receiver (or --clinic).")
@click.option("--clinic", help="A clinic of the clinics file: its destination, version and MSH names.")
@click.option("--clinics", "clinics_file", envvar="TELEHUB_HL7_CLINICS", type=click.Path(exists=True),
              help="TOML file of clinics (see fhir_gateway/hl7/clinics.py).")
@click.option("--event", help="Trigger event (default: what a create of the focus resource sends).")
@click.option("--v2", "is_v2", is_flag=True, help="FILE already holds v2 message(s), queue them as they are.")
def enqueue(file: str, destination: str | None, clinic: str | None, clinics_file: str | None, event: str | None,
            is_v2: bool) -> None:
    """Queue FILE's messages (FHIR converted to v2, or v2 as is) for delivery to a destination."""
    from fhir_gateway.hl7.ack import control_id, timestamp
    from fhir_gateway.hl7.client import split_messages
    from fhir_gateway.hl7.clinics import load_clinics
    from fhir_gateway.hl7.fhir_input import change_from_json
    from mappers.hl7v2 import parse
    from mappers.hl7v2.outbound import OutboundConfig, build_message, events_for

    config = OutboundConfig()
    if clinic:
        if not clinics_file:
            raise click.UsageError("--clinic needs --clinics FILE (or TELEHUB_HL7_CLINICS)")
        known = load_clinics(clinics_file)
        if clinic not in known:
            raise click.BadParameter(f"no clinic {clinic!r} in {clinics_file}", param_hint="--clinic")
        destination, config = destination or known[clinic].destination, known[clinic].config
    if not destination:
        raise click.UsageError("give --to host:port or --clinic")
    queue = _queue()
    data = _read(file)
    items: list[tuple[bytes, str, str]] = []
    if is_v2:
        for raw in split_messages(data):
            msg = parse(raw)
            items.append((raw, f"{msg.message_type}^{msg.trigger}", msg.control_id))
    else:
        change = change_from_json(orjson.loads(data))
        for name in [event] if event else events_for(change.resource):
            m = build_message(change, name, config, control_id=control_id(), now=timestamp())
            items.append((m.encode(), m.event, m.control_id))
    with queue.repository.transaction(write=True) as conn:
        for raw, name, cid in items:
            queue.enqueue(conn, destination, raw, event=name, control_id=cid)
    click.echo(f"queued {len(items)} message(s) for {destination}")


@outbound.command("flush")
@click.option("--loop", is_flag=True, help="Keep delivering (every --interval seconds) until interrupted.")
@click.option("--interval", default=2.0, show_default=True, type=float)
def flush(loop: bool, interval: float) -> None:
    """Deliver due messages (in order per destination; failures wait for their retry time)."""
    queue = _queue()
    while True:
        report = queue.deliver_due()
        if report.sent or report.retried or report.failed or not loop:
            click.echo(f"sent {report.sent}, retrying {report.retried}, failed {report.failed}")
        if not loop:
            return
        time.sleep(interval)


@outbound.command("retry")
def retry() -> None:
    """Put failed messages back in the queue."""
    click.echo(f"{_queue().retry_failed()} message(s) queued again")


@outbound.command("list")
def list_queue() -> None:
    """Queue counts per destination and status."""
    from sqlalchemy import func, select

    from fhir_gateway.hl7.tables import hl7_outbound as t

    queue = _queue()
    with queue.repository.transaction() as conn:
        for dest, status, n in conn.execute(select(t.c.destination, t.c.status, func.count()).group_by(
                t.c.destination, t.c.status).order_by(t.c.destination, t.c.status)):
            click.echo(f"{dest} {status} {n}")
