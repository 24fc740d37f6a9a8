"""The Data quality page through AppTest, on the demo district (3000 students, seed 11).

What the demo planted: V4 is habitually late; V6 missed one week of sessions and survey; V2
had one sessions file rejected, then a corrected one; V5 re-submitted a corrected week.
Expected values come from the query layer.
"""

import json
from datetime import date

import pandas as pd
import pytest

from ciboard import queries
from ciboard.access import ANALYST
from conftest import VENDOR_LABELS, default_dates, download, open_page, plotted, view

PAGE = "app_pages/data_quality.py"


def chart(app, key: str) -> dict:
    return {c.proto.id.split("-", 2)[-1]: json.loads(c.proto.spec) for c in app.get("plotly_chart")}[key]


def status_trace(figure: dict, status: str) -> dict:
    return next(t for t in figure["data"] if t["name"].startswith(f"{status} ("))


def test_summary_lines_and_the_submission_timeline(dashboard):
    app = open_page(PAGE)
    quality = view(dashboard, "quality", **default_dates(dashboard))
    sessions = quality[quality["kind"] == "sessions"]
    late = sessions[sessions["status"] == "late"]
    missing = sessions[sessions["status"] == "missing"]
    assert set(late["vendor_id"]) == {"V4"} and len(late) > len(sessions[sessions["vendor_id"] == "V4"]) / 2
    assert set(missing["vendor_id"]) == {"V6"} and len(missing) == 1

    # One line per vendor says what went wrong, in numbers from the quality view.
    lines = {m.value.split("**")[1]: m.value for m in app.markdown if m.value.count("**") >= 2 and "·" in m.value.split("**")[1]}
    weeks = len(sessions[sessions["vendor_id"] == "V4"])
    assert f"session logs: {len(late)} of {weeks} weeks late" in lines[VENDOR_LABELS["V4"]]
    assert "session logs: 1 of" in lines[VENDOR_LABELS["V6"]] and "weeks missing" in lines[VENDOR_LABELS["V6"]]
    assert "exit tickets and surveys: 1 of" in lines[VENDOR_LABELS["V6"]]
    assert f"session logs: all {len(sessions[sessions['vendor_id'] == 'V3'])} weeks on time" in lines[VENDOR_LABELS["V3"]]
    assert "(1 also had a rejected file)" in lines[VENDOR_LABELS["V2"]], "V2's rejected file, corrected in time"

    # The timeline marks each vendor's week by status, in colour and shape.
    figure = chart(app, "timeline")
    late_marks, missing_marks = status_trace(figure, "late"), status_trace(figure, "missing")
    assert late_marks["y"] == [VENDOR_LABELS["V4"]] * len(late)
    assert [x[:10] for x in late_marks["x"]] == [d.isoformat() for d in late["period_start"]]
    assert missing_marks["y"] == [VENDOR_LABELS["V6"]] and missing_marks["x"][0][:10] == missing["period_start"].iloc[0].isoformat()
    assert missing_marks["marker"]["symbol"] == "x" and late_marks["marker"]["symbol"] == "triangle-up"
    assert len(status_trace(figure, "on time")["x"]) == (sessions["status"] == "on time").sum()
    shown = download(app, "submissions-sessions")
    assert len(shown) == len(sessions) and shown["status"].value_counts().to_dict() == sessions["status"].value_counts().to_dict()

    # The exit tickets have their own timeline: V6 missed the same week there.
    app.segmented_control(key="feed").set_value("survey").run()
    survey = status_trace(chart(app, "timeline"), "missing")
    assert survey["y"] == [VENDOR_LABELS["V6"]] and survey["x"] == missing_marks["x"]


