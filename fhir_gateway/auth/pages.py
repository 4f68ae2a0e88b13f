# ruff: noqa: E501  (HTML templates)
"""Server-rendered login and consent pages: plain HTML forms, no JavaScript, autoescaped.

Form field names are stable for automation: ``username``, ``password``, ``otp``,
``scope`` (checkboxes) and the submit button ``name="decision" value="allow"|"deny"``.
"""
from __future__ import annotations

from typing import Any

from flask import render_template_string

BASE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{ title }} - Telehub</title>
<style{% if csp_nonce is defined %} nonce="{{ csp_nonce() }}"{% endif %}>body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
label{display:block;margin:.75rem 0 .25rem}input[type=text],input[type=password]{width:100%;padding:.5rem;font-size:1rem}
button{padding:.6rem 1.2rem;font-size:1rem;margin:1rem .5rem 0 0}.error{color:#a00;font-weight:bold}.hint{margin:0 0 .25rem;font-size:.9rem;color:#444}
.notice{background:#fff6d5;border:1px solid #c9a400;padding:.75rem}ul{list-style:none;padding:0}li{margin:.4rem 0}</style>
</head><body><main><h1>{{ title }}</h1>{BODY}</main></body></html>"""

LOGIN = BASE.replace("{BODY}", """
<p>{{ client_name }} wants to connect to your health record.</p>
{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
<form method="post" action="{{ action }}">
<input type="hidden" name="txn" value="{{ txn }}">
<label for="username">Username</label><input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required>
<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>
{% if ask_otp %}<label for="otp">One-time code</label>
<p class="hint" id="otp-hint">The 6-digit code from your authenticator app. Required for clinical and administrator accounts; leave it empty if you have not been given an authenticator.</p>
<input type="text" id="otp" name="otp" inputmode="numeric" pattern="[0-9 ]*" maxlength="8" autocomplete="one-time-code" aria-describedby="otp-hint">{% endif %}
<button type="submit">Sign in</button></form>""")

NOTICE = BASE.replace("{BODY}", """<p role="alert">{{ text }}</p>""")

CONSENT = BASE.replace("{BODY}", """
<p><strong>{{ client_name }}</strong> asks to:</p>
<form method="post" action="{{ action }}">
<input type="hidden" name="txn" value="{{ txn }}">
<ul>{% for s in scopes %}<li>{% if s.required %}<input type="hidden" name="scope" value="{{ s.value }}">&#10003; {{ s.text }}
{% else %}<label><input type="checkbox" name="scope" value="{{ s.value }}" checked> {{ s.text }}</label>{% endif %}</li>{% endfor %}</ul>
{% if offline_notice %}<p class="notice" role="note">This app asks for <em>offline access</em>: it will keep access to your
records after you close it, until you revoke it.</p>{% endif %}
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></form>""")


def render_login(**ctx: Any) -> str:
    return render_template_string(LOGIN, title="Sign in", **ctx)


def render_too_many(text: str) -> str:
    """The 429 page when there is no sign-in form to show again (the pending request expired)."""
    return render_template_string(NOTICE, title="Please wait", text=text)


def render_consent(**ctx: Any) -> str:
    return render_template_string(CONSENT, title="Allow access?", **ctx)
