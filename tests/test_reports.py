"""The contract report: its workflow, its frozen numbers, the public copy's protection and its files."""

import io
import re
import shutil

import openpyxl
import pytest
from plotly.offline import get_plotlyjs

from ciboard import accounts, queries, reports
from ciboard.access import Scope, ScopeError
from ciboard.accounts import Account
from ciboard.appdb import AppDB, IntegrityError
from ciboard.ingest import Submission, ingest

from conftest import make_warehouse, sample_submissions, write_csv

ANALYST = Account("ana", "Ana Analyst", "analyst")
OTHER_ANALYST = Account("olu", "Olu Analyst", "analyst")
ADMIN = Account("adm", "Ada Admin", "admin")
FACILITATOR = Account("fac", "Fay Facilitator", "facilitator")
VENDOR = Account("v1", "V1 staff", "vendor", "V1")
STUDENTS = ("ST0000001", "ST0000002", "ST0000003", "ST0000004")
PUBLIC_MIN = 4


def sample_district(data_dir, app_db_url=None, loaded_data_dir=None):
    """The sample district (three served students of V1) where a board sees cells of one student
    and the public cells of PUBLIC_MIN; copied from `loaded_data_dir` where given (the same
    files loaded once: cell sizes are read by the queries, not stored)."""
    if loaded_data_dir is not None:
        shutil.copytree(loaded_data_dir, data_dir)
    warehouse = make_warehouse(data_dir, min_cell_size=1, public_min_cell_size=PUBLIC_MIN, app_db_url=app_db_url)
    if loaded_data_dir is None:
        warehouse.init(["2025-26"])
        ingest(warehouse, sample_submissions())
    return warehouse


@pytest.fixture(scope="module")
def shared_district(tmp_path_factory):
    warehouse = sample_district(tmp_path_factory.mktemp("reports") / "data")
    yield warehouse
    warehouse.close()


@pytest.fixture
def small(shared_district, tmp_path, app_db_url):
    """The sample district, and an app database of the test's own."""
    return shared_district, AppDB(app_db_url or tmp_path / "app.sqlite3")


@pytest.fixture
def own(tmp_path, app_db_url, loaded_data_dir):
    """A sample district of the test's own, for a test that loads data or counts pins."""
    warehouse = sample_district(tmp_path / "data", app_db_url, loaded_data_dir)
    yield warehouse, AppDB.of(warehouse.settings)
    warehouse.close()


def released(warehouse, db, audiences=("board",), texts=None):
    report = reports.create(db, warehouse, ANALYST, "2025-26", "2025-09")
    if texts:
        reports.write(db, ANALYST, report.report_id, texts)
    reports.review(db, warehouse, OTHER_ANALYST, report.report_id, "numbers checked")
    reports.approve(db, ADMIN, report.report_id)
    return reports.release(db, warehouse, ADMIN, report.report_id, list(audiences))


def test_periods_are_the_year_its_quarters_and_its_months(small):
    warehouse, _ = small
    year = reports.period_of(warehouse, "2025-26", "year")
    assert (year.label, str(year.start), str(year.end)) == ("2025-26", "2025-08-01", "2026-07-31")
    q2 = reports.period_of(warehouse, "2025-26", "Q2")
    assert (q2.label, str(q2.start), str(q2.end), q2.kind) == ("2025-26 Q2", "2025-11-01", "2026-01-31", "quarter")
    month = reports.period_of(warehouse, "2025-26", "2025-09")
    assert (str(month.start), str(month.end), month.kind) == ("2025-09-01", "2025-09-30", "month")
    for wrong, says in (("Q5", "period 'Q5'"), ("2027-01", "outside school year"), ("summer", "period 'summer'")):
        with pytest.raises(reports.ReportError, match=says):
            reports.period_of(warehouse, "2025-26", wrong)
    with pytest.raises(reports.ReportError, match="no school year '2030-31'"):
        reports.period_of(warehouse, "2030-31", "year")


