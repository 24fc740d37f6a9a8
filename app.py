"""CI Board: the pages this viewer may see, in one navigation."""

import streamlit as st

from ciboard.dashboard import warehouse

st.set_page_config(page_title="CI Board", page_icon=":material/insights:", layout="wide")
warehouse()

pages = [
    st.Page("pages/data_map.py", title="Data map", icon=":material/menu_book:", url_path="data-map"),
]
st.navigation(pages).run()
