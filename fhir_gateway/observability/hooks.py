"""One ``before_request``, one ``after_request`` and one ``teardown_request`` hook per Flask app.

The request log, the security headers and the idle logoff each used to register their own hooks;
Flask's per-hook dispatch (an ``ensure_sync`` check and a call per hook, per request) and the
repeated lookups added up to a noticeable share of a cheap request. They now add *steps* here, and
the app gets a single hook of each kind that runs the steps:

- before: in registration order (the request log first: it fixes the request id);
- after: in reverse registration order, as Flask runs its own ``after_request`` functions (so the
  request log, registered first, still runs last and logs the final status);
- teardown: in reverse registration order.

The hooks are registered where the first step is added, so relative to other hooks the order is
the one the separate hooks had.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, Response

Before = Callable[[], Response | None]
After = Callable[[Response], Response]
Teardown = Callable[[BaseException | None], None]

EXTENSION = "telehub.hooks"


@dataclass
class Steps:
    before: list[Before] = field(default_factory=list)
    after: list[After] = field(default_factory=list)  # kept in the order they run (newest first)
    teardown: list[Teardown] = field(default_factory=list)  # likewise

    def add(self, *, before: Before | None = None, after: After | None = None,
            teardown: Teardown | None = None) -> None:
        if before is not None:
            self.before.append(before)
        if after is not None:
            self.after.insert(0, after)
        if teardown is not None:
            self.teardown.insert(0, teardown)


def steps(app: Flask) -> Steps:
    """The app's steps, registering its three hooks on first use."""
    found = app.extensions.get(EXTENSION)
    if isinstance(found, Steps):
        return found
    found = Steps()
    app.extensions[EXTENSION] = found
    before, after, teardown = found.before, found.after, found.teardown

    @app.before_request
    def _telehub_before() -> Response | None:
        for step in before:
            answer = step()
            if answer is not None:  # a step may answer the request itself (as a before_request hook can)
                return answer
        return None

    @app.after_request
    def _telehub_after(response: Response) -> Response:
        for step in after:
            response = step(response)
        return response

    @app.teardown_request
    def _telehub_teardown(exc: BaseException | None) -> None:
        for step in teardown:
            step(exc)

    return found


__all__ = ["Steps", "steps"]