def test_the_workflow_goes_in_order_and_refuses_every_other_step(own):
    warehouse, db = own
    report = reports.create(db, warehouse, ANALYST, "2025-26", "2025-09")
    rid = report.report_id
    assert report.state == "draft"
    with pytest.raises(reports.ReportError, match="exists already"):
        reports.create(db, warehouse, ADMIN, "2025-26", "2025-09")
    with pytest.raises(ScopeError):
        reports.create(db, warehouse, FACILITATOR, "2025-26", "Q1")
    reports.write(db, ANALYST, rid, {"summary": "Attendance held up.", "equity": "No gap beyond chance."})
    with pytest.raises(reports.ReportError, match="unknown section"):
        reports.write(db, ANALYST, rid, {"appendix": "x"})
    with pytest.raises(reports.ReportError, match="only a reviewed one"):
        reports.approve(db, ADMIN, rid)
    with pytest.raises(reports.ReportError, match="only a approved one"):
        reports.release(db, warehouse, ADMIN, rid, ["board"])
    with pytest.raises(reports.ReportError, match="other than its author"):
        reports.review(db, warehouse, ANALYST, rid)

    report = reports.review(db, warehouse, OTHER_ANALYST, rid, "checked against Payments")
    assert (report.state, report.reviewer) == ("reviewed", "olu")
    assert report.snapshot["warehouse_version"] == warehouse.version()
    assert "report-%d" % rid in warehouse.pins()[warehouse.version()]
    with pytest.raises(reports.ReportError, match="only a draft one"):
        reports.write(db, ANALYST, rid, {"summary": "changed after review"})
    with pytest.raises(ScopeError, match="an admin approves"):
        reports.approve(db, OTHER_ANALYST, rid)

    report = reports.approve(db, ADMIN, rid, "fine")
    assert report.state == "approved"
    with pytest.raises(ScopeError, match="an admin releases"):
        reports.release(db, warehouse, ANALYST, rid, ["board"])
    with pytest.raises(reports.ReportError, match="release to one or more"):
        reports.release(db, warehouse, ADMIN, rid, [])
    with pytest.raises(reports.ReportError, match="not press"):
        reports.release(db, warehouse, ADMIN, rid, ["board", "press"])

    report = reports.release(db, warehouse, ADMIN, rid, ["public", "board"])
    assert (report.state, report.audiences) == ("released", ("board", "public"))
    assert [e.state for e in report.events] == ["draft", "reviewed", "approved", "released"]
    for step in (lambda: reports.reopen(db, warehouse, ADMIN, rid, "oops"),
                 lambda: reports.review(db, warehouse, ADMIN, rid),
                 lambda: reports.write(db, ANALYST, rid, {"summary": "x"})):
        with pytest.raises(reports.ReportError):
            step()
    logged = [r["action"] for r in accounts.audit_log(db) if r["action"].startswith("report")]
    assert logged == ["report release", "report approve", "report review", "report write", "report draft"]


def test_the_database_refuses_to_change_what_was_written(small):
    warehouse, db = small
    rid = released(warehouse, db, texts={"summary": "As released."}).report_id
    with db.connect() as con:
        for sql in (
            "insert into report_events (report_id, state, by_user, at) values (?, 'draft', 'x', 'now')",
            "insert into report_texts (report_id, section, body, written_by, written_at) values (?, 'summary', 'x', 'x', 'now')",
            "update reports set period = '2025-10' where report_id = ?",
            "delete from report_events where report_id = ?",
            "update report_snapshots set public = '{}' where report_id = ?",
            "delete from report_snapshots where report_id = ?",
            "delete from report_texts where report_id = ?",
        ):
            with pytest.raises(IntegrityError):
                con.execute(sql, [rid])
        if db.url:  # PostgreSQL's truncate skips row triggers; a statement trigger refuses it
            for table in ("reports", "report_texts", "report_snapshots", "report_events"):
                with pytest.raises(IntegrityError):
                    con.execute(f"truncate {table} cascade")


def test_returning_to_draft_lets_go_of_the_frozen_numbers(own):
    warehouse, db = own
    rid = reports.create(db, warehouse, ANALYST, "2025-26", "2025-09").report_id
    reports.review(db, warehouse, ADMIN, rid)
    version = warehouse.version()
    with pytest.raises(reports.ReportError, match="say why"):
        reports.reopen(db, warehouse, ANALYST, rid, " ")
    report = reports.reopen(db, warehouse, ANALYST, rid, "the October files came in")
    assert (report.state, report.snapshot, report.reviewer) == ("draft", None, None)
    assert f"report-{rid}" not in warehouse.pins().get(version, [])
    assert reports.write(db, ANALYST, rid, {"summary": "now with October"}).texts["summary"] == "now with October"


