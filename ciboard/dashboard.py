"""What every page shares: the warehouse, the viewer's scope, and cached queries.

Streamlit-side only; the numbers come from ciboard.queries, never from SQL here.
"""

from typing import Any

import pandas as pd
import streamlit as st

from ciboard import demo, queries
from ciboard.access import ANALYST, Scope
from ciboard.settings import get_settings
from ciboard.warehouse import Warehouse


@st.cache_resource(show_spinner=False)
def warehouse() -> Warehouse:
    """One warehouse per server process; on a fresh machine the demo district is built first."""
    store = Warehouse(get_settings())
    if not store.exists():
        with st.status("Building the demo district (first run only, about a minute)…", expanded=True) as status:
            line = st.empty()
            demo.build(store, progress=lambda message: line.write(message))
            status.update(label="Demo district ready", state="complete", expanded=False)
    store.upgrade_if_stale()
    return store


def scope() -> Scope:
    # Every signed-in user is an analyst until sign-in and roles arrive.
    return ANALYST


@st.cache_data(show_spinner=False, max_entries=512)
def _run(version: str, view: str, scope_text: str, params: tuple[tuple[str, Any], ...]) -> pd.DataFrame:
    return queries.run(warehouse(), view, Scope.parse(scope_text), dict(params))


def query(view: str, **params: Any) -> pd.DataFrame:
    """A view in the viewer's scope, cached per warehouse version, scope and parameters."""
    frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items() if v is not None))
    return _run(warehouse().version(), view, str(scope()), frozen)


@st.cache_data(show_spinner=False)
def _data_map(version: str) -> pd.DataFrame:
    return queries.data_map(warehouse())


def data_map() -> pd.DataFrame:
    return _data_map(warehouse().version())
