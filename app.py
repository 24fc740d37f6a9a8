"""CI Board's server: `streamlit run app.py` serves main.py through Streamlit's own app, with the
routes closed that Streamlit opens to anyone and no setting of 1.67 turns off (see ciboard.server),
a thread that prepares each new warehouse version's signals (see ciboard.signal_store), and the
accounts' calendar links (see ciboard.calendar_feeds)."""

from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from ciboard import calendar_feeds, signal_store
from ciboard.server import CloseRoutes
from ciboard.settings import get_settings

app = st.App(
    Path(__file__).with_name("main.py"),
    routes=calendar_feeds.routes(st.get_option("server.baseUrlPath")),
    middleware=[Middleware(CloseRoutes)],
)
signal_store.watch(get_settings())