def test_a_released_report_is_frozen_through_later_ingests_and_equals_the_views_at_its_version(own, tmp_path):
    warehouse, db = own
    report = released(warehouse, db, texts={"summary": "September."})
    version = report.snapshot["warehouse_version"]
    files = {fmt: write(report, report.snapshot["district"]) for fmt, write in
             (("html", reports.to_html), ("md", reports.to_markdown))}

    # A late file: V1's fourth student's sessions in September.
    late = write_csv(tmp_path / "late.csv", "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes",
                     "ST0000004,2025-09-23,V1-T001,3,40,10", "ST0000004,2025-09-25,V1-T001,3,40,0")
    ingest(warehouse, [Submission(late, "sessions", "V1")])
    assert warehouse.version() != version

    again = reports.read(db, ADMIN.scope, report.report_id)
    assert again.snapshot == report.snapshot
    assert reports.to_html(again, again.snapshot["district"]) == files["html"]
    assert reports.to_markdown(again, again.snapshot["district"]) == files["md"]

    def attendance(store, scope=reports.REPORT_SCOPE):
        cells = queries.run(store, "vendors", scope,
                            {"metric": "tutoring_attendance_rate", "start": "2025-09-01", "end": "2025-09-30"})
        return cells.set_index("vendor_id").loc["V1", ["value", "n"]].tolist()

    frozen = next(r for r in report.snapshot["district"]["outcomes"]
                  if r["metric_id"] == "tutoring_attendance_rate" and r["who"] == "V1")
    then = warehouse.at(version)
    assert [frozen["value"], frozen["students"]] == pytest.approx(attendance(then))
    # The live numbers moved (as an analyst counts them, without noise); the report did not.
    assert (attendance(then, Scope("analyst"))[1], attendance(warehouse, Scope("analyst"))[1]) == (3, 4)
    then.close()


def test_the_public_copy_hides_cells_under_the_public_minimum_and_names_no_one(small):
    warehouse, db = small
    report = released(warehouse, db, audiences=("board", "public"))
    district, public = report.snapshot["district"], report.snapshot["public"]
    assert (district["min_cell"], public["min_cell"]) == (1, PUBLIC_MIN)

    def v1(copy):
        return next(r for r in copy["outcomes"] if r["metric_id"] == "tutoring_attendance_rate" and r["who"] == "V1")

    # Counts carry the cell-key noise of every scope but the analyst's: three students read as one to five.
    assert 1 <= v1(district)["students"] <= 5 and v1(district)["value"] is not None
    assert v1(public)["students"] is None and v1(public)["value"] is None
    for copy, floor in ((public, PUBLIC_MIN),):
        for row in copy["outcomes"] + copy["gaps"]:
            assert row["students"] is None or row["students"] >= floor, row
        for row in copy["targets"]:
            assert row["students_served"] is None or row["students_served"] >= floor
    text = reports.to_html(report, public) + reports.to_markdown(report, public)
    assert "fewer than 4" in text
    assert not any(student in text for student in STUDENTS)


def test_a_release_to_vendors_or_the_public_refuses_text_naming_a_student(small):
    warehouse, db = small
    rid = reports.create(db, warehouse, ANALYST, "2025-26", "2025-09").report_id
    reports.write(db, ANALYST, rid, {"next_steps": "Call the family of ST0000002 about attendance."})
    reports.review(db, warehouse, ADMIN, rid)
    reports.approve(db, ADMIN, rid)
    for audiences in (["public"], ["board", "vendors"], ["evaluators"]):
        with pytest.raises(reports.ReportError, match="names 1 student id"):
            reports.release(db, warehouse, ADMIN, rid, audiences)
    assert reports.release(db, warehouse, ADMIN, rid, ["board"]).audiences == ("board",)


