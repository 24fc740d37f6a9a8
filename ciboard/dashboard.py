"""What every page shares: the warehouse, the viewer's scope, and cached queries.

Streamlit-side only; the numbers come from ciboard.queries, never from SQL here.
"""

from typing import Any

import pandas as pd
import streamlit as st

from ciboard import accounts, demo, queries, session
from ciboard.access import Scope, ScopeError
from ciboard.accounts import Account
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


def account() -> Account:
    """The signed-in account; app.py signs in before any page runs."""
    signed_in = st.session_state.get("account")
    if signed_in is None:
        raise ScopeError("not signed in")
    return signed_in


def scope() -> Scope:
    """What the viewer may see: the account's scope, narrowed while presenting."""
    return session.scope_of(account())


def audit(action: str, detail: str | dict = "") -> None:
    accounts.audit(session.app_db(), account(), action, detail)


def version() -> str:
    """The current warehouse version as a cache key: its file, so no two warehouses share one."""
    store = warehouse()
    return str(store.path_of(store.version()))


@st.cache_data(show_spinner=False, max_entries=512)
def _run(version: str, view: str, scope_text: str, params: tuple[tuple[str, Any], ...]) -> pd.DataFrame:
    return queries.run(warehouse(), view, Scope.parse(scope_text), dict(params))


def query(view: str, **params: Any) -> pd.DataFrame:
    """A view in the viewer's scope, cached per warehouse version, scope and parameters."""
    frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items() if v is not None))
    return _run(version(), view, str(scope()), frozen)


@st.cache_data(show_spinner=False)
def _data_map(version: str) -> pd.DataFrame:
    return queries.data_map(warehouse())


def data_map() -> pd.DataFrame:
    return _data_map(version())


def metrics() -> dict[str, dict]:
    """The data map as {metric_id: row}, in the data map's order."""
    return {row["metric_id"]: row for row in data_map().to_dict(orient="records")}


def metric_picker(
    label: str = "Metric",
    *,
    key: str = "metric",
    default: str = "tutoring_attendance_rate",
    frequency: str | None = None,
    exclude: tuple[str, ...] = (),
) -> dict:
    """A metric chooser bound to the URL; returns the metric's data-map row."""
    catalogue = metrics()
    options = [m for m, row in catalogue.items() if (frequency is None or row["frequency"] == frequency) and m not in exclude]
    chosen = st.selectbox(
        label,
        options,
        index=options.index(default) if default in options else 0,
        format_func=lambda m: catalogue[m]["label"],
        key=key,
        bind="query-params",
    )
    return catalogue[chosen]


def about(metric: dict) -> None:
    """The metric's data-map entry, one click away from its chart."""
    with st.popover(f"About {metric['label'].lower()}", icon=":material/info:"):
        st.markdown(f"**{metric['label']}** · {metric['kind']}")
        st.markdown(metric["definition"])
        st.markdown(
            f"**Measured by** {metric['instrument']}  \n**Source** {metric['source']}  \n"
            f"**Timing** {metric['timing']}  \n**Accuracy** {metric['accuracy']}"
        )
        st.page_link("app_pages/data_map.py", label="All definitions in the data map", icon=":material/menu_book:")


def chart_footer(frame: pd.DataFrame, metric: dict | None, *, name: str, who: str, students: int | None = None) -> None:
    """Under every chart: for whom and how many, the definition, and the data as CSV."""
    left, middle, right = st.columns([3, 1, 1], vertical_alignment="center")
    count = f" · {students:,} students" if students is not None else ""
    suppressed = int(frame["suppressed"].sum()) if "suppressed" in frame else 0
    hidden = f" · {suppressed} value(s) over fewer than {warehouse().settings.min_cell_size} students hidden" if suppressed else ""
    left.caption(f"{who}{count}{hidden}")
    if metric is not None:
        with middle:
            about(metric)
    right.download_button(
        "Download CSV",
        frame.to_csv(index=False).encode(),
        file_name=f"{name}.csv",
        mime="text/csv",
        icon=":material/download:",
        key=f"download-{name}",
        width="stretch",
        on_click=audit,
        args=("download", {"file": f"{name}.csv", "rows": len(frame), "page": who}),
    )


def trend_params(metric: dict, filters: Any, **narrowed: Any) -> dict[str, list[str]]:
    """The URL query of a link to the Trends page showing `metric` within the viewer's
    filters, narrowed to one slice given as dimension=value (vendor_id="V3", grade=4,
    english_learner=True). For st.page_link(..., query_params=...)."""
    from ciboard.filters import MULTI, YES_NO, _label  # ciboard.filters imports this module

    kept = {key for key, _ in (*MULTI.values(), *YES_NO.values())} | {"year", "dates", "dosage"}
    params = {key: st.query_params.get_all(key) for key in st.query_params if key in kept}
    for dimension, value in narrowed.items():
        if value is None or pd.isna(value):
            continue
        if dimension in YES_NO:
            params[YES_NO[dimension][0]] = ["Yes" if str(value).lower() == "true" else "No"]
        else:
            params[MULTI[dimension][0]] = [_label(filters.labels, dimension, str(value))]
    return {**params, "metric": [metric["label"]]}


def narrow_filters(**narrowed: Any) -> None:
    """Sets the filter bar to one slice given as dimension=value (vendor_id="V3", grade=4,
    english_learner=True). A button's on_click, before st.switch_page: a page link's query
    parameters do not move filters that already have a value in this session."""
    from ciboard.filters import MULTI, YES_NO  # ciboard.filters imports this module

    for dimension, value in narrowed.items():
        if value is None or pd.isna(value):
            continue
        if dimension in YES_NO:
            st.session_state[YES_NO[dimension][0]] = "Yes" if str(value).lower() == "true" else "No"
        else:
            st.session_state[MULTI[dimension][0]] = [str(value)]


def group_labels(values: pd.Series, dimension: str, labels: dict[str, dict[str, str]]) -> pd.Series:
    """Readable names for a dimension's values, e.g. 'English learner: yes', 'Grade 4',
    'V5 · Cardinal Tutors'. `labels` is the filter bar's (Filters.labels)."""
    from ciboard.filters import MULTI, YES_NO  # the filter bar imports this module

    names = labels.get(dimension, {})

    def label(value) -> str:
        if dimension in YES_NO:
            return f"{YES_NO[dimension][1]}: {'yes' if value else 'no'}"
        text = str(value)
        shown = names.get(text, text)
        return f"{text} · {shown}" if dimension in ("vendor_id", "school_id") and shown != text else shown

    if dimension not in MULTI and dimension not in YES_NO:
        raise ValueError(f"{dimension!r} is not a dimension of the filter bar")
    return values.map(label)


def in_filter_order(frame: pd.DataFrame, dimension: str, labels: dict[str, dict[str, str]]) -> pd.DataFrame:
    """The rows in the filter bar's order of the dimension's values (bands from low to high,
    grades up, vendors and schools by name), not alphabetically by id."""
    order = {value: i for i, value in enumerate(labels.get(dimension, {}))}
    text = frame[dimension].map(lambda v: str(v).lower() if isinstance(v, bool) else str(v))
    return frame.assign(_order=text.map(order).fillna(len(order))).sort_values(["_order", dimension], kind="stable").drop(columns="_order")