def test_rejected_rows_with_their_reasons(dashboard):
    app = open_page(PAGE)
    rejections = view(dashboard, "rejections", **default_dates(dashboard))
    v2 = rejections[rejections["vendor_id"] == "V2"]
    assert len(v2) >= 3 and v2["file_name"].nunique() == 1

    table = app.dataframe[0].value
    assert table["file_name"].tolist() == rejections["file_name"].tolist()
    assert table[["row_number", "column_name", "reason"]].values.tolist() == rejections[["row_number", "column_name", "reason"]].values.tolist()
    assert sorted(table.loc[table["vendor_id"] == "V2", "column_name"]) == sorted(v2["column_name"])
    assert "session_date" in set(v2["column_name"]) and v2["reason"].str.len().gt(0).all()
    assert any(f"{len(rejections)} problem(s) in 1 rejected file(s)" in m.value and v2["file_name"].iloc[0] in m.value for m in app.markdown)
    csv = download(app, "rejected-rows")
    assert csv["reason"].tolist() == rejections["reason"].tolist()
    assert csv["value"].astype(str).tolist() == rejections["value"].astype(str).tolist()


def test_coverage_per_metric_and_week(dashboard):
    app = open_page(PAGE, query={"coverage-vendor": VENDOR_LABELS["V6"]})
    span = default_dates(dashboard)
    coverage = view(dashboard, "coverage", vendor_id=["V6"], **span)
    missed = view(dashboard, "quality", **span).query("vendor_id == 'V6' and status == 'missing'")["period_start"].iloc[0]

    shown = download(app, "coverage")
    assert len(shown) == len(coverage)
    assert shown["with_data"].tolist() == coverage["with_data"].tolist()
    owed = shown[shown["owed"] == "Yes"]  # yes/no columns download as Yes and No
    assert owed["coverage"].tolist() == pytest.approx(coverage.loc[owed.index, "coverage"].tolist())
    assert owed["coverage"].between(0, 1).all()
    tutoring = owed[owed["metric_id"] != "school_attendance_rate"]
    assert tutoring.loc[tutoring["period_start"] == missed.isoformat(), "coverage"].eq(0).all(), "V6's missed week is a gap"
    assert tutoring.loc[tutoring["period_start"] != missed.isoformat(), "coverage"].gt(0.5).all()

    heatmap = chart(app, "coverage")["data"][0]
    z = plotted(heatmap, "z") if isinstance(heatmap["z"], dict) else [v for row in heatmap["z"] for v in row]
    values = [v for v in z if v is not None and v == v]
    assert len(values) == shown["coverage"].notna().sum()
    assert sorted(values) == pytest.approx(sorted(shown["coverage"].dropna().tolist()))
    assert any(f"{missed:%b %-d}: " in m.value and "Tutoring attendance rate 0%" in m.value for m in app.markdown)


def test_freshness_per_vendor_and_feed(dashboard):
    app = open_page(PAGE)
    span = default_dates(dashboard)
    quality = view(dashboard, "quality", **span)
    as_of = min(date.fromisoformat(span["end"]), date.today())

    fresh = download(app, "freshness")
    assert len(fresh) == len(quality.groupby([quality["vendor_id"].fillna("District"), "kind"]))
    sessions = fresh[fresh["kind"] == "sessions"].set_index("source")
    for vendor in ("V1", "V4", "V6"):
        rows = quality[(quality["vendor_id"] == vendor) & (quality["kind"] == "sessions")]
        last = rows["received_at"].max()
        row = sessions.loc[VENDOR_LABELS[vendor]]
        assert pd.Timestamp(row["last_received_at"]) == last
        assert row["latest_period_received"] == rows.loc[rows["received_at"].notna(), "period_end"].max().isoformat()
        assert row["days_since"] == (as_of - last.date()).days
    assert sessions.loc[VENDOR_LABELS["V4"], "latest_due_status"] == quality[(quality["vendor_id"] == "V4") & (quality["kind"] == "sessions")].iloc[-1]["status"]
    assert app.dataframe[-1].value["days_since"].tolist() == fresh["days_since"].tolist()


