"""``create_app(settings)``: the SMART telehealth app as its own Flask app (mounted at /app by ``make run``,
deployable alone behind any WSGI server).

Wires the parts once: transport (network, or in-process for the hub's origin), the sealed session
store (Redis or in-process), the trusted issuers with their vendor profiles, the hub client with its
backend-services token, the style cache, the route table and the error pages.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request

from smart_app import routes
from smart_app.backend_auth import BackendTokens
from smart_app.fhir_client import HubClient
from smart_app.issuers import Issuers, load_profiles
from smart_app.pages import nonce, problem_page, secure_headers
from smart_app.services import EXT, AppServices
from smart_app.session_store import make_store
from smart_app.settings import AppSettings, AppSettingsError
from smart_app.smart.errors import LaunchProblem
from smart_app.style import StyleCache
from smart_app.transport import Transport


def hub_token_url(hub_base: str) -> str:
    """The hub's token endpoint (the assertion's ``aud``); the hub serves SMART under {base}/auth."""
    return f"{hub_base.rstrip('/')}/auth/token"


def build_services(settings: AppSettings, transport: Transport | None = None) -> AppServices:
    transport = transport or Transport()
    if settings.backend_key is None:
        raise AppSettingsError("TELEHUB_APP_BACKEND_KEY_FILE (a private RS384 JWK) is required for the hub client")
    tokens = BackendTokens(transport, token_url=hub_token_url(settings.hub_base),
                           client_id=settings.backend_client_id, private_jwk=settings.backend_key,
                           scope=settings.backend_scope)
    return AppServices(settings=settings, transport=transport,
                       store=make_store(settings.redis_url, settings.redis_prefix, settings.secret_key),
                       issuers=Issuers(settings.trusted_issuers, load_profiles()),
                       hub=HubClient(settings.hub_base, transport, tokens), styles=StyleCache(transport))


def create_app(settings: AppSettings, *, transport: Transport | None = None,
               extend: Callable[[Flask, AppServices], Any] | None = None) -> Flask:
    """The app. ``transport``: how to reach servers (tests and the demo pass an in-process one);
    ``extend``: mount feature blueprints (e.g. scheduling) with the services at hand."""
    settings.check()
    app = Flask(__name__, static_url_path="/static")
    app.config.update(SECRET_KEY=settings.secret_key, MAX_CONTENT_LENGTH=1024 * 1024)
    svc = build_services(settings, transport)
    app.extensions[EXT] = svc
    app.register_blueprint(routes.make_blueprint())
    routes.register_errors(app)
    app.after_request(secure_headers)
    app.context_processor(lambda: {"csp_nonce": nonce})  # feature templates: <style nonce="{{ csp_nonce() }}">
    _mount_scheduling(app, svc)
    _mount_visits(app, svc)
    if extend is not None:
        extend(app, svc)
    return app


def _mount_scheduling(app: Flask, svc: AppServices) -> None:
    """Scheduling (``smart_app.scheduling``) at /schedule, acting as whoever launched this session."""
    try:
        from smart_app.scheduling import make_scheduling_blueprint
    except ImportError:  # not there yet: the dashboard works without it
        return
    bp = make_scheduling_blueprint(svc.hub, actor=routes.session_actor)
    app.register_blueprint(bp, url_prefix="/schedule")
    app.config["TELEHUB_APP_NAV"] = [("Scheduling", f"{bp.name}.index")]

    @app.before_request
    def _schedule_needs_a_session() -> Response | None:
        """Behind the launch like every page, except the tokenised iCalendar feed (calendar apps have no cookie).
        Answered here: the blueprint's own catch-all handler would turn the problem into a generic 502."""
        if request.blueprint == bp.name and request.endpoint != f"{bp.name}.feed":
            try:
                routes.session_actor()
            except LaunchProblem as problem:
                return problem_page(problem)
        return None


def _mount_visits(app: Flask, svc: AppServices) -> None:
    """The virtual visit (``smart_app.visits``) at /visits: waiting room, console, room, with live updates over
    Redis pub/sub when configured (several workers agree) or in-process. The blueprint checks its own access:
    the launched provider's session, or a patient's one-time join link (so no session check here)."""
    from smart_app.visits.blueprint import make_visits_blueprint
    from smart_app.visits.events import InProcessBus, RedisBus
    from smart_app.visits.ports import EventBus
    from smart_app.visits.service import VisitService, VisitSettings
    from smart_app.visits.video.base import build

    settings = svc.settings
    events: EventBus = (RedisBus.from_url(settings.redis_url, prefix=settings.redis_prefix + "visits:")
                        if settings.redis_url else InProcessBus())
    video = build("local-webrtc", {})
    service = VisitService(svc.hub, events, video, VisitSettings(real_visits=settings.env == "prod"))
    app.register_blueprint(make_visits_blueprint(svc.hub, actor=routes.session_actor, video=video, events=events,
                                                 service=service, secure_cookies=settings.env == "prod"),
                           url_prefix="/visits")
    app.extensions["telehub.app.visits"] = service  # for the no-show sweep job
