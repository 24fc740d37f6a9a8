"""Who is looking: sign-in, sign-out, session expiry and presentation mode.

The account is fixed at sign-in and kept in the server-side session state; nothing the
browser sends (a URL, a widget value) can change it. Each run re-reads the account, so a
disabled account is signed out at its next click.
"""

from datetime import date, datetime, timedelta

import streamlit as st

from ciboard import accounts, charts, letters
from ciboard.access import Scope
from ciboard.accounts import Account
from ciboard.appdb import AppDB
from ciboard.settings import get_settings

SIGNED_IN = "signed_in"  # session state: {"username": ..., "at": ISO time of sign-in}
NOTICE = "sign_in_notice"
PRESENT = "present"  # the URL flag and toggle of presentation mode
ALIAS = "alias"  # the URL flag and toggle of "Vendor A, B, C"
RUNNING = "running_meeting"  # the draft meeting last opened on Meetings: its letters are the screen's


@st.cache_resource(show_spinner=False)
def _app_db(location: str) -> AppDB:
    db = AppDB(location)
    db.migrate()
    return db


def app_db() -> AppDB:
    settings = get_settings()
    return _app_db(settings.app_db_url or str(settings.app_db_path))


def current_account() -> Account | None:
    """The signed-in account, or None: not signed in, expired, disabled or unknown."""
    settings = get_settings()
    if settings.auth == "oidc":
        if not st.user.get("is_logged_in", False):
            return None
        account = accounts.account_for_email(app_db(), st.user.get("email"))
        if account is not None and st.session_state.get(SIGNED_IN, {}).get("username") != account.username:
            st.session_state[SIGNED_IN] = {"username": account.username, "at": datetime.now().isoformat()}
            accounts.audit(app_db(), account, "sign-in", "through the identity provider")
        return account
    signed_in = st.session_state.get(SIGNED_IN)
    if not signed_in:
        return None
    account = accounts.account(app_db(), signed_in["username"])
    if account is None:
        _forget("Your account is no longer active. Ask an administrator.")
        return None
    if datetime.now() - datetime.fromisoformat(signed_in["at"]) > timedelta(hours=settings.session_hours):
        accounts.audit(app_db(), account, "session expired")
        _forget("Your session has expired. Please sign in again.")
        return None
    return account


def _forget(notice: str) -> None:
    st.session_state.pop(SIGNED_IN, None)
    st.session_state[NOTICE] = notice


def sign_in(username: str, password: str) -> None:
    """Signs in, or leaves a notice for the sign-in page saying why not. Failures are counted per
    client address: the browser's, or the one a proxy on this host (uvicorn's FORWARDED_ALLOW_IPS)
    passes on. Streamlit gives None for a browser on this host."""
    address = st.context.ip_address
    try:
        account = accounts.authenticate(
            app_db(), get_settings(), username, password, address=address if isinstance(address, str) else None
        )
    except accounts.SignInError as error:
        st.session_state[NOTICE] = str(error)
        return
    st.session_state[SIGNED_IN] = {"username": account.username, "at": datetime.now().isoformat()}
    st.session_state.pop(NOTICE, None)


def sign_out() -> None:
    account = current_account()
    if account is not None:
        accounts.audit(app_db(), account, "sign-out")
    st.session_state.pop(SIGNED_IN, None)
    if get_settings().auth == "oidc":
        st.logout()


def presenting() -> bool:
    return bool(st.session_state.get(PRESENT))


def aliasing() -> bool:
    return presenting() and bool(st.session_state.get(ALIAS))


def run_meeting(meeting) -> None:
    """The Meetings page, showing `meeting`: a draft is a meeting being run, and from now on the
    screen shows its letters, the same as its packet. The page is drawn again at once if that
    changes the letters on it. Finalised minutes change nothing: reading them is no new meeting."""
    if meeting.is_final or st.session_state.get(RUNNING) == meeting.id:
        return
    st.session_state[RUNNING] = meeting.id
    if aliasing():
        st.rerun()


