"""The Overview page through AppTest: every outcome's standing, payments, data freshness and the
signals since the last meeting, checked against the query layer on the demo district."""

from datetime import date
from urllib.parse import parse_qs

import pandas as pd
import pytest

from ciboard import charts, queries
from ciboard.access import ANALYST
from ciboard.filters import MULTI, YES_NO
from conftest import VENDOR_LABELS, download, figures, open_page, plotted

V3_WINTER = {"vendor": VENDOR_LABELS["V3"], "dates": ["2025-09-01", "2026-01-31"], "since": "2025-12-15"}


def tiles(app) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def latest(warehouse, metric: dict, **filters) -> pd.Series:
    grain = "week" if metric["frequency"] == "weekly" else "window"
    series = queries.run(warehouse, "series", ANALYST, {"metric": metric["metric_id"], "grain": grain, **filters})
    return series.dropna(subset=["value"]).iloc[-1]


def contracts(warehouse, end: str, vendors=None) -> pd.DataFrame:
    lines = queries.run(warehouse, "payments", ANALYST, {"end": end})
    if vendors:
        lines = lines[lines["vendor_id"].isin(vendors)]
    return lines.drop_duplicates(["vendor_id", "contract_starts_on"]), lines


@pytest.fixture
def outcomes(dashboard) -> dict[str, dict]:
    catalogue = queries.data_map(dashboard).to_dict(orient="records")
    return {m["metric_id"]: m for m in catalogue if m["kind"] in ("payment outcome", "process outcome")}


def test_the_overview_shows_where_every_outcome_stands(dashboard, outcomes):
    app = open_page("app_pages/overview.py")
    assert app.title[0].value == "Overview"
    assert app.markdown[0].value.endswith("For all students · Aug 1, 2025 – Jul 31, 2026")
    shown = tiles(app)
    assert {m["label"] for m in outcomes.values()} <= set(shown)
    year = {"start": "2025-08-01", "end": "2026-07-31"}
    for metric in outcomes.values():
        assert shown[metric["label"]] == charts.format_value(latest(dashboard, metric, **year)["value"], metric), metric["label"]

    # The icons: window metrics have too few points; weekly ones carry both Making Data Count icons.
    table = download(app, "overview-outcomes").set_index("metric_id")
    assert list(table.index) == list(outcomes)
    assert (table.loc[[m for m, row in outcomes.items() if row["frequency"] == "window"], "variation"] == "Too few points to chart").all()
    weekly = table[table["grain"] == "week"]
    assert set(weekly["variation"]) <= {"Common cause", "Improvement (high)", "Improvement (low)", "Concern (high)", "Concern (low)"}
    assert set(weekly["assurance"]) <= {"Consistently passing", "Consistently failing", "Hit or miss"}
    badges = " ".join(m.value for m in app.markdown)
    for words in set(weekly["variation"]) | set(weekly["assurance"]):
        assert f"{words}]" in badges

    # The download holds the tiles: the same values, students, and changes.
    for metric_id, row in table.iterrows():
        metric = outcomes[metric_id]
        assert charts.format_value(row["value"], metric) == shown[metric["label"]]
        assert row["students"] == latest(dashboard, metric, **year)["n"]
        tile = next(m for m in app.metric if m.label == metric["label"])
        assert tile.delta == charts.format_change(row["change_from_previous"], metric)

    # Each tile links to its trend.
    links = [parse_qs(link.proto.query_string) for link in app.get("page_link") if link.proto.page == "trends"]
    assert sorted(link["metric"] for link in links) == sorted([m["label"]] for m in outcomes.values())

    # Payments to date match the payments view's totals.
    per_contract, lines = contracts(dashboard, "2026-07-31")
    earned = per_contract["amount_earned"].sum()
    assert shown["Earned"] == charts.format_money(earned)
    assert next(m for m in app.metric if m.label == "Earned").help.startswith(f"${earned:,.0f} of ${per_contract['cap'].sum():,.0f}")
    assert shown["Students served"] == f"{per_contract['students_served'].sum():,}"
    assert shown["Students successful"] == f"{lines['students_successful'].sum():,}"
    bars = {trace["name"]: plotted(trace, "x") for trace in figures(app)[0]["data"]}
    assert bars["Earned"] == pytest.approx(per_contract["amount_earned"].tolist())
    assert bars["Cap"] == pytest.approx(per_contract["cap"].tolist())

    # Data freshness counts what the quality view marks late or missing.
    quality = queries.run(dashboard, "quality", ANALYST, year)
    vendor_files = quality[quality["vendor_id"].notna() & quality["kind"].isin(["sessions", "survey"])]
    assert shown["Late"] == f"{(vendor_files['status'] == 'late').sum():,}"
    assert shown["Missing or rejected"] == f"{vendor_files['status'].isin(['missing', 'rejected']).sum():,}"
    assert any(link.proto.page == "data-quality" for link in app.get("page_link"))


