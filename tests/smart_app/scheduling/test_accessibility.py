"""Structural accessibility checks on every scheduling page: labelled controls, grouped radios, one h1,
document language, and refusals announced (role=alert). Colour contrast is fixed in base.html."""
from __future__ import annotations

from html.parser import HTMLParser

import pytest
from flask import Flask

from smart_app.scheduling import SchedulingService, make_scheduling_blueprint
from smart_app.scheduling.seed import seed_demo_providers
from smart_app.scheduling.web import front_desk

from .conftest import NOW, FlaskHub, patient

PREFIX = "/app/schedule"


class Audit(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.label_for: set[str] = set()
        self.controls: list[dict[str, str | None]] = []
        self.open_labels = 0
        self.fieldset_depth = 0
        self.legends = 0
        self.h1 = 0
        self.lang: str | None = None
        self.ungrouped_radios = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "h1":
            self.h1 += 1
        elif tag == "label":
            self.open_labels += 1
            if a.get("for"):
                self.label_for.add(str(a["for"]))
        elif tag == "fieldset":
            self.fieldset_depth += 1
        elif tag == "legend":
            self.legends += 1
        elif tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append({**a, "_wrapped": "yes" if self.open_labels else None})
            if a.get("type") == "radio" and not self.fieldset_depth:
                self.ungrouped_radios += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.open_labels -= 1
        elif tag == "fieldset":
            self.fieldset_depth -= 1

    def unlabelled(self) -> list[dict[str, str | None]]:
        return [c for c in self.controls if not c["_wrapped"] and c.get("id") not in self.label_for
                and not c.get("aria-label")]


@pytest.fixture
def pages(sqlite_hub: FlaskHub) -> dict[str, tuple[int, str]]:
    hub = sqlite_hub
    ids = seed_demo_providers(hub, NOW, horizon_days=2)
    svc = SchedulingService(hub, clock=lambda: NOW)
    app = Flask("a11y")
    app.register_blueprint(make_scheduling_blueprint(hub, service=svc, actor=front_desk), url_prefix=PREFIX)
    web = app.test_client()
    ny, ca = hub.create(patient("NY")), hub.create(patient("CA"))
    booked = svc.on_demand(ny["id"])
    ny_slot = hub.search("Slot", {"status": "free", "_count": "1"})[0]["id"]
    urls = {
        "index": ("GET", f"{PREFIX}/", None),
        "book": ("GET", f"{PREFIX}/book?patient={ny['id']}", None),
        "refused": ("POST", f"{PREFIX}/book", {"patient": ca["id"], "slot": ny_slot}),
        "availability": ("GET", f"{PREFIX}/providers/{ids['ny-nj']}/availability", None),
        "appointment": ("GET", f"{PREFIX}/appointments/{booked.appointment['id']}", None),
        "error": ("GET", f"{PREFIX}/appointments/nope", None),
    }
    out = {}
    for name, (method, url, data) in urls.items():
        resp = web.open(url, method=method, data=data)
        out[name] = (resp.status_code, resp.get_data(as_text=True))
    return out


def test_every_page_is_structurally_accessible(pages: dict[str, tuple[int, str]]) -> None:
    assert {k: v[0] for k, v in pages.items()} == {"index": 200, "book": 200, "refused": 422, "availability": 200,
                                                   "appointment": 200, "error": 404}
    for name, (_, html) in pages.items():
        audit = Audit()
        audit.feed(html)
        assert audit.lang == "en", name
        assert audit.h1 == 1, name
        assert audit.unlabelled() == [], name
        assert audit.ungrouped_radios == 0, name
        assert audit.legends >= audit.fieldset_depth, name
        assert 'href="#main"' in html and '<main id="main">' in html, name
    assert 'role="alert"' in pages["refused"][1] and 'role="alert"' in pages["error"][1]
    assert "Traceback" not in pages["error"][1]