def test_a_vendor_sees_only_its_own_submissions(dashboard, monkeypatch):
    from ciboard import dashboard as frame
    from ciboard.access import Scope

    monkeypatch.setattr(frame, "scope", lambda: Scope("vendor", "V4"))
    app = open_page(PAGE)
    assert set(status_trace(chart(app, "timeline"), "late")["y"]) == {VENDOR_LABELS["V4"]}
    assert set(download(app, "submissions-sessions")["vendor_id"]) == {"V4"}
    assert set(download(app, "freshness")["source"]) == {VENDOR_LABELS["V4"]}
    assert not [d for d in app.dataframe if "file_name" in d.value.columns], "V2's rejected file is not V4's business"


def flag_tables(app) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The flagged sessions' counts per vendor and check, and their rows, where the page shows them."""
    counts = next((d.value for d in app.dataframe if "not_counted" in d.value.columns), None)
    rows = next((d.value for d in app.dataframe if "flag_key" in d.value.columns), None)
    return counts, rows


def test_flagged_sessions_per_vendor_and_check_with_their_rows(dashboard):
    dates = default_dates(dashboard)
    flags = view(dashboard, "session_checks", **dates)
    # The demo's planted vendor logged sessions on the first snow day and in winter break.
    calendar = flags[flags["check_name"] == "calendar"]
    assert set(calendar["vendor_id"]) == {"V4"} and calendar["session_date"].nunique() == 3
    assert set(calendar["reason"]) == {"on Snow day (closure)", "on Winter break (break)"}

    app = open_page(PAGE)
    counts, rows = flag_tables(app)
    v4 = counts.set_index(["vendor_id", "check_name"]).loc[("V4", "calendar")]
    assert v4["sessions"] == len(calendar) and v4["students"] == calendar["student_key"].nunique()
    assert v4["not_counted"] == len(calendar) and not counts["suppressed"].any()
    assert len(rows) == len(flags) and set(rows["check_name"]) == set(flags["check_name"])
    assert len(download(app, "flagged-sessions")) == len(flags)
    app.segmented_control(key="flag-check").set_value("calendar").run()
    assert set(flag_tables(app)[1]["student_key"]) == set(calendar["student_key"])


def test_the_demo_s_double_booked_tutors_show_under_plausibility_for_the_district_and_on_payments(dashboard):
    from ciboard import demo

    flags = view(dashboard, "session_checks", check="plausibility", **default_dates(dashboard))
    clashes = flags[flags["reason"].str.contains("in two places at once")]
    assert set(clashes["tutor_id"]) == set(demo.DOUBLE_BOOKED)
    app = open_page(PAGE, query={"flag-check": "plausibility"})
    counts, rows = flag_tables(app)
    v4 = counts.set_index(["vendor_id", "check_name"]).loc[("V4", "plausibility")]
    assert v4["sessions"] == len(flags) and v4["pending"] == len(flags)
    assert set(clashes["flag_key"]) <= set(rows["flag_key"])
    # Ten students or more: the district's other staff read the count too, not a hidden cell.
    counts, _ = flag_tables(open_page(PAGE, user="facilitator"))
    seen = counts.set_index(["vendor_id", "check_name"]).loc[("V4", "plausibility")]
    assert not seen["suppressed"] and seen["students"] >= 10
    # The Payments page counts them among the sessions the checks leave out of V4's service.
    left_out = queries.run(dashboard, "statement", ANALYST, {"vendor_id": "V4", "period": "2025-10"}).attrs["left_out"]
    assert left_out["sessions"] >= len(clashes)
    payments = open_page("app_pages/payments.py", user="admin", query={"month": "2025-10"})
    payments.selectbox(key="statement_vendor").set_value("V4").run()
    assert any(f"**{left_out['sessions']:,} attended session(s)**" in m.value for m in payments.markdown)


def decide(app) -> None:
    next(b for b in app.button if b.label == "Decide").click().run()


