"""``make_scheduling_blueprint(hub)``: the scheduling pages and JSON endpoints, one route table.

Server-rendered, accessible pages (labels, fieldsets, keyboard, ``role=alert`` for refusals) for
the availability editor, booking (licensed providers only; out-of-state refusals shown with the
reason), reschedule/cancel/no-show, and the provider's iCalendar feed. Views parse and render;
the work is in :class:`SchedulingService`. Errors are rendered once (HTML or JSON) with their code.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, abort, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from smart_app.scheduling import directory, feed_tokens, ical
from smart_app.scheduling.availability import (
    Availability,
    format_hours,
    format_visit_types,
    parse_dates,
    parse_hours,
    parse_visit_types,
)
from smart_app.scheduling.booking import participant_id, read
from smart_app.scheduling.codes import CANCEL_REASONS, MODALITIES, MODALITY_DISPLAY
from smart_app.scheduling.errors import InvalidInput, SchedulingError
from smart_app.scheduling.ports import FhirPort, Resource
from smart_app.scheduling.schedules import find_schedule, rules_of
from smart_app.scheduling.service import SchedulingService
from smart_app.scheduling.web import Actor, ActorSource, by_day, front_desk, local_time, slot_label

log = logging.getLogger("telehub.scheduling")
View = Any


def make_scheduling_blueprint(hub: FhirPort, *, service: SchedulingService | None = None,
                              actor: ActorSource | None = None, name: str = "scheduling") -> Blueprint:
    """The scheduling feature as a blueprint; mount it with ``url_prefix="/app/schedule"``.

    ``actor`` tells who is acting (from the mounting app's session): a patient books only for
    themselves; the front desk for anyone. Mount behind the app's authentication and CSRF
    protection; cross-site form posts are refused here as a second line (``Sec-Fetch-Site``).
    """
    svc = service or SchedulingService(hub)
    if actor is None:
        log.warning("scheduling pages mounted without an actor source: every user acts as the front desk "
                    "(development only; pass actor= from the app's session)")
    bp = Blueprint(name, __name__, template_folder="templates")
    views = _Views(svc, actor or front_desk)

    # -- the route table ----------------------------------------------------------------------------
    routes: list[tuple[str, str, View, list[str]]] = [
        ("/", "index", views.index, ["GET"]),
        ("/providers/<pid>/availability", "availability", views.availability, ["GET", "POST"]),
        ("/providers/<pid>/feed", "feed_issue", views.feed_issue, ["POST"]),
        ("/providers/<pid>/feed/revoke", "feed_revoke", views.feed_revoke, ["POST"]),
        ("/feed/<token>.ics", "feed", views.feed, ["GET"]),
        ("/book", "book", views.book, ["GET", "POST"]),
        ("/book/on-demand", "on_demand", views.on_demand, ["POST"]),
        ("/appointments/<aid>", "appointment", views.appointment, ["GET"]),
        ("/appointments/<aid>/reschedule", "reschedule", views.reschedule, ["POST"]),
        ("/appointments/<aid>/cancel", "cancel", views.cancel, ["POST"]),
        ("/appointments/<aid>/no-show", "no_show", views.no_show, ["POST"]),
        ("/api/providers", "api_providers", views.api_providers, ["GET"]),
        ("/api/slots", "api_slots", views.api_slots, ["GET"]),
        ("/api/appointments", "api_book", views.api_book, ["POST"]),
        ("/api/appointments/on-demand", "api_on_demand", views.api_on_demand, ["POST"]),
        ("/api/appointments/<aid>/<action>", "api_change", views.api_change, ["POST"]),
    ]
    for rule, endpoint, view, methods in routes:
        bp.add_url_rule(rule, endpoint, view, methods=methods)

    @bp.before_request
    def refuse_cross_site_posts() -> None:
        if request.method == "POST" and request.headers.get("Sec-Fetch-Site") == "cross-site":
            abort(403)

    @bp.errorhandler(SchedulingError)
    def scheduling_error(exc: SchedulingError) -> tuple[Any, int]:
        if "/api/" in request.path:
            return jsonify({"error": exc.code, "message": exc.message}), exc.status
        return render_template("scheduling/error.html", error=exc, bp=name), exc.status

    @bp.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        if isinstance(exc, HTTPException):
            return exc
        log.exception("scheduling request failed (%s)", type(exc).__name__)
        err = SchedulingError("The request could not be completed; nothing was changed. Try again, or ask "
                              "the front desk.")
        err.status, err.code = 502, "upstream-error"
        return scheduling_error(err)

    @bp.app_template_filter("scheduling_local_time")
    def _local_time(value: str, zone: Any = None) -> str:
        return local_time(value, zone)

    return bp


class _Views:
    """Thin handlers: parse the request, call the service, render."""

    def __init__(self, svc: SchedulingService, actor: ActorSource) -> None:
        self.svc = svc
        self.hub = svc.hub
        self.actor = actor

    # -- helpers ----------------------------------------------------------------------------------
    def _patient_id(self, value: str | None) -> str:
        who: Actor = self.actor()
        if who.role == "patient":
            if value and value != who.patient_id:
                abort(403)
            value = who.patient_id
        if not value:
            raise InvalidInput("choose a patient", "patient")
        return value

    def _booked_by(self) -> Any:
        return "patient" if self.actor().role == "patient" else "front-desk"

    def _attested(self) -> str | None:
        value = (request.values.get("attested_state") or "").strip()
        return value or None

    def _page(self, template: str, status: int = 200, **ctx: Any) -> tuple[str, int]:
        ctx.setdefault("bp", request.blueprint)
        ctx.setdefault("modality_display", MODALITY_DISPLAY)
        return render_template(f"scheduling/{template}", **ctx), status

    # -- pages ------------------------------------------------------------------------------------
    def index(self) -> Any:
        schedules = self.hub.search("Schedule", {"active": "true", "_count": "200"})
        providers = []
        for schedule in schedules:
            ref = next((a["reference"] for a in schedule.get("actor", []) if "Practitioner/" in a.get(
                "reference", "")), None)
            if ref:
                providers.append((ref.split("/", 1)[1], directory.display_name(read(self.hub, ref))))
        return self._page("index.html", providers=sorted(providers, key=lambda p: p[1]))

    def availability(self, pid: str) -> Any:
        practitioner = read(self.hub, f"Practitioner/{pid}")
        schedule = find_schedule(self.hub, pid)
        rules = rules_of(schedule) if schedule else None
        form = request.form if request.method == "POST" else None
        error, report = None, None
        if form is not None:
            try:
                rules = Availability(
                    timezone=form.get("timezone", "").strip(), hours=parse_hours(form.get("hours", "")),
                    visit_types=parse_visit_types(form.get("visit_types", "")),
                    buffer_before=_int(form.get("buffer_before"), "buffer_before"),
                    buffer_after=_int(form.get("buffer_after"), "buffer_after"),
                    blackouts=parse_dates(form.get("blackouts", "")),
                    horizon_days=_int(form.get("horizon_days"), "horizon_days"))
                schedule, report = self.svc.save_availability(pid, rules)
            except InvalidInput as exc:
                error = exc
        values = {
            "timezone": form.get("timezone") if form else (rules.timezone if rules else "America/New_York"),
            "hours": form.get("hours") if form else (format_hours(rules.hours) if rules else
                                                     "mon 09:00-17:00\ntue 09:00-17:00"),
            "visit_types": form.get("visit_types") if form else (format_visit_types(rules.visit_types) if rules
                                                                 else "video-30 | Video visit | 30 | video"),
            "buffer_before": form.get("buffer_before") if form else (rules.buffer_before if rules else 0),
            "buffer_after": form.get("buffer_after") if form else (rules.buffer_after if rules else 5),
            "blackouts": form.get("blackouts") if form else "\n".join(d.isoformat() for d in (
                rules.blackouts if rules else ())),
            "horizon_days": form.get("horizon_days") if form else (rules.horizon_days if rules else 28),
        }
        return self._page("availability.html", 400 if error else 200, practitioner=practitioner,
                          name=directory.display_name(practitioner), pid=pid, values=values, error=error,
                          report=report, has_feed=bool(schedule and feed_tokens.has_token(schedule)),
                          modalities=MODALITIES)

    def feed_issue(self, pid: str) -> Any:
        token = feed_tokens.issue(self.hub, pid)
        url = url_for(f"{request.blueprint}.feed", token=token, _external=True)
        response = Response(self._page("feed_issued.html", pid=pid, url=url)[0])
        response.headers["Cache-Control"] = "no-store"
        return response

    def feed_revoke(self, pid: str) -> BaseResponse:
        feed_tokens.revoke(self.hub, pid)
        return redirect(url_for(f"{request.blueprint}.availability", pid=pid, feed="revoked"), code=303)

    def feed(self, token: str) -> Any:
        schedule = feed_tokens.lookup(self.hub, token)
        if schedule is None:
            abort(404)
        body = ical.feed_for(self.hub, schedule, self.svc.now())
        return Response(body, mimetype="text/calendar", headers={"Cache-Control": "private, max-age=300",
                                                                 "Content-Disposition": "inline; filename=visits.ics"})

    def _booking_context(self, patient_id: str, attested: str | None) -> dict[str, Any]:
        patient = read(self.hub, f"Patient/{patient_id}")
        now = self.svc.now()
        licensed, refused = directory.providers_for(self.hub, patient, now, attested=attested,
                                                    compacts=self.svc.compacts)
        offers = []
        for option in licensed:
            rules = rules_of(option.schedule)
            zone = rules.zone if rules else None
            slots = directory.free_slots(self.hub, option.schedule["id"], now, days=14)
            offers.append({"option": option, "days": by_day(slots, zone),
                           "label": lambda s, z=zone: slot_label(s, z)})
        return {"patient_id": patient_id, "offers": offers, "refused": refused, "attested": attested or "",
                "state": (licensed or refused)[0].decision.state if (licensed or refused) else attested,
                "modalities": MODALITIES}

    def book(self) -> Any:
        if request.method == "GET":
            patient = request.args.get("patient")
            if not patient and self.actor().role != "patient":
                return self._page("book.html", patient_id="", offers=[], refused=[], attested="", state=None,
                                  modalities=MODALITIES)
            pid = self._patient_id(patient)
            return self._page("book.html", **self._booking_context(pid, self._attested()))
        pid = self._patient_id(request.form.get("patient"))
        slot_id = request.form.get("slot")
        if not slot_id:
            raise InvalidInput("choose a time", "slot")
        try:
            result = self.svc.book(slot_id, pid, booked_by=self._booked_by(), attested_state=self._attested())
        except SchedulingError as exc:
            ctx = self._booking_context(pid, self._attested())
            return self._page("book.html", exc.status, error=exc, **ctx)
        return self._confirmation(result.appointment, 201)

    def on_demand(self) -> Any:
        pid = self._patient_id(request.form.get("patient"))
        modality = request.form.get("modality", "video")
        if modality not in MODALITIES:
            raise InvalidInput("unknown modality", "modality")
        result = self.svc.on_demand(pid, modality=modality, booked_by=self._booked_by(),
                                    attested_state=self._attested())
        return self._confirmation(result.appointment, 201)

    def _confirmation(self, appointment: Resource, status: int) -> Any:
        practitioner = read(self.hub, f"Practitioner/{participant_id(appointment, 'Practitioner')}")
        schedule = find_schedule(self.hub, practitioner["id"])
        rules = rules_of(schedule) if schedule else None
        return self._page("booked.html", status, appointment=appointment, zone=rules.zone if rules else None,
                          provider=directory.display_name(practitioner))

    def appointment(self, aid: str) -> Any:
        appointment = read(self.hub, f"Appointment/{aid}")
        patient_id = participant_id(appointment, "Patient")
        who = self.actor()
        if who.role == "patient" and who.patient_id != patient_id:
            abort(403)
        practitioner = read(self.hub, f"Practitioner/{participant_id(appointment, 'Practitioner')}")
        schedule = find_schedule(self.hub, practitioner["id"])
        rules = rules_of(schedule) if schedule else None
        zone = rules.zone if rules else None
        alternatives = directory.free_slots(self.hub, schedule["id"], self.svc.now(), days=14) if schedule else []
        return self._page("appointment.html", appointment=appointment, zone=zone, provider=directory.display_name(
            practitioner), days=by_day(alternatives, zone), label=lambda s: slot_label(s, zone),
            reasons=CANCEL_REASONS, done=request.args.get("done"), can_no_show=who.role != "patient")

    def reschedule(self, aid: str) -> BaseResponse:
        self._own(aid)
        slot_id = request.form.get("slot")
        if not slot_id:
            raise InvalidInput("choose a new time", "slot")
        self.svc.reschedule(aid, slot_id, attested_state=self._attested())
        return redirect(url_for(f"{request.blueprint}.appointment", aid=aid, done="rescheduled"), code=303)

    def cancel(self, aid: str) -> BaseResponse:
        self._own(aid)
        self.svc.cancel(aid, request.form.get("reason", ""), request.form.get("note", ""))
        return redirect(url_for(f"{request.blueprint}.appointment", aid=aid, done="cancelled"), code=303)

    def no_show(self, aid: str) -> BaseResponse:
        if self.actor().role == "patient":
            abort(403)
        self.svc.no_show(aid)
        return redirect(url_for(f"{request.blueprint}.appointment", aid=aid, done="noshow"), code=303)

    def _own(self, aid: str) -> None:
        who = self.actor()
        if who.role == "patient" and participant_id(read(self.hub, f"Appointment/{aid}"), "Patient") != \
                who.patient_id:
            abort(403)

    # -- JSON -------------------------------------------------------------------------------------
    def api_providers(self) -> Any:
        patient = read(self.hub, f"Patient/{self._patient_id(request.args.get('patient'))}")
        licensed, refused = directory.providers_for(self.hub, patient, self.svc.now(), attested=self._attested(),
                                                    compacts=self.svc.compacts)
        def item(o: directory.ProviderOption) -> dict[str, Any]:
            return {"practitioner": f"Practitioner/{o.practitioner['id']}", "name": o.name,
                    "schedule": f"Schedule/{o.schedule['id']}", "licensed": o.decision.allowed,
                    "state": o.decision.state, "reason": o.decision.reason}
        return jsonify({"licensed": [item(o) for o in licensed], "notLicensed": [item(o) for o in refused]})

    def api_slots(self) -> Any:
        pid = request.args.get("practitioner", "")
        schedule = find_schedule(self.hub, pid) if pid else None
        if schedule is None:
            raise InvalidInput("practitioner has no schedule", "practitioner")
        slots = directory.free_slots(self.hub, schedule["id"], self.svc.now(), days=_int(
            request.args.get("days", "14"), "days"), modality=request.args.get("modality"))
        return jsonify({"resourceType": "Bundle", "type": "searchset", "total": len(slots),
                        "entry": [{"resource": s} for s in slots]})

    def _json(self) -> dict[str, Any]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise InvalidInput("send a JSON object")
        return body

    def api_book(self) -> Any:
        body = self._json()
        result = self.svc.book(str(body.get("slot", "")).removeprefix("Slot/"),
                               self._patient_id(str(body.get("patient", "")).removeprefix("Patient/") or None),
                               booked_by=self._booked_by(), attested_state=body.get("attestedState"))
        return jsonify(result.appointment), 201

    def api_on_demand(self) -> Any:
        body = self._json()
        result = self.svc.on_demand(self._patient_id(str(body.get("patient", "")).removeprefix("Patient/") or None),
                                    modality=str(body.get("modality", "video")), booked_by=self._booked_by(),
                                    attested_state=body.get("attestedState"))
        return jsonify(result.appointment), 201

    def api_change(self, aid: str, action: str) -> Any:
        body = self._json()
        self._own(aid)
        if action == "cancel":
            return jsonify(self.svc.cancel(aid, str(body.get("reason", "")), str(body.get("note", ""))))
        if action == "reschedule":
            result = self.svc.reschedule(aid, str(body.get("slot", "")).removeprefix("Slot/"),
                                         attested_state=body.get("attestedState"))
            return jsonify(result.appointment)
        if action == "no-show" and self.actor().role != "patient":
            return jsonify(self.svc.no_show(aid))
        abort(404)


def _int(value: str | None, name: str) -> int:
    try:
        return int(str(value or "0").strip())
    except ValueError:
        raise InvalidInput(f"{name.replace('_', ' ')} must be a whole number", name) from None
