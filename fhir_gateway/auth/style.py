"""The hub's SMART style (``smart_style_url``): colours and fonts an app may use to look at home here.

https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#styling — a launching EHR may pass
its own URL in the launch context; otherwise user token responses point at this one.
"""
from __future__ import annotations

from typing import Any

PATH = "/auth/smart-style.json"

STYLE: dict[str, Any] = {
    "color_background": "#ffffff",
    "color_error": "#a40000",
    "color_highlight": "#0b5cad",
    "color_modal_backdrop": "#00000080",
    "color_success": "#1e7b34",
    "color_text": "#1b1b1b",
    "dim_border_radius": "4px",
    "dim_font_size": "16px",
    "dim_spacing_size": "16px",
    "font_family_body": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    "font_family_heading": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
}
