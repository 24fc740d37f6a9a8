"""What the continuous-improvement pages (meetings, commitments, root causes, PDSA cycles,
workgroups) share: the store in the viewer's scope, slices in words and as widgets, and the
screen that shows both versions when two people saved the same record."""

from dataclasses import fields
from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from ciboard import followup, meetings
from ciboard.appdb import AppDB
from ciboard.dashboard import account, aliases, disguised, disguised_text, metrics, scope, warehouse
from ciboard.meetings import EditConflict, Slice
from ciboard.session import app_db

GROUP_DIMENSIONS = {
    "grade": "Grade",
    "race_ethnicity": "Race/ethnicity",
    "gender": "Gender",
    "econ_disadvantaged": "Economically disadvantaged",
    "english_learner": "English learner",
    "special_education": "Special education",
    "baseline_band": "Baseline band",
}
YES_NO = ("econ_disadvantaged", "english_learner", "special_education")


def db() -> AppDB:
    return app_db()


def me() -> str:
    return account().username


def district_staff() -> bool:
    """Analysts, facilitators and admins run the CI process; a vendor reads it and updates its
    own commitments."""
    return scope().role != "vendor"


def labels() -> dict[str, dict[str, str]]:
    return st.session_state["filters"].labels


def vendor_name(vendor_id: str | None) -> str:
    """A vendor's name, or its letter while presenting with "Vendor A, B, C"."""
    if not vendor_id:
        return ""
    alias = aliases().get(vendor_id)
    return alias or labels().get("vendor_id", {}).get(vendor_id, vendor_id)


def say(text: str | None) -> str:
    """Free text people wrote (a workgroup's name, notes, an action), with vendors as their
    letters while presenting with "Vendor A, B, C"."""
    return disguised_text(text) if text else ""


def school_name(school_id: str | None) -> str:
    if not school_id:
        return ""
    return labels().get("school_id", {}).get(school_id, school_id)


def party_text(party: str, party_id: str | None) -> str:
    """'District', 'Cardinal Tutors (vendor)', 'Hamilton Middle (school)'."""
    if party == "vendor":
        return f"{vendor_name(party_id)} (vendor)" if party_id else "Vendor"
    if party == "school":
        return f"{school_name(party_id)} (school)" if party_id else "School"
    return "District"


def metric_label(metric_id: str | None) -> str:
    if not metric_id:
        return "—"
    row = metrics().get(metric_id)
    return row["label"] if row else metric_id


def slice_text(piece: Slice) -> str:
    """A slice in words: 'Cardinal Tutors · English learner: yes'."""
    parts = []
    if piece.vendor_id:
        parts.append(vendor_name(piece.vendor_id))
    if piece.school_id:
        parts.append(school_name(piece.school_id))
    if piece.dimension:
        name = GROUP_DIMENSIONS[piece.dimension]
        value = piece.value
        if piece.dimension in YES_NO:
            value = "yes" if str(value).lower() == "true" else "no"
        elif piece.dimension == "grade":
            value = str(value)
        parts.append(f"{name}: {value}")
    return " · ".join(parts) or "All students"


def slice_picker(key: str, default: Slice | None = None) -> Slice:
    """Widgets for a slice: vendor (a vendor's own, fixed), school, and one student group."""
    default = default or Slice()
    vendors = list(labels().get("vendor_id", {}))
    schools = list(labels().get("school_id", {}))
    left, middle, right, far = st.columns(4)
    if scope().role == "vendor":
        vendor = scope().vendor_id
        left.text_input("Vendor", vendor_name(vendor), disabled=True, key=f"{key}-vendor-fixed")
    else:
        vendor = left.selectbox(
            "Vendor", [None, *vendors], index=([None, *vendors].index(default.vendor_id) if default.vendor_id in vendors else 0),
            format_func=lambda v: "All vendors" if v is None else vendor_name(v), key=f"{key}-vendor",
        )
    school = middle.selectbox(
        "School", [None, *schools], index=([None, *schools].index(default.school_id) if default.school_id in schools else 0),
        format_func=lambda s: "All schools" if s is None else school_name(s), key=f"{key}-school",
    )
    dimensions = [None, *GROUP_DIMENSIONS]
    dimension = right.selectbox(
        "Student group", dimensions, index=dimensions.index(default.dimension) if default.dimension in dimensions else 0,
        format_func=lambda d: "All students" if d is None else GROUP_DIMENSIONS[d], key=f"{key}-dimension",
    )
    value = None
    if dimension in YES_NO:
        value = far.selectbox("Group", ["true", "false"], format_func={"true": "Yes", "false": "No"}.get, key=f"{key}-value")
    elif dimension is not None:
        values = list(labels().get(dimension, {}))
        value = far.selectbox(
            "Group", values, format_func=lambda v: labels()[dimension].get(v, v), key=f"{key}-value",
            index=values.index(str(default.value)) if str(default.value) in values else 0,
        )
    return Slice(vendor_id=vendor, school_id=school, dimension=dimension, value=value)