def test_a_vendor_filter_changes_the_numbers_and_finds_its_drop(dashboard, outcomes):
    app = open_page("app_pages/overview.py", query=V3_WINTER)
    assert "For Vendor: Keystone Math Corps · Sep 1, 2025 – Jan 31, 2026" in app.markdown[0].value
    shown = tiles(app)
    attendance = outcomes["tutoring_attendance_rate"]
    v3 = latest(dashboard, attendance, vendor_id=["V3"], start="2025-09-01", end="2026-01-31")
    everyone = latest(dashboard, attendance, start="2025-09-01", end="2026-01-31")
    assert shown[attendance["label"]] == charts.format_value(v3["value"], attendance)
    assert shown[attendance["label"]] != charts.format_value(everyone["value"], attendance)

    per_contract, _ = contracts(dashboard, "2026-01-31", ["V3"])
    assert shown["Earned"] == charts.format_money(per_contract["amount_earned"].sum())
    assert shown["Students served"] == f"{per_contract['students_served'].sum():,}"

    # V3's tutoring attendance fell at week 20 (Dec 15): a concern on its own chart since then.
    assert app.date_input(key="since").value == date(2025, 12, 15)
    everything = download(app, "overview-signals")
    assert (everything["vendor_id"] == "V3").all(), "within the vendor filter, and named for it"
    assert everything["period_start"].min() >= "2025-12-15"
    app.multiselect(key="signal_metrics").select("tutoring_attendance_rate").select("dosage_minutes").run()
    found = download(app, "overview-signals")
    assert set(found["metric_id"]) == {"tutoring_attendance_rate", "dosage_minutes"}
    assert len(found) < len(everything)
    drop = found[(found["metric_id"] == "tutoring_attendance_rate") & found["dimension"].isna()]
    assert len(drop) == 1
    drop = drop.iloc[0]
    assert drop["point_type"] == "special_cause_concern"
    assert drop["period_start"] >= "2025-12-15" and drop["value"] < drop["center"]
    assert found["point_type"].iloc[0] == "special_cause_concern", "concerns first"
    if drop.name < 15:  # a row of its own: signal, metric and slice in consecutive cells
        cells = [m.value for m in app.markdown]
        # The slice may carry the groups folded under it on a line of its own.
        assert any(cells[j : j + 2] == [":orange-badge[▼ Concern (low)]", "Tutoring attendance rate"]
                   and cells[j + 2].split("  \n")[0] == VENDOR_LABELS["V3"] for j in range(len(cells)))
    else:  # listed in the expander, linking to its trend
        [rest] = [frame.value for frame in app.dataframe if "Slice" in frame.value.columns]
        listed = rest.iloc[drop.name - 15]
        assert (listed["Signal"], listed["Metric"], listed["Slice"]) == ("Concern (low)", "Tutoring attendance rate", VENDOR_LABELS["V3"])
        assert "vendor=V3" in listed["Trend"] and "metric=Tutoring+attendance+rate" in listed["Trend"]

    # Each row has a Trend button: it opens that slice's chart of that metric.
    i, signal = next((i, s) for i, s in found.head(15).iterrows() if s["metric_id"] == "dosage_minutes" and pd.notna(s["dimension"]))
    app.button(key=f"trend-{i}").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.title[0].value == "Trends"
    assert app.selectbox(key="metric").value == "dosage_minutes"
    assert "Vendor: Keystone Math Corps" in app.caption[-1].value
    # The button narrows the filter bar to the signal's group. (AppTest keeps no sidebar widgets
    # after the first run, so the Trends page cannot read it back here; the browser does.)
    dimension, group = signal["dimension"], str(signal["group"]).removesuffix(".0")
    key, _ = {**MULTI, **YES_NO}[dimension]
    assert app.session_state[key] == ({"True": "Yes", "False": "No"}[group] if dimension in YES_NO else [group])
