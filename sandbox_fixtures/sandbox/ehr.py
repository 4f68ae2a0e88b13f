"""The sandbox EHR's launcher page: pick practitioner, patient, encounter, flavour and app; launch.

``POST /sandbox/launch`` creates the launch at the hub (POST {base}/auth/launch with the sandbox's
system token) and redirects the browser to ``launch_uri?iss=…&launch=…`` (:mod:`.launch`).
"""
from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, current_app, make_response, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from sandbox_fixtures.sandbox.chart import load_chart
from sandbox_fixtures.sandbox.fhir_proxy import FlavouredFhir
from sandbox_fixtures.sandbox.hub import HubError
from sandbox_fixtures.sandbox.launch import LaunchChoice, app_launch_url, launch_context

EXT = "sandbox.fhir"
# SMART App Launch "Styling" (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#styling):
# what the EHR's smart_style_url serves, so an app can blend in.
STYLE = {"color_background": "#f6f8fa", "color_error": "#a00000", "color_highlight": "#2b5c8a",
         "color_modal_backdrop": "", "color_success": "#1a7f37", "color_text": "#1a1a1a",
         "dim_border_radius": "3px", "dim_font_size": "16px", "dim_spacing_size": "16px",
         "font_family_body": "system-ui, sans-serif", "font_family_heading": "system-ui, sans-serif"}


def flavoured_fhir() -> FlavouredFhir:
    found: FlavouredFhir = current_app.extensions[EXT]
    return found


def launchable_apps(fhir: FlavouredFhir) -> list[Any]:
    """Registered, enabled SMART clients that have a launch URI."""
    return [c for c in fhir.hub.auth.clients.list() if c.launch_uri and not c.disabled]


def iss_for(fhir: FlavouredFhir, flavour_name: str) -> str:
    """``generic`` launches against the hub's own base; the others against their flavoured base."""
    if flavour_name == "generic":
        return fhir.hub.fhir_base
    return fhir.public_base(fhir.flavours[flavour_name])


def _page(status: int = 200, error: str | None = None) -> Response:
    fhir = flavoured_fhir()
    chart = load_chart(fhir.hub)
    resp = make_response(render_template(
        "ehr.html", chart=chart, flavours=list(fhir.flavours.values()), apps=launchable_apps(fhir), error=error,
        selected=request.form if request.method == "POST" else request.args,
        iss={name: iss_for(fhir, name) for name in fhir.flavours}), status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def make_blueprint() -> Blueprint:
    bp = Blueprint("ehr", __name__)

    @bp.get("/")
    def index() -> Response:
        return _page()

    @bp.post("/launch")
    def launch() -> BaseResponse:
        fhir = flavoured_fhir()
        form = request.form
        flavour = fhir.flavours.get(form.get("flavour", ""))
        apps = {c.client_id: c for c in launchable_apps(fhir)}
        app = apps.get(form.get("app", ""))
        if flavour is None or app is None or not form.get("patient") or not form.get("practitioner"):
            return _page(400, "Choose a practitioner, a patient, a vendor flavour and an app.")
        encounter = form.get("encounter") or None
        if encounter and encounter not in {e.id for e in load_chart(fhir.hub).encounters.get(form["patient"], [])}:
            return _page(400, "The encounter chosen belongs to another patient.")
        choice = LaunchChoice(practitioner=form["practitioner"], patient=form["patient"], encounter=encounter,
                              flavour=flavour.name, client_id=app.client_id,
                              need_patient_banner="banner" in form)
        style_url = f"{fhir.hub.origin}/sandbox/style/{flavour.name}.json"
        try:
            launch_id = fhir.hub.create_launch(launch_context(choice, flavour, style_url))
        except HubError:
            return _page(400, "The hub refused the launch (check the chosen patient and encounter).")
        return redirect(app_launch_url(app.launch_uri, iss_for(fhir, flavour.name), launch_id), 303)

    @bp.get("/style/<name>.json")
    def style(name: str) -> Response:
        if name not in flavoured_fhir().flavours:
            return Response(b"{}", 404, content_type="application/json")
        return Response(orjson.dumps(STYLE), content_type="application/json",
                        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=300"})

    return bp
