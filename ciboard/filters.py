"""The filter bar every page shares. Its whole state lives in the URL, so a copied link
reproduces the exact view, and it survives page switches and reloads.

It offers only what the viewer's scope contains (a vendor sees its own vendor only) and
returns the parameters of the query layer's views. While presenting with "Vendor A, B, C" on, it
shows vendors by their aliases, in its options and in the address, and returns the aliases the
pages' frames carry (ciboard.dashboard.query reads them back as ids).

Pages also speak the bar's language through it: a link or a button that sets the bar to one
slice, and a dimension's groups named and ordered as the bar shows them.
"""

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from ciboard.access import whose_students
from ciboard.dashboard import aliases, choices, keep_vendor_choice, scope, vendor_ids
from ciboard.queries import NOT_TUTORED

# Dimensions the bar filters on, with the short URL keys a facilitator can read and edit.
MULTI = {
    "vendor_id": ("vendor", "Vendor"),
    "school_id": ("school", "School"),
    "grade": ("grade", "Grade"),
    "race_ethnicity": ("race", "Race/ethnicity"),
    "gender": ("gender", "Gender"),
    "baseline_band": ("band", "Baseline band"),
}
YES_NO = {
    "econ_disadvantaged": ("econ", "Economically disadvantaged"),
    "english_learner": ("el", "English learner"),
    "special_education": ("sped", "Special education"),
}
DOSAGE = {0: "All students", 50: "Met dosage in ≥ half their weeks", 75: "Met dosage in ≥ 3/4 of their weeks"}
ALL = "All"


