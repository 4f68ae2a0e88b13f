"""``make_visits_blueprint``: waiting room, provider console, visit page, and their JSON/SSE API (one route table).

Mount with ``url_prefix="/app/visits"``. Views parse and reply; the work is in :class:`VisitService`.
Errors are rendered once, as JSON ``{"error": code, "message": …}`` for the API and a page otherwise.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, abort, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from fhir_gateway.outbound.baa import PhiGuard
from smart_app.visits import access, chat, documents, join_links, summary
from smart_app.visits.errors import InvalidTransition, VisitError
from smart_app.visits.events import channel_for, sse
from smart_app.visits.machine import Visit
from smart_app.visits.ports import Actor, ActorSource, EventBus, FhirPort
from smart_app.visits.service import VisitService, VisitSettings
from smart_app.visits.states import Event
from smart_app.visits.video.base import VideoProvider

log = logging.getLogger("telehub.visits")
View = Any
# API action -> (event, role that may send it)
ACTIONS: dict[str, tuple[Event, str]] = {
    "arrive": (Event.ARRIVE, "patient"), "leave": (Event.LEAVE, "patient"), "rejoin": (Event.REJOIN, "patient"),
    "admit": (Event.ADMIT, "provider"), "finish": (Event.FINISH, "provider"),
    "running-late": (Event.RUNNING_LATE, "provider"), "cancel": (Event.CANCEL, "provider"),
}


def make_visits_blueprint(hub: FhirPort, *, actor: ActorSource | None, video: VideoProvider, events: EventBus,
                          settings: VisitSettings | None = None, service: VisitService | None = None,
                          name: str = "visits", secure_cookies: bool = True, keepalive: float = 15.0) -> Blueprint:
    """The visit feature. ``actor`` reads the app's session (EHR-launched provider or signed-in patient);
    patients may also arrive through a one-time join link. ``events`` is an :class:`InProcessBus` for one
    worker or a :class:`RedisBus` for several. Pass ``service`` to share it with a no-show job
    (``service.sweep_no_shows()`` every minute)."""
    svc = service or VisitService(hub, events, video, settings)
    if svc.settings.real_visits and not PhiGuard.allows_phi(video):
        log.warning("video provider %s has no BAA: real visits will be refused until one is configured", video.name)
    bp = Blueprint(name, __name__, template_folder="templates", static_folder="static",
                   static_url_path="/static")
    views = _Views(svc, actor, secure_cookies, keepalive)
    routes: list[tuple[str, str, View, list[str]]] = [
        ("/join/<token>", "join", views.join, ["GET"]),
        ("/<vid>/waiting", "waiting", views.waiting, ["GET"]),
        ("/<vid>/console", "console", views.console, ["GET"]),
        ("/<vid>/room", "room", views.room, ["GET"]),
        ("/<vid>/summary", "summary", views.summary_page, ["GET"]),
        ("/api/<vid>/state", "api_state", views.api_state, ["GET"]),
        ("/api/<vid>/events", "api_events", views.api_events, ["GET"]),
        ("/api/<vid>/action/<action>", "api_action", views.api_action, ["POST"]),
        ("/api/<vid>/precheck", "api_precheck", views.api_precheck, ["POST"]),
        ("/api/<vid>/consent/<kind>", "api_consent", views.api_consent, ["POST"]),
        ("/api/<vid>/recording", "api_recording", views.api_recording, ["POST"]),
        ("/api/<vid>/recording/file", "api_recording_file", views.api_recording_file, ["POST"]),
        ("/api/<vid>/join", "api_join", views.api_join, ["GET"]),
        ("/api/<vid>/signal", "api_signal", views.api_signal, ["POST"]),
        ("/api/<vid>/chat", "api_chat", views.api_chat, ["GET", "POST"]),
        ("/api/<vid>/documents", "api_documents", views.api_documents, ["GET", "POST"]),
        ("/api/<vid>/documents/<did>", "api_document", views.api_document, ["GET"]),
        ("/api/<vid>/link", "api_link", views.api_link, ["POST"]),
    ]
    for rule, endpoint, view, methods in routes:
        bp.add_url_rule(rule, endpoint, view, methods=methods)

    @bp.before_request
    def refuse_cross_site_posts() -> None:
        if request.method == "POST" and request.headers.get("Sec-Fetch-Site") == "cross-site":
            abort(403)

    @bp.errorhandler(VisitError)
    def visit_error(exc: VisitError) -> Any:
        if "/api/" in request.path:
            return jsonify({"error": exc.code, "message": exc.message}), exc.status
        return render_template("visits/error.html", error=exc), exc.status

    @bp.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        if isinstance(exc, HTTPException):
            return exc
        log.exception("visit request failed (%s)", type(exc).__name__)
        err = VisitError("The request could not be completed; nothing was changed. Try again.")
        err.status, err.code = 502, "upstream-error"
        return visit_error(err)

    return bp


class _Views:
    def __init__(self, svc: VisitService, actor: ActorSource | None, secure: bool, keepalive: float) -> None:
        self.svc, self.actor, self.secure, self.keepalive = svc, actor, secure, keepalive

    # -- helpers
    def _visit(self, vid: str, role: str | None = None) -> tuple[Visit, Actor]:
        visit = self.svc.load(vid)
        who = access.resolve(self.svc.hub, self.actor, visit, self.svc.now())
        if who is None or (role and who.role != role):
            abort(403)
        return visit, who

    def _page(self, template: str, visit: Visit, who: Actor, **ctx: Any) -> Response:
        resp = Response(render_template(f"visits/{template}", visit=visit, who=who, bp=request.blueprint,
                                        state=self.svc.snapshot(visit), **ctx))
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def _json(self) -> dict[str, Any]:
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else {}

    # -- pages
    def join(self, token: str) -> BaseResponse:
        found = join_links.redeem(self.svc.hub, token, request.cookies.get(access.DEVICE_COOKIE), now=self.svc.now())
        resp = redirect(url_for(f"{request.blueprint}.waiting", vid=found.appointment["id"]), code=303)
        path = url_for(f"{request.blueprint}.join", token="x").rsplit("/join/", 1)[0] + "/"
        max_age = int(self.svc.settings.link_ttl.total_seconds())
        opts: dict[str, Any] = {"httponly": True, "secure": self.secure, "samesite": "Strict", "path": path,
                                "max_age": max_age}
        resp.set_cookie(access.LINK_COOKIE, token, **opts)
        if found.new_device_secret:
            resp.set_cookie(access.DEVICE_COOKIE, found.new_device_secret, **opts)
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def waiting(self, vid: str) -> Response:
        visit, who = self._visit(vid, "patient")
        return self._page("waiting.html", visit, who, policy=self.svc.settings.consent_policy_version)

    def console(self, vid: str) -> Response:
        visit, who = self._visit(vid, "provider")
        return self._page("console.html", visit, who)

    def room(self, vid: str) -> Response:
        visit, who = self._visit(vid)
        return self._page("room.html", visit, who)

    def summary_page(self, vid: str) -> Response:
        visit, who = self._visit(vid)
        found = summary.find(self.svc.hub, visit.encounter["id"]) if visit.encounter else None
        text = documents.read_binary_inline(found) if found else None
        return self._page("summary.html", visit, who, text=text)

    # -- API
    def api_state(self, vid: str) -> Any:
        visit, _ = self._visit(vid)
        return jsonify(self.svc.snapshot(visit))

    def api_events(self, vid: str) -> Response:
        visit, who = self._visit(vid)
        sub = self.svc.bus.subscribe(channel_for(vid), timeout=self.keepalive)
        first = self.svc.snapshot(visit)

        def stream() -> Iterator[str]:  # needs no request context: the actor and snapshot are read above
            try:
                yield "retry: 2000\n\n" + sse(first)
                for event in sub:
                    if event is not None and event.get("to") not in (None, who.role):
                        continue
                    yield sse(event)
            finally:
                sub.close()

        return Response(stream(), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    def api_action(self, vid: str, action: str) -> Any:
        if action not in ACTIONS:
            abort(404)
        event, role = ACTIONS[action]
        _, who = self._visit(vid, role)
        minutes = None
        if event == Event.RUNNING_LATE:
            try:
                minutes = max(0, min(240, int(self._json().get("minutes", 0))))
            except (TypeError, ValueError):
                raise VisitError("minutes must be a whole number") from None
        visit = self.svc.fire(vid, event, who, minutes_late=minutes)
        return jsonify(self.svc.snapshot(visit))

    def api_precheck(self, vid: str) -> Any:
        self._visit(vid, "patient")
        self.svc.record_precheck(vid, self._json())
        return jsonify({"ok": True})

    def api_consent(self, vid: str, kind: str) -> Any:
        _, who = self._visit(vid, "patient")
        if kind == "treatment":
            found = self.svc.give_treatment_consent(vid, who)
        elif kind == "recording":
            found = self.svc.give_recording_consent(vid, who)
        else:
            abort(404)
        return jsonify({"consent": f"Consent/{found['id']}", "dateTime": found["dateTime"]}), 201

    def api_recording(self, vid: str) -> Any:
        _, who = self._visit(vid, "provider")
        self.svc.start_recording(vid, who)
        return jsonify({"recording": True})

    def api_recording_file(self, vid: str) -> Any:
        _, who = self._visit(vid, "provider")
        upload = request.files.get("file")
        if upload is None:
            raise VisitError("send the recording as 'file'")
        media = self.svc.save_recording(vid, who, content_type=upload.mimetype, data=upload.read())
        return jsonify({"media": f"Media/{media['id']}"}), 201

    def api_join(self, vid: str) -> Any:
        _, who = self._visit(vid)
        found = self.svc.join(vid, who)
        resp = jsonify({"kind": found.kind, **dict(found.data)})
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def api_signal(self, vid: str) -> Any:
        """Local WebRTC signaling: relay an offer/answer/candidate/hello to the other side over the bus."""
        visit, who = self._visit(vid)
        body = self._json()
        if body.get("kind") not in ("offer", "answer", "candidate", "hello", "bye"):
            raise VisitError("unknown signal")
        if self.svc.video.name != "local-webrtc":
            raise InvalidTransition("signaling is for the local WebRTC provider")
        other = "patient" if who.role == "provider" else "provider"
        self.svc.publish(visit.id, {"type": "signal", "to": other, "from": who.role, "kind": body["kind"],
                                    "session": str(body.get("session", ""))[:64], "data": body.get("data")})
        return jsonify({"ok": True}), 202

    def api_chat(self, vid: str) -> Any:
        visit, who = self._visit(vid)
        if request.method == "POST":
            msg = self.svc.send_chat(vid, who, str(self._json().get("text", "")))
            return jsonify(_message(msg)), 201
        if visit.encounter is None:
            return jsonify({"messages": []})
        return jsonify({"messages": [_message(m) for m in chat.history(self.svc.hub, visit.encounter["id"])]})

    def api_documents(self, vid: str) -> Any:
        visit, who = self._visit(vid)
        if request.method == "POST":
            upload = request.files.get("file")
            if upload is None:
                raise VisitError("choose a file to share")
            doc = self.svc.share_document(vid, who, kind=request.form.get("kind", "other"),
                                          title=request.form.get("title") or upload.filename or "",
                                          content_type=upload.mimetype, data=upload.read())
            return jsonify(_document(doc)), 201
        if visit.encounter is None:
            return jsonify({"documents": []})
        return jsonify({"documents": [_document(d) for d in documents.shared_in(self.svc.hub,
                                                                                visit.encounter["id"])]})

    def api_document(self, vid: str, did: str) -> Response:
        visit, _ = self._visit(vid)
        doc = self.svc.hub.get(f"DocumentReference/{did}")
        encounters = [e.get("reference") for e in doc.get("context", {}).get("encounter", [])]
        if visit.encounter is None or f"Encounter/{visit.encounter['id']}" not in encounters:
            abort(404)
        content_type, data = documents.read_binary(self.svc.hub, doc)
        return Response(data, mimetype=content_type, headers={
            "Cache-Control": "no-store", "Content-Disposition": "attachment", "X-Content-Type-Options": "nosniff"})

    def api_link(self, vid: str) -> Any:
        self._visit(vid, "provider")
        token = join_links.issue(self.svc.hub, vid, now=self.svc.now(), ttl=self.svc.settings.link_ttl)
        resp = jsonify({"url": url_for(f"{request.blueprint}.join", token=token, _external=True),
                        "expiresIn": int(self.svc.settings.link_ttl / timedelta(seconds=1))})
        resp.headers["Cache-Control"] = "no-store"
        return resp, 201


def _message(msg: dict[str, Any]) -> dict[str, Any]:
    return {"id": msg["id"], "sent": msg.get("sent"), "from": msg["sender"]["reference"].split("/", 1)[0].lower(),
            "text": (msg.get("payload") or [{}])[0].get("contentString", "")}


def _document(doc: dict[str, Any]) -> dict[str, Any]:
    att = doc["content"][0]["attachment"]
    return {"id": doc["id"], "title": att.get("title") or doc.get("description"), "contentType": att.get(
        "contentType"), "size": att.get("size"), "date": doc.get("date"),
        "from": (doc.get("author") or [{}])[0].get("reference", "/").split("/", 1)[0].lower()}
