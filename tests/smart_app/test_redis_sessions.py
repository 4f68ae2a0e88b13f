"""With TELEHUB_APP_REDIS_URL set, a real launch leaves only sealed records in Redis: no token, no launch
context, no session id in plaintext (the cookie's id is HMAC'd into the key)."""
from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

import redis

from smart_app.app import create_app
from tests.smart_app.conftest import Browser, form_fields


def test_launch_with_redis_sessions_stores_nothing_readable(browser: Browser, redis_url: str,
                                                            redis_key_prefix: str) -> None:
    live = browser.live
    mounted = live.services
    app = create_app(replace(mounted.settings, redis_url=redis_url, redis_prefix=redis_key_prefix),
                     transport=mounted.transport)
    client = app.test_client()
    start = client.get(f"/launch?iss={live.origin}/fhir")  # standalone: same client, same redirect URI
    assert start.status_code == 302
    page = browser.sign_in(browser.session.get(start.headers["Location"], timeout=30))
    fields = [*form_fields(page.text), ("decision", "allow")]
    back = browser.session.post(f"{live.origin}/fhir/auth/consent", data=fields, timeout=30, allow_redirects=False)
    callback = urlsplit(back.headers["Location"])
    assert callback.path == "/app/callback"
    done = client.get(f"/callback?{callback.query}")
    assert done.status_code == 303
    sid = client.get_cookie("telehub_app_sid", path="/")
    assert sid is not None
    dash = client.get("/")
    assert dash.status_code == 200 and b"Today's virtual visits" in dash.data

    session = app.extensions["telehub.app"].store.get("session", sid.value)
    assert session is not None
    secrets = [session["access_token"].encode(), (session["refresh_token"] or "x").encode(), sid.value.encode(),
               session["practitioner"].encode(), b"access_token", b"fhirUser"]
    r = redis.Redis.from_url(redis_url)
    try:
        keys = list(r.scan_iter(match=f"{redis_key_prefix}*"))
        assert keys, "the session was not stored in Redis"
        for key in keys:
            value = bytes(r.get(key) or b"")  # type: ignore[arg-type]
            assert not any(s in key or s in value for s in secrets)
    finally:
        r.close()
