"""Every page on a district that has loaded only some kinds of data: schools, vendors, contracts,
rosters and one week of tutoring sessions, and nothing else (no school attendance, assessments,
exit tickets or annotations). Each page must render for each kind of account and say plainly
where there is nothing to show, rather than fail.
"""

import ast
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
import streamlit as st

from ciboard import accounts, ci_records, followup, meetings, movements
from ciboard.access import Scope
from ciboard.appdb import AppDB
from ciboard.ci_records import Slice
from ciboard.ingest import Submission, ingest
from conftest import ROOT, SAMPLES, figures, make_warehouse, open_page

WEEK = date(2025, 9, 15)  # a Monday
SCHOOLS = {"V1": ["E01", "E02"], "V2": ["M01"]}
STUDENTS_PER_VENDOR = 12
ACCOUNTS = {"analyst": ("analyst", None), "facilitator": ("facilitator", None), "admin": ("admin", None),
            "vendor-v1": ("vendor", "V1"), "school": ("school", None), "evaluator": ("evaluator", None)}
SCHOOL_ACCOUNT_SCHOOLS = ["E02", "M01"]  # one school of each vendor
USERS = ("analyst", "facilitator", "vendor-v1")


def _app_pages() -> list[tuple[str, tuple[str, ...]]]:
    """main.py's PAGES (file, roles), read from main.py itself so a page added there is tested here."""
    tree = ast.parse((ROOT / "main.py").read_text())
    found = {}
    for node in tree.body:
        # PAGES and the role tuples it is written with (EVERYONE, NOT_SCHOOLS, ...): the capitalised names.
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "").isupper():
            found[node.targets[0].id] = eval(compile(ast.Expression(node.value), "main.py", "eval"), dict(found))
    return [(f"app_pages/{file}.py", roles) for _, file, _, _, _, roles in found["PAGES"]]


PAGES = _app_pages()
CASES = [
    pytest.param(user, page, id=f"{user}-{Path(page).stem}")
    for user in ACCOUNTS  # admin too, for the pages only an administrator sees
    for page, roles in PAGES
    if ACCOUNTS[user][0] in roles
]


def write_roster_and_sessions(directory: Path) -> list[Submission]:
    """A roster of 12 students at each of two vendors, and one week of their sessions."""
    roster = ["student_id,vendor_id,school_id,grade,race_ethnicity,gender,econ_disadvantaged,english_learner,"
              "special_education,baseline_band,enrolled_on"]
    sessions = {vendor: ["student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes"] for vendor in SCHOOLS}
    races = ["Hispanic", "Black", "White", "Asian"]
    bands = ["well below", "below", "near"]
    for v, (vendor, schools) in enumerate(SCHOOLS.items()):
        for i in range(STUDENTS_PER_VENDOR):
            student = f"ST{v}{i:06d}"
            grade = 7 if vendor == "V2" else 4 + i % 2
            roster.append(
                f"{student},{vendor},{schools[i % len(schools)]},{grade},{races[i % 4]},{['Female', 'Male'][i % 2]},"
                f"{i % 2},{int(i % 3 == 0)},{int(i % 5 == 0)},{bands[i % 3]},2025-09-08"
            )
            for day in (0, 1, 3):
                attended = 40 if (i + day) % 4 else 0
                sessions[vendor].append(f"{student},{WEEK + timedelta(days=day)},{vendor}-T00{i % 3},3,40,{attended}")
    (directory / "roster.csv").write_text("\n".join(roster) + "\n")
    files = [Submission(directory / "roster.csv", "roster")]
    for vendor, rows in sessions.items():
        path = directory / f"sessions_{vendor}.csv"
        path.write_text("\n".join(rows) + "\n")
        files.append(Submission(path, "sessions", vendor))
    return files


def build(data_dir: Path):
    """The partial district, with one account per role (and one for V1)."""
    warehouse = make_warehouse(data_dir)
    warehouse.init(["2025-26"])
    files = [Submission(SAMPLES / f"{kind}.csv", kind) for kind in ("schools", "vendors", "contracts")]
    scratch = data_dir.parent / "files"
    scratch.mkdir(exist_ok=True)
    ingest(warehouse, files + write_roster_and_sessions(scratch))
    db = AppDB.of(warehouse.settings)
    for username, (role, vendor_id) in ACCOUNTS.items():
        accounts.add_user(db, username, role=role, vendor_id=vendor_id, password=accounts.generate_password(),
                          school_ids=SCHOOL_ACCOUNT_SCHOOLS if role == "school" else ())
    add_ci_records(db)
    return warehouse


