"""CI Board, one page run: sign-in, then the pages this account may see in one navigation, and the filters they share.

`streamlit run app.py` serves it (app.py closes the routes Streamlit opens that we must not).
"""

import streamlit as st

from ciboard import first_run, session
from ciboard.dashboard import warehouse
from ciboard.filters import filter_bar
from ciboard.warehouse import WarehouseTooNew

EVERYONE = ("analyst", "facilitator", "admin", "vendor", "school", "evaluator")
# A school reads its schools' numbers, follow-up and meetings; a vendor's submissions and
# payments are between the vendor and the district. An evaluator reads what an analyst reads,
# Follow-up too, read-only: its lists and statuses under its pseudonyms, not the log's notes.
NOT_SCHOOLS = ("analyst", "facilitator", "admin", "vendor", "evaluator")
# section, file, title, icon, url path, roles that see it
PAGES = [
    ("Data", "overview", "Overview", "dashboard", "overview", EVERYONE),
    ("Data", "trends", "Trends", "show_chart", "trends", EVERYONE),
    ("Data", "disparities", "Disparities", "balance", "disparities", EVERYONE),
    ("Data", "vendors", "Vendors", "groups", "vendors", EVERYONE),
    ("Data", "payments", "Payments", "payments", "payments", ("analyst", "admin", "vendor", "evaluator")),
    ("Data", "rate_cards", "Rate cards", "request_quote", "rate-cards", ("analyst", "admin", "vendor", "evaluator")),
    ("Data", "relationships", "Relationships", "scatter_plot", "relationships", EVERYONE),
    ("Improve", "meetings", "Meetings", "event_note", "meetings", EVERYONE),
    ("Improve", "follow_up", "Follow-up", "person_search", "follow-up", ("analyst", "facilitator", "vendor", "school", "evaluator")),
    ("Improve", "commitments", "Commitments", "task_alt", "commitments", EVERYONE),
    ("Improve", "root_causes", "Root causes", "account_tree", "root-causes", EVERYONE),
    ("Improve", "pdsa", "PDSA cycles", "autorenew", "pdsa", EVERYONE),
    ("Improve", "workgroups", "Workgroups", "diversity_3", "workgroups", EVERYONE),
    ("Improve", "reports", "Contract reports", "summarize", "reports", EVERYONE),
    ("Trust", "data_quality", "Data quality", "fact_check", "data-quality", NOT_SCHOOLS),
    ("Trust", "data_map", "Data map", "menu_book", "data-map", EVERYONE),
    ("Trust", "upload", "Submit data", "upload_file", "upload", ("vendor", "admin")),
    ("Admin", "users", "Accounts", "manage_accounts", "accounts", ("admin",)),
    ("Admin", "audit", "Audit log", "history", "audit", ("admin",)),
]


def at_every_address(page, title: str) -> list:
    """One page at every page's address, so a link to a page survives signing in (and the first
    start); the pages themselves are not in the navigation and cannot be reached, whatever the URL says."""
    return [st.Page(page, title=title, url_path=url_path, default=i == 0) for i, (*_, url_path, _) in enumerate(PAGES)]


st.set_page_config(page_title="CI Board", page_icon=":material/insights:", layout="wide")
if not first_run.ready():
    # A fresh machine: the demo district is built in the background, its progress shown meanwhile.
    st.navigation(at_every_address(first_run.progress_page, "Building the demo district"), position="hidden").run()
    st.stop()
try:
    warehouse()
except WarehouseTooNew as error:
    # Nothing on any page can be read: say why, and what to do, instead of a traceback.
    st.error(str(error), icon=":material/history:")
    st.stop()

account = session.current_account()
st.session_state["account"] = account
if account is None:
    st.navigation(at_every_address("app_pages/sign_in.py", "Sign in"), position="hidden").run()
    st.stop()

pages: dict[str, list] = {}
for section, file, title, icon, url_path, roles in PAGES:
    if account.role in roles:
        pages.setdefault(section, []).append(
            st.Page(f"app_pages/{file}.py", title=title, icon=f":material/{icon}:", url_path=url_path, default=file == "overview")
        )
page = st.navigation(pages, expanded=True)  # every page in view, not behind "View more"
session.account_box(account)
st.session_state["filters"] = filter_bar()
session.presentation_header(st.session_state["filters"])
page.run()
