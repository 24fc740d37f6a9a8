"""Sign in: a local account's name and password, or the organisation's identity provider."""

import pandas as pd
import streamlit as st

from ciboard import accounts
from ciboard.session import NOTICE, app_db, sign_in
from ciboard.settings import get_settings

st.title("CI Board")
st.caption("The shared data room of the district, its schools and its tutoring vendors.")

notice = st.session_state.get(NOTICE)
settings = get_settings()
_, middle, _ = st.columns([1, 2, 1])
with middle:
    if notice:
        st.error(notice, icon=":material/lock:")
    if settings.auth == "oidc":
        if st.user.get("is_logged_in", False):
            st.warning(
                f"You are signed in as {st.user.get('email')}, but that address has no CI Board account. "
                "Ask an administrator to add it."
            )
            st.button("Sign out", on_click=st.logout)
        else:
            st.button("Sign in with your organisation's account", icon=":material/login:", on_click=st.login, type="primary")
    else:
        with st.form("sign_in", enter_to_submit=True):
            username = st.text_input("User name", autocomplete="username")
            password = st.text_input("Password", type="password", autocomplete="current-password")
            submitted = st.form_submit_button("Sign in", type="primary", icon=":material/login:")
        if submitted:
            sign_in(username, password)
            st.rerun()

        demo = accounts.demo_credentials(app_db())
        if demo:
            with st.expander("Demo accounts", expanded=True, icon=":material/key:"):
                st.caption(
                    "This is the demo district, so its accounts are listed here: select a password to copy it. "
                    "A district's own database has no default accounts: an administrator adds them with "
                    "`ciboard users add`."
                )
                # st.table, not st.dataframe: its cells are text a person can select and copy. Monospace
                # at full size, so rn reads apart from m.
                st.html("<style>[data-testid='stTable'] code { font-size: 0.95rem; }</style>")
                st.table(
                    pd.DataFrame({
                        "User name": [row["username"] for row in demo],
                        "Password": [f"`{row['password']}`" for row in demo],
                        "Who": [row["display_name"] for row in demo],
                    }),
                    hide_index=True,
                )