def add_ci_records(db: AppDB) -> None:
    """A workgroup with V1 that has met once, with commitments, an analysis and a PDSA cycle about
    a metric with data (tutoring attendance) and about metrics without (exit tickets, SGP)."""
    staff, by = Scope("facilitator"), "facilitator"
    v1 = Slice(vendor_id="V1")
    group = meetings.save_workgroup(db, staff, ci_records.Workgroup(
        name="First-month review", purpose="Is tutoring under way?", vendor_ids=["V1"],
        members=[ci_records.Person("Ana Ruiz", "BrightPath Tutoring", "vendor", "V1")],
    ), by=by)
    met = meetings.save_meeting(db, staff, ci_records.draft_meeting(group, WEEK + timedelta(days=16)), by=by)
    for metric_id, action in (("tutoring_attendance_rate", "Call every absent student's family"),
                              ("sel_identity", "Start the exit tickets")):
        meetings.save_commitment(db, staff, ci_records.Commitment(
            party="vendor", party_id="V1", owner="Ana Ruiz", action=action, made_on=WEEK + timedelta(days=4),
            due_on=WEEK + timedelta(days=30), metric_id=metric_id, slice=v1, meeting_id=met.id,
        ), by=by)
    meetings.save_root_cause(db, staff, ci_records.RootCause(
        metric_id="sgp", problem="Growth is not yet measured", slice=v1, whys=["No fall test yet"] * 5,
        meeting_id=met.id,
    ), by=by)
    meetings.save_pdsa(db, staff, ci_records.PdsaCycle(
        title="Exit tickets at the start of the session", metric_id="sel_identity", start_on=WEEK + timedelta(days=7),
        slice=v1, prediction="More students answer", meeting_id=met.id,
    ), by=by)


@pytest.fixture(scope="module")
def partial_warehouse(tmp_path_factory):
    warehouse = build(tmp_path_factory.mktemp("partial") / "data")
    yield warehouse
    warehouse.close()


@pytest.fixture
def partial(partial_warehouse, monkeypatch):
    """The dashboard reads the partial warehouse (as conftest's `dashboard` reads the demo)."""
    from ciboard.settings import get_settings

    monkeypatch.setenv("CIBOARD_DATA_DIR", str(partial_warehouse.settings.data_dir))
    get_settings.cache_clear()
    st.cache_resource.clear()
    yield partial_warehouse
    get_settings.cache_clear()
    st.cache_resource.clear()


def test_the_warehouse_holds_only_some_kinds_of_data(partial_warehouse):
    with partial_warehouse.cursor() as cur:
        kinds = dict(cur.execute(
            "select submitted_as, count(*) from facts join metrics using (metric_id) group by submitted_as"
        ).fetchall())
        weeks = cur.execute("select count(distinct period_start) from facts").fetchone()[0]
    assert set(kinds) == {"sessions"} and weeks == 1


def text(app) -> str:
    """Everything a page wrote, as one string."""
    found = []

    def walk(node) -> None:
        for attribute in ("value", "label", "body"):
            value = getattr(node, attribute, None)
            if isinstance(value, str):
                found.append(value)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(app._tree)
    return "\n".join(found)


# What a page opened with its defaults says about the data it lacks.
SAYS = {
    "overview": "Only 1 week of data in these dates: control limits need 12 weeks, so nothing can signal yet.",
    "trends": "Only 1 week with data: control limits need 12, so read them as a guide.",
    "relationships": "No data for student self-efficacy (SEL) with these filters: nothing to relate.",
    "pdsa": "No data for student identity (SEL), before or since 2025-09-22, that this account may see.",
}


@pytest.mark.parametrize(("user", "page"), CASES)
def test_every_page_renders(partial, user, page):
    app = open_page(page, user=user)
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    assert app.title, "the page has a title"
    # The partial district's PDSA cycle is about V1's students, not a school's: a school account has none.
    says = "No PDSA cycle yet about your students." if (user, Path(page).stem) == ("school", "pdsa") else SAYS.get(Path(page).stem, "")
    assert says in said(app)


@pytest.mark.parametrize("user", USERS)
def test_the_overview_shows_what_it_has_and_says_what_it_lacks(partial, user):
    app = open_page("app_pages/overview.py", user=user)
    tiles = {m.label: m.value for m in app.metric}
    assert tiles["Tutoring attendance rate"].endswith("%")
    for label in ("Student growth percentile", "Met growth target", "Student identity (SEL)", "Student satisfaction"):
        assert tiles[label] == "–", label
    captions = [c.value for c in app.caption]
    assert captions.count("No data for these filters.") == 5  # assessments (2) and exit tickets and surveys (3)
    # A count of students reads as a whole number even beside outcomes with none.
    assert any(re.search(r"· \d+ students", c) for c in captions) and not any(".0 students" in c for c in captions)


