"""Calendar links: a calendar app subscribes to an account's meetings and keeps them current.

The Workgroups page offers the meetings as .ics files, which a member imports again after a
schedule changes. A calendar link is the same file at an address of the account's own,
`/calendar/<token>.ics`, which a calendar app (Outlook, Google Calendar, Apple Calendar)
fetches by itself every few hours, so a new schedule or a cancellation reaches everyone.

A calendar app cannot sign in, so whoever holds the link reads the calendar: the token is a
secret of 192 random bits, kept in the app database only as its SHA-256 (the link is shown
once, when it is made), and making a new link or stopping it ends the old one. The feed holds
what the account's own .ics file holds: the workgroups its scope sees, read as that account
at the time of each fetch, so a disabled account's link, or a vendor taken off a workgroup,
stops getting them. Making and stopping a link are audited; fetches are not, as a calendar
app fetches around the clock.
"""

import hashlib
import re
import secrets
from datetime import date, datetime, timezone

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ciboard import accounts, meeting_calendar, meetings
from ciboard.accounts import Account
from ciboard.appdb import AppDB
from ciboard.settings import Settings, get_settings

PATH = "/calendar/{token}.ics"
TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")  # secrets.token_urlsafe(24)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def address(base_url: str, token: str) -> str:
    """The link a calendar app subscribes to, on the server the page was opened from (`base_url`
    ends with the server's base path, if it has one)."""
    return base_url.rstrip("/") + PATH.format(token=token)


def make_link(db: AppDB, account: Account, *, now: datetime | None = None) -> str:
    """A new calendar link's token for the account; the account's earlier link stops working."""
    token = secrets.token_urlsafe(24)
    made_at = (now or datetime.now(timezone.utc)).replace(microsecond=0).isoformat()
    with db.transaction() as con:
        con.execute("delete from calendar_feeds where username = ?", [account.username])
        con.execute("insert into calendar_feeds (username, token_sha256, made_at) values (?, ?, ?)",
                    [account.username, _digest(token), made_at])
    accounts.audit(db, account, "calendar link", "made (any earlier link stopped)")
    return token


def stop_link(db: AppDB, account: Account) -> bool:
    """Stops the account's calendar link; False if it had none."""
    with db.transaction() as con:
        stopped = con.execute("delete from calendar_feeds where username = ?", [account.username]).rowcount > 0
    if stopped:
        accounts.audit(db, account, "calendar link", "stopped")
    return stopped


def link_made_at(db: AppDB, account: Account) -> datetime | None:
    """When the account's current calendar link was made, or None if it has none."""
    with db.connect() as con:
        row = con.execute("select made_at from calendar_feeds where username = ?", [account.username]).fetchone()
    return datetime.fromisoformat(row[0]) if row else None


def holder(db: AppDB, token: str) -> Account | None:
    """The enabled account whose link this is, or None."""
    if not TOKEN.fullmatch(token):
        return None
    with db.connect() as con:
        row = con.execute("select username from calendar_feeds where token_sha256 = ?", [_digest(token)]).fetchone()
    return accounts.account(db, row[0]) if row else None


def feed(db: AppDB, settings: Settings, token: str, today: date) -> bytes | None:
    """The .ics a calendar link serves, or None for a link that does not (or no longer) work."""
    account = holder(db, token)
    if account is None:
        return None
    scope = account.scope
    groups = meetings.workgroups(db, scope)
    cancelled = {g.id: set(meeting_calendar.cancellations(db, scope, g)) for g in groups if g.schedule}
    return meeting_calendar.ics(groups, f"CI Board: {account.username}", today, time_zone=settings.time_zone,
                                cancelled=cancelled)


async def _serve(request: Request) -> Response:
    settings = get_settings()
    found = await run_in_threadpool(feed, AppDB.of(settings), settings, request.path_params["token"], date.today())
    if found is None:
        return PlainTextResponse("Not Found", status_code=404)
    return Response(found, media_type="text/calendar; charset=utf-8",
                    headers={"Cache-Control": "private, no-store", "X-Robots-Tag": "noindex"})


def routes(base_url_path: str = "") -> list[Route]:
    """The server's calendar route, under Streamlit's `server.baseUrlPath` as its pages are (a
    proxy that forwards only the dashboard's path forwards the links too)."""
    base = base_url_path.strip("/")
    return [Route((f"/{base}" if base else "") + PATH, _serve, methods=["GET"])]