def test_an_analyst_rejects_flagged_sessions_in_bulk_with_a_reason(dashboard):
    from ciboard import session_checks
    from ciboard.accounts import audit_log
    from ciboard.appdb import AppDB

    db = AppDB.of(dashboard.settings)
    app = open_page(PAGE)
    assert len(app.get("form")) == 2  # in bulk, and one session
    # Rejected, not accepted: other tests read the demo's payments, which a rejection leaves as they were.
    app.selectbox(key="decide-vendor").set_value("V4")
    app.selectbox(key="decide-check").set_value("calendar")
    app.radio(key="decide-decision").set_value("rejected")
    decide(app)
    assert any("needs a reason" in e.value for e in app.error) and session_checks.revision(db) == 0
    app.selectbox(key="decide-vendor").set_value("V4")
    app.selectbox(key="decide-check").set_value("calendar")
    app.radio(key="decide-decision").set_value("rejected")
    app.text_input(key="decide-reason").set_value("schools were closed")
    decide(app)
    assert not app.exception
    assert any("of V4" in s.value and "schools were closed" in s.value for s in app.success)
    counts, rows = flag_tables(app)
    v4 = counts.set_index(["vendor_id", "check_name"]).loc[("V4", "calendar")]
    assert v4["rejected"] == v4["sessions"] and v4["pending"] == 0
    assert set(rows.loc[rows["check_name"] == "calendar", "decision"]) == {"rejected"}
    [logged] = audit_log(db, action="session check reject")
    assert logged["username"] == "analyst" and "schools were closed" in logged["detail"]


def test_an_analyst_decides_one_flagged_session_with_a_reason(dashboard):
    """After the bulk rejection above: one of its sessions decided again, on its own. Rejected
    again, so the demo's payments other tests read stay as they were."""
    from ciboard import session_checks
    from ciboard.accounts import audit_log
    from ciboard.appdb import AppDB

    db = AppDB.of(dashboard.settings)
    app = open_page(PAGE, query={"flag-check": "calendar"})
    _, rows = flag_tables(app)
    one = rows.sort_values(["session_date", "student_key"]).iloc[0]
    others = set(rows["flag_key"]) - {one["flag_key"]}
    before = {key: len(session_checks.history(db, key)) for key in rows["flag_key"]}
    app.selectbox(key="decide-one-session").set_value(one["flag_key"])
    app.radio(key="decide-one-decision").set_value("rejected")
    next(b for b in app.button if b.label == "Decide this session").click().run()
    assert any("needs a reason" in e.value for e in app.error)
    assert {key: len(session_checks.history(db, key)) for key in rows["flag_key"]} == before

    app.selectbox(key="decide-one-session").set_value(one["flag_key"])
    app.radio(key="decide-one-decision").set_value("rejected")
    app.text_input(key="decide-one-reason").set_value("the principal confirmed the closure")
    next(b for b in app.button if b.label == "Decide this session").click().run()
    assert not app.exception
    assert any(one["student_key"] in s.value and "principal confirmed" in s.value for s in app.success)
    after = {key: len(session_checks.history(db, key)) for key in rows["flag_key"]}
    assert after[one["flag_key"]] == before[one["flag_key"]] + 1
    assert all(after[key] == before[key] for key in others)
    logged = audit_log(db, action="session check reject")
    assert '"flags": 1' in logged[0]["detail"] and "principal confirmed" in logged[0]["detail"]


def test_the_district_s_staff_see_counts_and_a_vendor_its_own_rows(dashboard):
    app = open_page(PAGE, user="facilitator")
    counts, rows = flag_tables(app)
    assert rows is None and not app.get("form") and ("V4", "calendar") in set(zip(counts["vendor_id"], counts["check_name"]))
    small = counts[counts["suppressed"]]
    assert small["sessions"].isna().all() and (counts.loc[~counts["suppressed"], "students"] >= 10).all()

    own = open_page(PAGE, user="vendor-v4")
    counts, rows = flag_tables(own)
    assert set(counts["vendor_id"]) == {"V4"} and set(rows["vendor_id"]) == {"V4"} and not own.get("form")
    other = open_page(PAGE, user="vendor-v1")
    assert "V4" not in set(flag_tables(other)[0]["vendor_id"] if flag_tables(other)[0] is not None else [])