NO_DATA_DATES = ["2026-03-02", "2026-03-27"]  # in the school year, after the one week of sessions
NO_METRIC_DATA = "No data for this metric and these filters."
# A choice on a page that has no data behind it, and what the page says about it.
WITHOUT_DATA = [
    *[("app_pages/trends.py", {"metric": label}, NO_METRIC_DATA) for label in
      ("School attendance rate", "Student growth percentile", "Student identity (SEL)")],
    ("app_pages/trends.py", {"dates": NO_DATA_DATES}, NO_METRIC_DATA),
    ("app_pages/trends.py", {"compare": "school attendance"}, "No data for school attendance rate with these filters."),
    ("app_pages/trends.py", {"compare": "another metric", "metric2": "Student satisfaction"},
     "No data for student satisfaction with these filters."),
    ("app_pages/trends.py", {"compare": "last year"}, "No data for the same weeks last year."),
    ("app_pages/trends.py", {"split": "english learner", "grain": "month"}, "Every group is too small to chart"),
    *[("app_pages/disparities.py", {"metric": label}, NO_METRIC_DATA) for label in
      ("School attendance rate", "Met growth target", "Student identity (SEL)")],
    ("app_pages/disparities.py", {"dates": NO_DATA_DATES}, NO_METRIC_DATA),
    *[("app_pages/vendors.py", {"metric": label}, f"data for {label.lower()} with these filters.") for label in
      ("School attendance rate", "Student growth percentile", "Student satisfaction")],
    ("app_pages/vendors.py", {"dates": NO_DATA_DATES}, "data for tutoring attendance rate with these filters."),
    ("app_pages/relationships.py", {"metric": "Student growth percentile", "metric_y": "Proficient"},
     "No data for student growth percentile or proficient with these filters: nothing to relate."),
    ("app_pages/relationships.py", {"metric": "Tutoring attendance rate", "metric_y": "School attendance rate", "points": "Groups"},
     "No data for school attendance rate with these filters: nothing to relate."),
    ("app_pages/overview.py", {"dates": NO_DATA_DATES}, "No weekly data in these dates: control limits need 12 weeks"),
    ("app_pages/data_quality.py", {"dates": NO_DATA_DATES}, "No weekly data in these dates."),
]


def said(app) -> str:
    """What a page says in words: its messages, captions and text."""
    return "\n".join(e.value for kind in ("info", "warning", "success", "caption", "markdown") for e in getattr(app, kind))


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(
    ("page", "query", "message"), WITHOUT_DATA,
    ids=[f"{Path(p).stem}-{'-'.join(map(str, q.values()))}" for p, q, _ in WITHOUT_DATA],
)
def test_a_choice_without_data_says_so(partial, user, page, query, message):
    app = open_page(page, user=user, query=query)
    assert not app.exception, [e.value for e in app.exception]
    assert message in said(app)
    if page.endswith("vendors.py"):
        # What does not depend on the metric is still there.
        assert {"Payments earned so far", "Data timeliness"} <= {h.value for h in app.subheader}


@pytest.mark.parametrize("user", ["facilitator", "vendor-v1"])
def test_a_meeting_reads_how_commitments_moved_with_and_without_data(partial, user):
    role, vendor_id = ACCOUNTS[user]
    scope = Scope(role, vendor_id)
    db = AppDB.of(partial.settings)
    [group] = meetings.workgroups(db, scope)
    [met] = meetings.meetings(db, scope, group.id)
    prefill = followup.outcomes_prefill(partial, db, scope, group.id, met.held_on)
    moved = {item["commitment"]["metric_id"]: item for item in prefill.commitments}
    assert set(moved) == {"tutoring_attendance_rate", "sel_identity"}
    without = movements.Movement.from_dict(moved["sel_identity"]["movement"])
    assert without.status == "not enough data"
    assert without.note == "No data for student identity (SEL), before or since 2025-09-19, that this account may see."
    assert prefill.signals == [] and followup.summary(prefill, partial)[0].endswith("0 of improvement.")


def test_payments_read_in_the_district_s_own_scale_and_a_contract_without_a_cap_says_so(partial):
    # The sample contracts: V1 capped at $20,000, V2 with no cap.
    app = open_page("app_pages/overview.py", user="analyst")
    earned = next(m for m in app.metric if m.label == "Earned")
    assert earned.value == "$16.8k"
    assert "42% of $20.0k in caps; 1 uncapped" in str(earned.proto.delta)
    bars = next(t for f in figures(app) for t in f["data"] if t.get("name") == "Earned")
    assert bars["text"] == ["$8.4k · 42% of cap", "$8.4k · no cap"]


def test_a_chart_of_one_week_spans_weeks_and_marks_its_limits(partial):
    app = open_page("app_pages/trends.py", user="analyst")
    figure = figures(app)[0]
    axis = figure["layout"]["xaxis"]
    assert [value[:10] for value in axis["range"]] == ["2025-09-01", "2025-09-29"]
    limits = {t["name"]: t for t in figure["data"] if t["name"] in ("Process limits", "Lower limit", "Centre")}
    assert {t["mode"] for t in limits.values()} == {"markers"}
    target = next(t for t in figure["data"] if t["name"].startswith("Target"))
    assert [x[:10] for x in target["x"]] == ["2025-09-01", "2025-09-29"]


def test_coverage_of_a_group_too_small_to_show_reads_hidden_not_missing(partial):
    """V1's grade 4 holds 6 students: a facilitator's coverage of it is hidden, and says why."""
    app = open_page("app_pages/data_quality.py", user="facilitator", query={"grade": "Grade 4"})
    assert not app.exception, [e.value for e in app.exception]
    [coverage] = [f for f in figures(app) if f["data"] and f["data"][0].get("type") == "heatmap"]
    cells = [cell[0] for row in coverage["data"][0]["customdata"] for cell in row]
    assert cells and all(cell == "hidden: too few students" for cell in cells if cell != "not owed")
    assert "hidden: too few students" in cells
