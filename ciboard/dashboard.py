"""What every page shares: the warehouse, the viewer's scope, and cached queries.

Streamlit-side only; the numbers come from ciboard.queries, never from SQL here.

While a facilitator presents with "Vendor A, B, C" on, every frame a page reads through `query`
carries the presented meeting's letters (ciboard.letters) in place of vendor ids and names (in id
columns and in free text such as an event's title or a file name), and the names of vendors'
people as "Vendor C staff 1"; vendor ids a page passes back are read as aliases. So no page can put
a vendor's id or name on a shared screen, in a chart or in a download, by forgetting to.
"""

from typing import Any

import pandas as pd
import streamlit as st

from ciboard import accounts, charts, letters, metric_edits, privacy, queries, session, session_checks, signal_store
from ciboard.access import Scope, ScopeError
from ciboard.accounts import Account
from ciboard.settings import get_settings
from ciboard.warehouse import Warehouse


@st.cache_resource(show_spinner=False)
def warehouse() -> Warehouse:
    """One warehouse per server process, brought up to the code. It draws nothing: Streamlit
    would replay it on every page. On a fresh machine main.py has the demo built first
    (ciboard.first_run)."""
    store = Warehouse(get_settings())
    store.upgrade_if_stale()
    return store


def account() -> Account:
    """The signed-in account; main.py signs in before any page runs."""
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
    """The current warehouse version as a cache key: its file, so no two warehouses share one,
    and the newest rejected file, which readers see without a new version."""
    return warehouse().read_key()


@st.cache_data(show_spinner=False, max_entries=512)
def _run(version: str, view: str, scope_text: str, params: tuple[tuple[str, Any], ...]) -> pd.DataFrame:
    # A few slow views the pages open on are read once per version by the server (ciboard.signal_store).
    frame = signal_store.view_of(warehouse(), Scope.parse(scope_text), view, dict(params))
    if "n" in frame:
        # Pages count with floats: a hidden cell's count is NaN, and NaN compares False.
        frame["n"] = frame["n"].astype("float64")
    return frame


@st.cache_data(show_spinner=False, max_entries=512)
def _lettered(version: str, view: str, scope_text: str, params: tuple[tuple[str, Any], ...], shown: letters.Letters) -> pd.DataFrame:
    raw = _run(version, view, scope_text, params)
    frame = shown.frame(raw)
    ids = raw["vendor_id"].dropna() if "vendor_id" in raw else pd.Series(dtype=object)
    if len(ids) and ids.astype(str).is_monotonic_increasing:
        # One vendor's rows after another's, in id order, would give the letters away on every chart
        # and table drawn in the frame's order: they come in letter order.
        first = "first" if pd.isna(raw["vendor_id"].iloc[0]) else "last"
        frame = frame.sort_values("vendor_id", kind="stable", na_position=first, key=_letter_order).reset_index(drop=True)
    return frame


def _letter_order(aliases: pd.Series) -> pd.Series:
    """"Vendor B" before "Vendor AA"."""
    return aliases.map(lambda a: (len(a), a) if isinstance(a, str) else a)


def query(view: str, **params: Any) -> pd.DataFrame:
    """A view in the viewer's scope, cached per warehouse version, scope and parameters; with
    vendors as the presented meeting's letters while presenting with aliases on."""
    if "vendor_id" in params:
        params["vendor_id"] = vendor_ids(params["vendor_id"])
    key = version()
    if view in queries.CHECKED:
        # What counts toward payment moves with the district's decisions about flagged sessions too.
        key += f"|checks-{session_checks.revision(session.app_db())}"
    shown = lettering()
    if shown:
        return _lettered(key, view, str(scope()), freeze(params), shown)
    return _run(key, view, str(scope()), freeze(params))


def being_prepared(view: str, **params: Any) -> bool:
    """Whether the server is preparing this reading of the view for the current version: a page
    says so and shows the rest meanwhile, rather than wait for it."""
    if "vendor_id" in params:
        params["vendor_id"] = vendor_ids(params["vendor_id"])
    given = {k: v for k, v in params.items() if v is not None}
    return signal_store.view_being_prepared(warehouse(), scope(), view, given)


def reads(view: str) -> bool:
    """Whether the viewer may read the view: a page leaves out the parts it may not."""
    return queries.readable(scope(), view)


def choices() -> pd.DataFrame:
    """The filter bar's values in the viewer's scope, by the warehouse's ids and names (never
    aliased: forms that store a vendor id read them)."""
    return _run(version(), "choices", str(scope()), ())