@dataclass
class Filters:
    start: date
    end: date
    school_year: str
    chosen: dict[str, list[str]] = field(default_factory=dict)  # dimension -> values (vendors as aliases while aliasing)
    min_dosage_share: float | None = None
    # dimension -> value -> name, by the warehouse's values: forms that store a vendor id read it.
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # vendor id -> "Vendor A" while aliasing
    # Whose students nothing chosen means: all of them for the district, a vendor's or a school's own.
    everyone: str = "all students"

    def label(self, dimension: str, value: Any) -> str:
        """How a value of a dimension reads on the page: 'V3 · Keystone Math Corps', 'Vendor C'
        while aliasing, 'Grade 4'."""
        return _label(self.labels, dimension, str(value), self.aliases)

    def params(self) -> dict[str, Any]:
        """The query layer's filter parameters."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "min_dosage_share": self.min_dosage_share,
            **{d: v for d, v in self.chosen.items() if v},
        }

    def describe(self) -> str:
        """Who the numbers are about, in words, for chart captions and the presentation header."""
        parts = []
        for dimension, values in self.chosen.items():
            if not values:
                continue
            name = (MULTI.get(dimension) or YES_NO[dimension])[1]
            if dimension in YES_NO:
                parts.append(f"{name}: {'yes' if values == ['true'] else 'no'}")
            else:
                shown = [self.labels.get(dimension, {}).get(v, v) for v in values]
                parts.append(f"{name}: {', '.join(shown)}")
        if self.min_dosage_share:
            parts.append(DOSAGE[int(self.min_dosage_share * 100)].replace("Met", "met"))
        who = "; ".join(parts) if parts else self.everyone
        return f"{who} · {self.start:%b %-d, %Y} – {self.end:%b %-d, %Y}"


def filter_bar() -> Filters:
    """Draws the filters in the sidebar and returns what they select."""
    offered = choices()
    years = offered[offered["dimension"] == "school_year"].sort_values("value")
    labels = {
        dimension: dict(zip(rows["value"], rows["label"]))
        for dimension, rows in offered.groupby("dimension")
    }
    with st.sidebar:
        st.subheader("Filters")
        year_names = list(years["value"])
        if not year_names:
            st.warning("The warehouse has no school year yet: run `ciboard init --school-year`.")
            st.stop()
        with_data = [i for i, students in enumerate(years["students"]) if students]
        school_year = st.selectbox(
            "School year", year_names, index=with_data[-1] if with_data else len(year_names) - 1,
            key="year", bind="query-params",
            on_change=_forget_dates,
        )
        bounds = years.set_index("value").loc[school_year]
        first, last = pd.Timestamp(bounds["starts_on"]).date(), pd.Timestamp(bounds["ends_on"]).date()
        dates = st.date_input(
            "Dates", value=(first, last), min_value=first, max_value=last, key="dates", bind="query-params",
            format="YYYY-MM-DD",
        )
        start, end = (dates[0], dates[-1]) if dates else (first, last)
        chosen: dict[str, list[str]] = {}
        alias = aliases()
        for dimension, (key, name) in MULTI.items():
            options = list(labels.get(dimension, {}))
            if dimension == "vendor_id" and alias:
                options.sort(key=lambda v: alias.get(v, ""))  # by letter: names would order them
            if len(options) <= 1 and dimension == "vendor_id":
                # A vendor's own vendor is not a choice; what the address asked for goes, so no
                # link the pages build from it carries another vendor's name on.
                _drop_param(key)
                continue
            if dimension == "vendor_id":
                keep_vendor_choice(key, lambda value: _label(labels, "vendor_id", value, alias), by_id=True)
            picked = st.multiselect(
                name, options, key=key, bind="query-params",
                format_func=lambda value, d=dimension: _label(labels, d, value, alias),
                placeholder="All",
            )
            chosen[dimension] = [alias.get(v, v) for v in picked] if dimension == "vendor_id" else picked
        for dimension, (key, name) in YES_NO.items():
            picked = st.segmented_control(name, [ALL, "Yes", "No"], default=ALL, key=key, bind="query-params")
            chosen[dimension] = {"Yes": ["true"], "No": ["false"]}.get(picked or ALL, [])
        dosage = st.selectbox(
            "Dosage", list(DOSAGE), format_func=DOSAGE.get, key="dosage", bind="query-params",
            help="Read outcomes for the students who got the tutoring the contract asks for: at least 3 sessions "
            "of 30 minutes in a week, in at least the chosen share of their tutoring weeks.",
        )
    return Filters(
        start=start,
        end=end,
        school_year=school_year,
        chosen=chosen,
        min_dosage_share=dosage / 100 if dosage else None,
        labels=labels,
        aliases=alias,
        everyone=whose_students(scope(), lambda dimension, value: _label(labels, dimension, value, alias)),
    )


def trend_params(metric: dict, filters: Filters, **narrowed: Any) -> dict[str, list[str]]:
    """The URL query of a link to the Trends page showing `metric` within the viewer's
    filters, narrowed to one slice given as dimension=value (vendor_id="V3", grade=4,
    english_learner=True). For st.page_link(..., query_params=...).

    Built from what the filter bar chose, never from the address as typed: a value the bar
    refused (another vendor, a script) goes no further."""
    params = {}
    if "year" in st.query_params:
        params["year"] = [filters.school_year]
    if "dates" in st.query_params:
        params["dates"] = [filters.start.isoformat(), filters.end.isoformat()]
    if filters.min_dosage_share:
        params["dosage"] = [DOSAGE[int(filters.min_dosage_share * 100)]]
    chosen = {d: v for d, v in filters.chosen.items() if v}
    for dimension, value in narrowed.items():
        if dimension == "vendor_id" and scope().role == "vendor":
            continue  # a vendor's filter bar has no vendor to choose
        if value is not None and not pd.isna(value):
            chosen[dimension] = [str(value).lower() if dimension in YES_NO else str(value)]
    for dimension, values in chosen.items():
        if dimension in YES_NO:
            params[YES_NO[dimension][0]] = ["Yes" if values == ["true"] else "No"]
        else:
            params[MULTI[dimension][0]] = [filters.label(dimension, v) for v in values]
    return {**params, "metric": [metric["label"]]}


def narrow_filters(**narrowed: Any) -> None:
    """Sets the filter bar to one slice given as dimension=value (vendor_id="V3", grade=4,
    english_learner=True). A button's on_click, before st.switch_page: a page link's query
    parameters do not move filters that already have a value in this session."""
    for dimension, value in narrowed.items():
        if value is None or pd.isna(value):
            continue
        if dimension in YES_NO:
            st.session_state[YES_NO[dimension][0]] = "Yes" if str(value).lower() == "true" else "No"
        elif dimension == "vendor_id":
            if scope().role != "vendor":  # a vendor's filter bar has no vendor to choose
                st.session_state[MULTI[dimension][0]] = [vendor_ids(str(value))]
        else:
            st.session_state[MULTI[dimension][0]] = [str(value)]


def group_labels(values: pd.Series, dimension: str, labels: dict[str, dict[str, str]]) -> pd.Series:
    """Readable names for a dimension's values, e.g. 'English learner: yes', 'Grade 4',
    'V5 · Cardinal Tutors'. `labels` is the filter bar's (Filters.labels)."""
    names = labels.get(dimension, {})

    def label(value) -> str:
        if dimension in YES_NO:
            return f"{YES_NO[dimension][1]}: {'yes' if value else 'no'}"
        text = str(value)
        shown = names.get(text, text)
        if text == NOT_TUTORED:
            return "Not tutored"  # no vendor: its id is its name
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


def _label(labels: dict, dimension: str, value: str, alias: dict[str, str]) -> str:
    if dimension == "vendor_id" and value == NOT_TUTORED:
        return "Not tutored"
    if dimension == "vendor_id" and alias:
        return alias.get(value, value)
    label = labels.get(dimension, {}).get(value, value)
    return f"{value} · {label}" if dimension in ("vendor_id", "school_id") and label != value else label


def _drop_param(key: str) -> None:
    try:
        del st.query_params[key]
    except (KeyError, st.errors.StreamlitAPIException):
        pass


def _forget_dates() -> None:
    st.session_state.pop("dates", None)