def metric_picker(key: str, default: str | None = None) -> str:
    catalogue = metrics()
    options = list(catalogue)
    return st.selectbox(
        "Metric", options, index=options.index(default) if default in options else 0,
        format_func=lambda m: catalogue[m]["label"], key=key,
    )


def show_conflict(error: EditConflict) -> None:
    """Both versions of a record two people saved, side by side, field by field."""
    st.error(f"Not saved: {error}", icon=":material/sync_problem:")
    changed = error.changed
    rows = [
        {"field": name.replace("_", " "), "saved by " + str(error.theirs.updated_by): _plain(getattr(error.theirs, name)),
         "yours": _plain(getattr(error.mine, name))}
        for name in changed
    ]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return "\n\n".join(f"{k}: {v}" for k, v in value.items() if v)
    if isinstance(value, list):
        return "\n".join(_plain(v) if not hasattr(v, "__dataclass_fields__") else _record(v) for v in value)
    if hasattr(value, "__dataclass_fields__"):
        return _record(value)
    return "" if value is None else str(value)


def _record(value: Any) -> str:
    return ", ".join(f"{f.name}: {getattr(value, f.name)}" for f in fields(value) if getattr(value, f.name) not in (None, "", []))


def movement_text(movement: dict | None, metric_id: str | None) -> str:
    """'+4.1 points (95% CI +1.2 to +7.0): better' for a followup.Movement as a dict."""
    if not movement:
        return "—"
    if movement.get("status") != "ok":
        return movement.get("note") or "not enough data yet"
    row = metrics().get(metric_id or movement.get("metric_id"), {})
    share = row.get("unit") in ("rate", "proportion", "share") or row.get("aggregation") in ("rate", "proportion")
    scale, unit = (100, " points") if share else (1, "")
    difference = movement.get("difference")
    if difference is None:
        return movement.get("verdict") or "—"
    text = f"{difference * scale:+.1f}{unit}"
    if movement.get("low") is not None and movement.get("high") is not None:
        text += f" (95% CI {movement['low'] * scale:+.1f} to {movement['high'] * scale:+.1f})"
    return f"{text}: {movement.get('verdict', '')}".rstrip(": ")


@st.cache_data(show_spinner="Reading the data since the last meeting…", max_entries=64)
def _prefill(version: str, scope_text: str, workgroup_id: int, held_on: date, filters: tuple) -> dict:
    from ciboard.access import Scope

    prefill = followup.outcomes_prefill(warehouse(), db(), Scope.parse(scope_text), workgroup_id, held_on, dict(filters))
    return followup.snapshot(prefill, dict(filters))


def prefill(workgroup_id: int, held_on: date, filters: dict) -> dict:
    """The outcomes-data part of a meeting's agenda, as `followup.snapshot` shapes it. Cached per
    warehouse version: a new ingest gives a new reading. Commitments change without an ingest,
    so the cache also keys on the latest change to commitments, PDSA cycles and meeting dates
    (not on notes: saving the agenda text does not move a number)."""
    from ciboard.dashboard import version

    frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in filters.items() if v))
    return _prefill(f"{version()}|{_store_stamp()}", str(scope()), workgroup_id, held_on, frozen)


def _store_stamp() -> str:
    with db().connect() as con:
        row = con.execute(
            """select (select coalesce(max(saved_at), '') || '/' || count(*) from history
                       where entity in ('commitment', 'pdsa'))
                   || '/' || (select coalesce(group_concat(held_on), '') from meetings)"""
        ).fetchone()
    return str(row[0])


def packet_downloads(meeting: meetings.Meeting, group: meetings.Workgroup) -> None:
    """The meeting packet as one self-contained HTML file and as Markdown, in the viewer's scope.
    Built on request: the HTML carries its own charting library and weighs a few megabytes."""
    from ciboard.dashboard import audit

    key = f"packet-{meeting.id}-{meeting.revision}-{scope()}"
    left, middle, right = st.columns(3, vertical_alignment="center")
    if key not in st.session_state:
        if left.button("Prepare the meeting packet", icon=":material/folder_zip:"):
            from ciboard import packet

            with st.spinner("Writing the packet…"):
                built = packet.build(warehouse(), db(), scope(), meeting.id)
                st.session_state[key] = {
                    packet.filename(built, "html"): packet.to_html(built), packet.filename(built, "md"): packet.to_markdown(built)
                }
            st.rerun()
        return
    left.caption("The packet holds what this account may see.")
    for column, (name, text) in zip((middle, right), st.session_state[key].items()):
        html = name.endswith(".html")
        column.download_button(
            f"Packet ({'HTML' if html else 'Markdown'})", text.encode(), file_name=name,
            mime="text/html" if html else "text/markdown", icon=":material/download:",
            on_click=audit, args=("export", {"file": name, "meeting": meeting.id}),
        )


def records_frame(items: list, columns: dict[str, Any]) -> pd.DataFrame:
    """A table of records: {column title: function of a record}, vendors disguised while aliasing."""
    frame = pd.DataFrame([{title: get(item) for title, get in columns.items()} for item in items], columns=list(columns))
    return disguised(frame)


def today() -> date:
    return date.today()


__all__ = ["meetings"]