def test_who_reads_a_report_follows_its_audiences(small):
    warehouse, db = small
    rid = reports.create(db, warehouse, ANALYST, "2025-26", "2025-09").report_id
    for reader in (FACILITATOR, VENDOR):
        with pytest.raises(ScopeError):
            reports.read(db, reader.scope, rid)
    assert reports.listing(db, VENDOR.scope) == []
    reports.review(db, warehouse, ADMIN, rid)
    reports.approve(db, ADMIN, rid)
    reports.release(db, warehouse, ADMIN, rid, ["board"])
    assert [r.report_id for r in reports.listing(db, FACILITATOR.scope)] == [rid]
    assert reports.listing(db, VENDOR.scope) == []
    with pytest.raises(ScopeError):
        reports.read(db, VENDOR.scope, rid)

    other = reports.create(db, warehouse, ANALYST, "2025-26", "Q1").report_id
    reports.review(db, warehouse, ADMIN, other)
    reports.approve(db, ADMIN, other)
    reports.release(db, warehouse, ADMIN, other, ["vendors"])
    [seen] = reports.listing(db, VENDOR.scope)
    assert seen.report_id == other and seen.snapshot["district"] is None
    mine = reports.copy_for(seen, VENDOR.scope)
    assert mine["copy"] == "public"
    # Every vendor's rows are in the copy; a vendor reads its own and the district's only.
    assert {r["vendor_id"] for r in seen.snapshot["public"]["payments"]} == {"V1", "V2"}
    assert {r["vendor_id"] for r in mine["payments"]} == {"V1"}
    assert {r["who"] for r in mine["outcomes"]} <= {"V1", "All vendors"}
    assert all(r["vendor_id"] == "V1" for key in ("targets", "timeliness") for r in mine[key])
    assert [r.report_id for r in reports.listing(db, FACILITATOR.scope)] == [rid]


def test_schools_and_evaluators_read_only_what_is_released_to_them(small):
    warehouse, db = small
    school, evaluator = Scope("school", school_ids=("S1",)), Scope("evaluator", evaluator="eval-1")
    board = reports.create(db, warehouse, ANALYST, "2025-26", "2025-09").report_id
    reports.review(db, warehouse, ADMIN, board)
    reports.approve(db, ADMIN, board)
    for reader in (school, evaluator):
        with pytest.raises(ScopeError):
            reports.read(db, reader, board)  # approved, not released
    reports.release(db, warehouse, ADMIN, board, ["board"])
    assert reports.listing(db, school) == reports.listing(db, evaluator) == []

    both = reports.create(db, warehouse, ANALYST, "2025-26", "Q1").report_id
    reports.review(db, warehouse, ADMIN, both)
    reports.approve(db, ADMIN, both)
    reports.release(db, warehouse, ADMIN, both, ["schools", "evaluators"])
    for reader in (school, evaluator):
        [seen] = reports.listing(db, reader)
        assert seen.report_id == both
        assert reports.copy_for(seen, reader)["copy"] == "district"


def test_a_correction_is_a_new_version_that_says_what_changed(small):
    warehouse, db = small
    first = released(warehouse, db, texts={"summary": "September, as first told."})
    with pytest.raises(reports.ReportError, match="says what changed"):
        reports.correct(db, ANALYST, first.report_id, "")
    second = reports.correct(db, ANALYST, first.report_id, "V1's late September sessions are counted.")
    assert (second.version, second.corrects, second.state) == (2, first.report_id, "draft")
    assert second.texts == first.texts and second.title == "Contract report 2025-09, version 2"
    with pytest.raises(reports.ReportError, match="corrected already"):
        reports.correct(db, ADMIN, first.report_id, "again")
    with pytest.raises(reports.ReportError, match="only a released report"):
        reports.correct(db, ADMIN, second.report_id, "a draft")
    assert reports.read(db, ADMIN.scope, first.report_id) == first
    reports.review(db, warehouse, ADMIN, second.report_id)
    content = reports.read(db, ADMIN.scope, second.report_id).snapshot["district"]
    assert "What changed: V1's late September sessions are counted." in reports.to_markdown(
        reports.read(db, ADMIN.scope, second.report_id), content)


def test_the_files_are_whole_and_self_contained(small):
    warehouse, db = small
    report = released(warehouse, db, audiences=("public",), texts={"summary": "<script>alert(1)</script> & more"})
    content = reports.copy_for(report, Scope("admin"), "public")

    page = reports.to_html(report, content)
    assert page.startswith("<!DOCTYPE html>") and "Plotly" in page and "@media print" in page
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=", page, flags=re.I)
    rest = page.replace(get_plotlyjs(), "")
    assert "http://" not in rest and "https://" not in rest and "//cdn" not in rest
    # The gap charts, drawn by the library inline; the public copy has no group of four students to draw.
    assert reports.to_html(report, report.snapshot["district"]).count('class="plotly-graph-div"') >= 2
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page

    markdown = reports.to_markdown(report, content)
    assert markdown.startswith("# Contract report 2025-09") and "### Payments: earned, certified and provisional" in markdown

    book = openpyxl.load_workbook(io.BytesIO(reports.to_xlsx(report, content)))
    assert book.sheetnames == ["About", "Outcomes", "Targets", "Payments", "Equity gaps", "Timeliness", "Commitments"]
    payments = [[c.value for c in row] for row in book["Payments"].iter_rows()]
    assert payments[0][:3] == ["Vendor", "Earned in period", "Earned to date"]
    assert {row[0] for row in payments[1:]} == {"V1", "V2"} or {row[0] for row in payments[1:]} == {"V1"}
    assert [c.value for c in book["Commitments"][1]] == ["Made on", "Party", "Due", "Status at period end",
                                                        "Measured on", "How it moved"]
    for sheet in book:
        for row in sheet.iter_rows(values_only=True):
            assert not any(str(v) in STUDENTS for v in row if v is not None)


