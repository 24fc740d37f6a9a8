"""CI Board: sign-in, then the pages this account may see in one navigation, and the filters they share."""

import streamlit as st

from ciboard import session
from ciboard.dashboard import warehouse
from ciboard.filters import filter_bar

st.set_page_config(page_title="CI Board", page_icon=":material/insights:", layout="wide")
warehouse()

account = session.current_account()
st.session_state["account"] = account
if account is None:
    # Pages left out of the navigation cannot be reached, whatever the URL says.
    st.navigation([st.Page("app_pages/sign_in.py", title="Sign in", icon=":material/login:")], position="hidden").run()
    st.stop()

pages = {
    "Data": [
        st.Page("app_pages/overview.py", title="Overview", icon=":material/dashboard:", url_path="overview", default=True),
        st.Page("app_pages/trends.py", title="Trends", icon=":material/show_chart:", url_path="trends"),
        st.Page("app_pages/disparities.py", title="Disparities", icon=":material/balance:", url_path="disparities"),
        st.Page("app_pages/vendors.py", title="Vendors", icon=":material/groups:", url_path="vendors"),
        st.Page("app_pages/relationships.py", title="Relationships", icon=":material/scatter_plot:", url_path="relationships"),
    ],
    "Trust": [
        st.Page("app_pages/data_quality.py", title="Data quality", icon=":material/fact_check:", url_path="data-quality"),
        st.Page("app_pages/data_map.py", title="Data map", icon=":material/menu_book:", url_path="data-map"),
    ],
}
if account.role in ("vendor", "admin"):
    pages["Trust"].append(st.Page("app_pages/upload.py", title="Submit data", icon=":material/upload_file:", url_path="upload"))
if account.is_admin:
    pages["Admin"] = [
        st.Page("app_pages/users.py", title="Accounts", icon=":material/manage_accounts:", url_path="accounts"),
        st.Page("app_pages/audit.py", title="Audit log", icon=":material/history:", url_path="audit"),
    ]
page = st.navigation(pages)
session.account_box(account)
st.session_state["filters"] = filter_bar()
session.presentation_header(st.session_state["filters"])
page.run()