def letters_meeting() -> str:
    """Whose letters a presenter shows (ciboard.letters): the meeting being run in this session;
    else the meeting held today, if there is one only; else today's, the same all day."""
    meeting = st.session_state.get(RUNNING)
    if meeting is None:
        meeting = letters.todays_meeting(app_db(), date.today())
    return letters.day_key(date.today()) if meeting is None else letters.meeting_key(meeting)


def scope_of(account: Account) -> Scope:
    """The account's scope, narrowed in presentation mode: on a shared screen nobody sees
    student rows or small cells, whoever is presenting."""
    scope = account.scope
    if presenting() and scope.sees_students:
        return Scope("facilitator")
    return scope


ROLE_NAMES = {
    "analyst": "Analyst",
    "facilitator": "Facilitator",
    "admin": "Administrator",
    "vendor": "Vendor",
    "school": "School",
    "evaluator": "Evaluator",
}
# Presentation mode: a shared screen read from the back of a room, 1280x720 at the least. The
# filters' line sits in the header bar beside the sidebar's switch; the page's opening sentence,
# which the presenter says aloud, gives its room to the chart; tiles wrap their labels, never cut them.
LARGE_TYPE = """<style>
html { font-size: 18px; }
[data-testid="stMainBlockContainer"] { max-width: 100%; padding-top: 3.2rem !important; padding-bottom: 2rem !important; }
[data-testid="stMain"] [data-testid="stVerticalBlock"] { gap: 0.7rem; }
.st-key-presenting { position: fixed; top: 1.05rem; left: 4.2rem; right: 4.2rem; z-index: 999991; pointer-events: none; }
.st-key-presenting p { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-size: 1rem; }
[data-testid="stMain"] h1 { font-size: 2rem; padding: 0 0 0.2rem; }
[data-testid="stElementContainer"]:has(h1) + [data-testid="stElementContainer"]:has([data-testid="stCaptionContainer"]) { display: none; }
[data-testid="stMetricLabel"] .stMarkdownEllipsis, [data-testid="stMetricLabel"] .stMarkdownEllipsis p,
[data-testid="stMetricDeltaDescription"] .stMarkdownEllipsis, [data-testid="stMetricDeltaDescription"] .stMarkdownEllipsis p,
[data-testid="stMetricDelta"] .stMarkdownEllipsis, [data-testid="stMetricDelta"] .stMarkdownEllipsis p {
    white-space: normal; overflow: visible; text-overflow: clip; overflow-wrap: anywhere; }
[data-testid="stMetricLabel"] { height: auto; min-height: 1.5rem; }
</style>"""


def account_box(account: Account) -> None:
    """Who is signed in, the way out, and the presentation switches, at the top of the sidebar."""
    with st.sidebar:
        who = st.empty()  # filled after the switches, which decide whether a vendor may be named
        st.button("Sign out", icon=":material/logout:", on_click=sign_out, key="sign_out")
        st.toggle(
            "Presentation mode",
            key=PRESENT,
            bind="query-params",
            help="For a shared screen: large type, the sidebar folded away, no student rows and small groups hidden.",
        )
        if presenting():
            st.toggle(
                "Vendors as Vendor A, B, C",
                key=ALIAS,
                bind="query-params",
                help="The same letter stands for the same vendor on every page, and in the meeting's packet, for the "
                "whole meeting: the draft meeting opened on Meetings, else today's. The next meeting draws new "
                "letters. People of a vendor read as its staff.",
            )
        if aliasing():
            who.markdown(f"**{ROLE_NAMES[account.role]}**")  # a vendor's own name stays off the shared screen
        else:
            role = ROLE_NAMES[account.role] + (f" · {account.vendor_id}" if account.vendor_id else "")
            role += (" · " + ", ".join(account.school_ids)) if account.school_ids else ""
            who.markdown(f"**{account.display_name}**  \n{role}")
        st.divider()


def presentation_header(filters) -> None:
    """In presentation mode: large type, charts with text to read across a room, the sidebar
    folded, and one line saying what is on screen."""
    charts.SHARED_SCREEN.set(presenting())
    if not presenting():
        return
    st.set_page_config(initial_sidebar_state="collapsed")
    st.html(LARGE_TYPE)
    with st.container(key="presenting"):
        st.caption(f":material/co_present: Presenting · {filters.describe()} · open the sidebar (›) to change filters")