def test_the_command_line_lists_exports_and_previews(own, tmp_path):
    from click.testing import CliRunner

    from ciboard.cli import main

    warehouse, db = own
    report = released(warehouse, db, audiences=("board", "public"), texts={"summary": "September."})
    data_dir = str(warehouse.settings.data_dir)

    def run(*args):
        result = CliRunner().invoke(main, [*args, "--data-dir", data_dir])
        assert result.exit_code == 0, result.output
        return result.output

    listed = run("report", "list").splitlines()
    assert listed[1].split(",")[:6] == [str(report.report_id), "2025-09", "1", "released", "board public", "ana"]
    run("report", "export", str(report.report_id), "--copy", "public", "--format", "xlsx",
        "--output", str(tmp_path / "public.xlsx"))
    book = openpyxl.load_workbook(tmp_path / "public.xlsx")
    assert book["About"]["A4"].value.endswith(f"values over fewer than {PUBLIC_MIN} students hidden")
    run("report", "export", str(report.report_id), "--format", "md", "--output", str(tmp_path / "board.md"))
    assert (tmp_path / "board.md").read_text() == reports.to_markdown(report, report.snapshot["district"])
    run("report", "build", "--school-year", "2025-26", "--period", "Q1", "--format", "md", "--output", str(tmp_path / "q1.md"))
    assert (tmp_path / "q1.md").read_text().startswith("# Contract report 2025-26 Q1\n")
    exports = [r for r in accounts.audit_log(db) if r["action"] == "export"]
    assert len(exports) == 3 and all("the command line" in r["detail"] for r in exports)

    failed = CliRunner().invoke(main, ["report", "export", "999", "--data-dir", data_dir])
    assert failed.exit_code == 1 and "no report 999" in failed.output


def test_a_payment_outcome_not_yet_known_says_so_rather_than_hidden(small):
    warehouse, db = small
    report = released(warehouse, db)
    headers, rows = reports.shown_table(report.snapshot["district"], "Targets",
                                        dict((s, t) for s, _, t in reports.tables(report.snapshot["district"]))["Targets"])
    v1 = dict(zip(headers, next(r for r in rows if r[0] == "V1")))
    assert v1["Outcome known"].startswith("due ") and v1["Eligible"] == v1["Met target"] == "not yet known"


def test_a_review_that_fails_freezes_nothing_and_holds_no_version(own, monkeypatch):
    warehouse, db = own
    rid = reports.create(db, warehouse, ANALYST, "2025-26", "2025-09").report_id

    def broken(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(reports, "compute", broken)
    with pytest.raises(RuntimeError, match="the disk is full"):
        reports.review(db, warehouse, ADMIN, rid)
    assert reports.read(db, ADMIN.scope, rid).state == "draft"
    assert f"report-{rid}" not in warehouse.pins().get(warehouse.version(), [])


def test_a_released_report_and_its_correction_move_to_postgresql_as_they_were(shared_district, tmp_path, postgres_url):
    """`ciboard migrate-app-db` copies texts before the workflow, whose triggers refuse text after a review."""
    from ciboard.appdb import copy_sqlite_to_postgres

    db = AppDB(tmp_path / "app.sqlite3")
    first = released(shared_district, db, texts={"summary": "As released."})
    correction = reports.correct(db, ADMIN, first.report_id, "a late session")
    copied = copy_sqlite_to_postgres(db, AppDB(postgres_url))
    assert copied["report_events"] == 5 and copied["report_texts"] == 2
    moved = AppDB(postgres_url)
    for report_id in (first.report_id, correction.report_id):
        assert reports.read(moved, ADMIN.scope, report_id) == reports.read(db, ADMIN.scope, report_id)
    with moved.connect() as con, pytest.raises(IntegrityError, match="released report never changes"):
        con.execute("insert into report_events (report_id, state, by_user, at) values (?, 'draft', 'x', 'now')",
                    [first.report_id])
