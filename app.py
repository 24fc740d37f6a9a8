"""CI Board's server: `streamlit run app.py` serves main.py through Streamlit's own app, with the
routes closed that Streamlit opens to anyone and no setting of 1.67 turns off (see ciboard.server)."""

from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from ciboard.server import CloseRoutes

app = st.App(Path(__file__).with_name("main.py"), middleware=[Middleware(CloseRoutes)])
