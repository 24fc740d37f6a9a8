"""What the server answers before any page runs.

Streamlit 1.67 serves `/_stcore/metrics` (its counts of sessions, script runs and cached data)
to anyone, signed in or not, and adds the route whatever `.streamlit/config.toml` says. Those
figures tell an outsider when a meeting is on and how many people use the dashboard, so the
route is closed here, below every page, rather than left to a reverse proxy someone may not run.
"""

import re

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

# Matched on the decoded path with repeated and trailing slashes folded, so `/_stcore/metrics/`,
# `//_stcore//metrics` and a base URL path in front all meet the same rule.
CLOSED = re.compile(r"(^|/)_stcore/metrics$", re.IGNORECASE)


def closed(path: str) -> bool:
    """Whether the server refuses this request path."""
    return CLOSED.search(re.sub(r"/+", "/", path).rstrip("/")) is not None


class CloseRoutes:
    """ASGI middleware answering 404 for the closed routes, as for an address that does not exist."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and closed(scope["path"]):
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)