def freeze(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Parameters as a cache key."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items() if v is not None))


# --- Vendors as "Vendor A, B, C" ---------------------------------------------------------------


@st.cache_data(show_spinner=False)
def _letters(version: str, scope_text: str, meeting: str, people: tuple) -> letters.Letters:
    """The letters `meeting` draws for the vendors in the scope (ciboard.letters)."""
    choices = _run(version, "choices", scope_text, ())
    # Students no vendor tutors are no vendor to disguise: they read "Not tutored" on a shared screen too.
    vendors = choices[(choices["dimension"] == "vendor_id") & (choices["value"] != queries.NOT_TUTORED)]
    return letters.Letters.draw(letters.secret(session.app_db()), meeting,
                                dict(zip(vendors["value"].astype(str), vendors["label"].astype(str))), people)


def lettering() -> letters.Letters | None:
    """The presented meeting's letters while presenting with "Vendor A, B, C" on; None otherwise."""
    if not session.aliasing():
        return None
    return _letters(version(), str(scope()), session.letters_meeting(), letters.vendor_people(session.app_db()))


def aliases() -> dict[str, str]:
    """Vendor id -> alias while presenting with aliases on; empty otherwise."""
    shown = lettering()
    return shown.aliases if shown else {}


def vendor_ids(values: Any) -> Any:
    """Vendor ids as the query layer knows them, from values a page holds (aliases while aliasing)."""
    real = {alias: v for v, alias in aliases().items()}
    if not real:
        return values
    if isinstance(values, (list, tuple)):
        return [real.get(str(v), v) for v in values]
    return real.get(str(values), values)


def keep_vendor_choice(key: str, label, *, by_id: bool = False) -> None:
    """Before a vendor chooser bound to the address is drawn: a choice made under other letters
    (before "Vendor A, B, C" was switched on or off, or another meeting's) carries over to the same
    vendor's name now, and the address is rewritten in the label the chooser now shows (the
    frontend would keep the old one, a vendor's name in the address bar of a shared screen).
    `label` is the chooser's format_func; `by_id` says its options are vendor ids whether aliasing
    or not (the filter bar's)."""
    now = aliases()
    before = st.session_state.get(f"letters-of-{key}", now)  # alias -> id, as the choice was made
    st.session_state[f"letters-of-{key}"] = now
    if not st.session_state.get(key):
        return
    chosen = st.session_state[key]
    if by_id:
        values = chosen
    else:
        real = {alias: v for v, alias in before.items()}
        swap = {v: now.get(real.get(v, v), real.get(v, v)) for v in (chosen if isinstance(chosen, list) else [chosen])}
        values = [swap[v] for v in chosen] if isinstance(chosen, list) else swap[chosen]
    shown = [label(v) for v in values] if isinstance(values, list) else [label(values)]
    if values != chosen or st.query_params.get_all(key) != shown:
        st.session_state[key] = values  # set in code: Streamlit writes it back to the address


def disguised(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame read outside `query` (the signals, records of meetings), disguised the same way
    while aliasing."""
    shown = lettering()
    return shown.frame(frame) if shown else frame


def disguised_text(text: str) -> str:
    """Free text (a meeting's name, a commitment's action) with vendors and their people as
    letters while aliasing."""
    shown = lettering()
    return shown.text(text) if shown else text


@st.cache_data(show_spinner=False)
def _data_map(version: str) -> pd.DataFrame:
    return queries.data_map(warehouse())


def data_map() -> pd.DataFrame:
    return disguised(_data_map(version()))


def metrics() -> dict[str, dict]:
    """The data map as {metric_id: row}, in the data map's order."""
    return {row["metric_id"]: row for row in data_map().to_dict(orient="records")}


@st.cache_data(show_spinner=False)
def _target_in_force(key: str, metric_id: str, school_year: str, vendor_id: str | None) -> float | None:
    return metric_edits.target_for(warehouse(), metric_id, school_year, vendor_id)


def with_target_in_force(metric: dict, school_year: str, vendor_id: str | None) -> dict:
    """The metric with the target the data map sets for this school year and vendor (None: the
    district's), which may differ from its district-wide target."""
    return {**metric, "target": _target_in_force(version(), metric["metric_id"], school_year, vendor_id)}


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
    with st.popover(f"About {charts.in_sentence(metric['label'])}", icon=":material/info:"):
        st.markdown(f"**{metric['label']}** · {metric['kind']}")
        st.markdown(metric["definition"])
        st.markdown(
            f"**Measured by** {metric['instrument']}  \n**Source** {metric['source']}  \n"
            f"**Timing** {metric['timing']}  \n**Accuracy** {metric['accuracy']}"
        )
        st.page_link("app_pages/data_map.py", label="All definitions in the data map", icon=":material/menu_book:")


def min_cell() -> int:
    return warehouse().settings.min_cell_size


def fewer_than() -> str:
    """What a table shows in place of a hidden value."""
    return f"fewer than {min_cell()}"


def export(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame as a download holds it: each hidden count and measure says why it is hidden
    (ciboard.privacy.for_export), counts are whole numbers, yes/no columns read Yes and No, and
    vendors read as they do on screen."""
    frame = frame.copy()
    for column in ("n", "students"):
        if column in frame and pd.api.types.is_float_dtype(frame[column]):
            known = frame[column].dropna()
            if (known == known.round()).all():
                frame[column] = frame[column].astype("Int64")
    if scope().suppresses_small_cells:  # an analyst's download keeps the small cells' numbers, flagged
        frame = privacy.for_export(frame, min_cell())
    return disguised(charts.yes_no(frame))


def chart_footer(frame: pd.DataFrame, metric: dict | None, *, name: str, who: str, students: int | None = None) -> None:
    """Under every chart: for whom and how many, the small cells hidden (or, for an analyst,
    flagged), the definition, and the data as CSV."""
    left, middle, right = st.columns([3, 1, 1], vertical_alignment="center")
    count = f" · {students:,} students" if students is not None and not pd.isna(students) else ""
    hidden = int(frame["suppressed"].fillna(False).astype(bool).sum()) if "suppressed" in frame else 0
    small = int(frame["small_cell"].fillna(False).astype(bool).sum()) if "small_cell" in frame and not hidden else 0
    if hidden:
        note = f" · {hidden} value(s) over fewer than {min_cell()} students hidden (or hidden so as not to reveal one)"
    elif small:
        note = f" · {small} value(s) over fewer than {min_cell()} students, flagged small_cell: shown to analysts only"
    else:
        note = ""
    left.caption(f"{who}{count}{note}")
    if metric is not None:
        with middle:
            about(metric)
    right.download_button(
        "Download CSV",
        export(frame).to_csv(index=False).encode(),
        file_name=f"{name}.csv",
        mime="text/csv",
        icon=":material/download:",
        key=f"download-{name}",
        width="stretch",
        on_click=audit,
        args=("download", {"file": f"{name}.csv", "rows": len(frame), "page": who}),
    )
