"""The app's one route table and its thin handlers (the work is in :mod:`.launch` and :mod:`.dashboard`).

    GET /launch          EHR launch (iss + launch) or standalone provider launch (iss only)
    GET /callback        the authorization server's redirect: finish the launch, open the dashboard
    GET /                the provider dashboard: today's visits, waiting room, patient banner
    GET /queue           the waiting-room fragment (polled by static/queue.js for live status)
    GET /visits/<id>     one visit
    POST /logout         end the app session
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from smart_app import dashboard, launch
from smart_app.fhir_client import HubError
from smart_app.pages import page, problem_page
from smart_app.services import services
from smart_app.smart.errors import HubDown, LaunchProblem, VisitNotFound

SESSION_COOKIE = "telehub_app_sid"
BROWSER_COOKIE = "telehub_app_browser"


def _cookie(resp: BaseResponse, name: str, value: str, max_age: int | None = None) -> None:
    settings = services().settings
    same_site = settings.cookie_samesite
    # inside a cross-site EHR frame (SameSite=None) the cookie is Partitioned (CHIPS): kept to this embedding
    resp.set_cookie(name, value, httponly=True, samesite=same_site, max_age=max_age, path=request.script_root or "/",
                    secure=request.is_secure or same_site == "None", partitioned=same_site == "None")


def launch_view() -> BaseResponse:
    browser = request.cookies.get(BROWSER_COOKIE) or secrets.token_urlsafe(24)
    url = launch.begin(services(), iss=request.args.get("iss"), launch=request.args.get("launch"), browser=browser)
    resp = redirect(url, 302)
    _cookie(resp, BROWSER_COOKIE, browser)
    return resp


def callback_view() -> BaseResponse:
    sid = launch.complete(services(), request.args.to_dict(), browser=request.cookies.get(BROWSER_COOKIE, ""))
    resp = redirect(url_for("app.dashboard_view"), 303)
    _cookie(resp, SESSION_COOKIE, sid)
    return resp


def _session() -> tuple[str, dict[str, Any]]:
    svc = services()
    sid = request.cookies.get(SESSION_COOKIE, "")
    session = launch.load_session(svc, sid)
    launch.refresh_if_due(svc, session)
    launch.touch(svc, sid, session)
    return sid, session


def session_actor() -> Any:
    """Who uses the scheduling pages: the launching practitioner (no session → the launch-again page)."""
    from smart_app.scheduling.web import Actor

    _sid, session = _session()
    return Actor("provider", practitioner_id=session.get("practitioner"))


def _dashboard_data(session: dict[str, Any]) -> dashboard.Dashboard:
    tz = dashboard.zone(session.get("timezone"), services().settings.timezone)
    try:
        return dashboard.load(services().hub, session["practitioner"], tz=tz)
    except HubError as exc:
        raise HubDown(str(exc)) from None


def dashboard_view() -> Response:
    _sid, session = _session()
    data = _dashboard_data(session)
    ctx = session["context"]
    return page("dashboard.html", style_url=ctx.get("smart_style_url"), data=data, session=session,
                banner=session.get("banner") if ctx.get("need_patient_banner") else None)


def queue_view() -> Response:
    _sid, session = _session()
    return page("queue.html", data=_dashboard_data(session))


def visit_view(visit_id: str) -> Response:
    _sid, session = _session()
    try:
        found = dashboard.load_visit(services().hub, session["practitioner"], visit_id)
    except HubError as exc:
        raise HubDown(str(exc)) from None
    if found is None:
        raise VisitNotFound(f"visit {visit_id[:64]} is not the practitioner's")
    appointment, patient = found
    tz = dashboard.zone(session.get("timezone"), services().settings.timezone)
    visit = dashboard.visit_of(appointment, {str(patient.get("id")): patient} if patient else {}, tz)
    ctx = session["context"]
    return page("visit.html", style_url=ctx.get("smart_style_url"), visit=visit, appointment=appointment,
                patient=patient, session=session, tz=str(tz),
                banner=session.get("banner") if ctx.get("need_patient_banner") else None)


def logout_view() -> Response:
    svc = services()
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        svc.store.delete("session", sid)
    resp = page("signed_out.html")
    resp.delete_cookie(SESSION_COOKIE, path=request.script_root or "/")
    return resp


ROUTES: list[tuple[str, str, Callable[..., Any], list[str]]] = [
    ("/launch", "launch_view", launch_view, ["GET"]),
    ("/callback", "callback_view", callback_view, ["GET"]),
    ("/", "dashboard_view", dashboard_view, ["GET"]),
    ("/queue", "queue_view", queue_view, ["GET"]),
    ("/visits/<visit_id>", "visit_view", visit_view, ["GET"]),
    ("/logout", "logout_view", logout_view, ["POST"]),
]


def make_blueprint() -> Blueprint:
    bp = Blueprint("app", __name__)
    for rule, endpoint, view, methods in ROUTES:
        bp.add_url_rule(rule, endpoint, view, methods=methods)
    return bp


def register_errors(app: Flask) -> None:
    @app.errorhandler(LaunchProblem)
    def _problem(exc: LaunchProblem) -> Response:
        return problem_page(exc)

    @app.errorhandler(404)
    def _not_found(_exc: Exception) -> Response:
        problem = LaunchProblem("no such page")
        problem.status, problem.title = 404, "There is no such page in Telehub"
        return problem_page(problem)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        from werkzeug.exceptions import HTTPException

        if isinstance(exc, HTTPException) and exc.code and exc.code < 500:
            problem = LaunchProblem(exc.name)
            problem.status, problem.title = exc.code, exc.name
            return problem_page(problem)
        app.logger.exception("unexpected error in the SMART app")
        problem = LaunchProblem("unexpected error")
        problem.status, problem.title = 500, "Something went wrong in Telehub"
        problem.advice = "Reload the page. If it keeps failing, launch Telehub again from your EHR."
        return problem_page(problem)
