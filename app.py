"""CI Board: the pages this viewer may see, in one navigation, and the filters they share."""

import streamlit as st

from ciboard.dashboard import warehouse
from ciboard.filters import filter_bar

st.set_page_config(page_title="CI Board", page_icon=":material/insights:", layout="wide")
warehouse()

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
page = st.navigation(pages)
st.session_state["filters"] = filter_bar()
page.run()
