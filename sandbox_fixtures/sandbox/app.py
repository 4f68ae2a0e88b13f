"""``create_sandbox_app``: the sandbox EHR as its own Flask app, mounted at /sandbox beside the hub.

One route table: the launcher page (:mod:`.ehr`), the inspector (:mod:`.inspector.views`) and the
flavoured endpoints below. Development only: refused when the hub runs with ``TELEHUB_ENV=prod``.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from flask import Flask, Response, redirect, request

from sandbox_fixtures.sandbox import ehr, token_shim
from sandbox_fixtures.sandbox import vendor_errors as errors
from sandbox_fixtures.sandbox.fhir_proxy import FlavouredFhir, ProxyRequest
from sandbox_fixtures.sandbox.flavours import Flavour
from sandbox_fixtures.sandbox.inspector import views as inspector
from sandbox_fixtures.sandbox.vendor_errors import Reply

# no form-action: Chromium applies it to the redirect after the launch form, and apps live on any origin
CSP = "default-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'self'"


class SandboxRefused(RuntimeError):
    """The sandbox EHR is a development tool: it never runs in production."""


def _send(reply: Reply) -> Response:
    resp = Response(reply.body, status=reply.status, content_type=reply.content_type)
    resp.headers.update(reply.headers)
    return resp


def _split_base(flavour: Flavour, rest: str) -> tuple[str | None, Reply | None]:
    """``rest`` below /sandbox/<flavour>/ → the path below the flavoured base, or an error (wrong tenant)."""
    prefix = flavour.fhir_prefix.split("/")
    parts = rest.split("/")
    for want, got in zip(prefix, parts, strict=False):
        if want == "{tenant}":
            if got != flavour.tenant:
                return None, errors.wrong_tenant(flavour)
        elif want != got:
            return None, errors.unknown_type(flavour)
    if len(parts) < len(prefix):
        return None, errors.unknown_type(flavour)
    return "/".join(parts[len(prefix):]), None


def flavoured(name: str, rest: str) -> Any:
    fhir: FlavouredFhir = ehr.flavoured_fhir()
    flavour = fhir.flavours.get(name)
    if flavour is None:
        return _send(Reply(404, b"no such sandbox page", "text/plain"))
    path, problem = _split_base(flavour, rest)
    if problem is not None or path is None:
        return _send(problem or errors.unknown_type(flavour))
    if path == ".well-known/smart-configuration":
        return _send(token_shim.smart_configuration(fhir, flavour))
    if path == "auth/authorize":
        params = parse_qsl(request.query_string.decode()) + list(request.form.items(multi=True))
        return redirect(token_shim.authorize_redirect(fhir, flavour, params), 303 if request.method == "POST" else 302)
    if path == "auth/token" and request.method == "POST":
        return _send(token_shim.token(fhir, flavour, request.form.to_dict(), request.headers.get("Authorization"),
                                      request.remote_addr or ""))
    if path.startswith("auth/"):  # jwks, introspect, revoke, …: the hub's own
        return redirect(f"{fhir.hub.fhir_base}/{path}", 307)
    req = ProxyRequest(method=request.method, path=path,
                       query=parse_qsl(request.query_string.decode(), keep_blank_values=True),
                       headers={k.lower(): v for k, v in request.headers.items()}, body=request.get_data(),
                       remote_addr=request.remote_addr or "")
    return _send(fhir.handle(flavour, req))


def create_sandbox_app(hub_app: Flask, fhir: FlavouredFhir, ins: inspector.Inspector) -> Flask:
    settings = hub_app.extensions["telehub.fhir"].settings
    if settings.env == "prod":
        raise SandboxRefused("the sandbox EHR is for development and tests; it is refused when TELEHUB_ENV=prod")
    app = Flask(__name__, static_url_path="/static")
    app.extensions[ehr.EXT] = fhir
    app.extensions[inspector.EXT] = ins
    app.register_blueprint(ehr.make_blueprint())
    app.register_blueprint(inspector.make_blueprint())
    app.add_url_rule("/<name>/<path:rest>", "flavoured", flavoured,
                     methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    @app.after_request
    def _headers(resp: Response) -> Response:
        if resp.content_type.startswith("text/html"):
            resp.headers.setdefault("Content-Security-Policy", CSP)
            resp.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        return resp

    return app
