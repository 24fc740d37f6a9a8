"""Contract reports page: an analyst drafts and writes, an admin reviews, approves and releases,
and each reader gets the copy and the files meant for them."""

import io
import re

import openpyxl
import pytest

from ciboard import reports
from ciboard.appdb import AppDB

from conftest import downloads, open_page

PAGE = "app_pages/reports.py"


@pytest.fixture
def app_db(dashboard):
    return AppDB(dashboard.settings.app_db_path)


def notice(app) -> list[str]:
    return [m.value for m in app.success]


def test_a_report_from_draft_to_release_and_what_each_reader_gets(dashboard, app_db):
    analyst = open_page(PAGE, user="analyst")
    analyst.selectbox(key="new-kind").set_value("Quarter")
    analyst.text_input(key="new-which").set_value("Q5")
    analyst.button(key="draft-report").click().run()
    assert [e.value for e in analyst.error] == ["period 'Q5': write 'year', a quarter 'Q1' to 'Q4', or a month such as 2025-10"]
    analyst.text_input(key="new-which").set_value("Q3")
    analyst.button(key="draft-report").click().run()
    assert not analyst.exception and notice(analyst) == ["Drafted."]
    [report] = [r for r in reports.listing(app_db, reports.REPORT_SCOPE) if r.period == "2025-26 Q3"]
    rid = report.report_id
    # A draft shows the numbers as they stand, and its author cannot review it.
    assert "Outcomes by vendor" in [h.value for h in analyst.subheader]
    assert analyst.button(key="review-report").disabled
    analyst.text_area(key=f"text-{rid}-summary").set_value("Attendance held up through the winter break.")
    analyst.button(key="save-text").click().run()
    assert notice(analyst) == ["Text saved."]
    assert reports.read(app_db, reports.REPORT_SCOPE, rid).texts == {"summary": "Attendance held up through the winter break."}

    admin = open_page(PAGE, user="admin", state={"report": rid})
    admin.button(key="review-report").click().run()
    assert not admin.exception and notice(admin) == ["Reviewed: the numbers are frozen."]
    admin.button(key="approve-report").click().run()
    assert notice(admin) == ["Approved."]
    admin.multiselect(key="release-audiences").set_value(["board", "vendors"])
    admin.button(key="release-report").click().run()
    assert notice(admin) == ["Released: the report is final."]
    released = reports.read(app_db, reports.REPORT_SCOPE, rid)
    assert (released.state, released.audiences, released.reviewer) == ("released", ("board", "vendors"), "admin")
    assert not [b for b in admin.button if b.key in ("save-text", "review-report", "approve-report", "release-report")]

    admin.radio(key="copy").set_value("public").run()
    files = {key.rsplit("-", 1)[-1]: data for key, data in downloads(admin).items() if "download-report" in key}
    assert set(files) == {"html", "md", "xlsx"}
    assert b"Attendance held up through the winter break." in files["md"]
    assert b"values over fewer than 20 students hidden" in files["html"]
    book = openpyxl.load_workbook(io.BytesIO(files["xlsx"]))
    assert "Equity gaps" in book.sheetnames

    # A vendor reads the public copy of what was released to vendors: no student id in it.
    vendor = open_page(PAGE, user="vendor-v1")
    assert not vendor.exception
    assert [r for r in vendor.selectbox(key="report").options if "2025-26 Q3" in r]
    vendor_files = {key.rsplit("-", 1)[-1]: data for key, data in downloads(vendor).items() if "download-report" in key}
    # Its own rows and the district's, never another vendor's.
    assert "| V1 |" in vendor_files["md"].decode() and "All vendors" in vendor_files["md"].decode()
    assert not re.search(r"\| V[2-6] \|", vendor_files["md"].decode())
    roster = {key for (key,) in dashboard.cursor().execute("select student_key from students").fetchall()}
    words = set(re.findall(r"[A-Za-z0-9_-]+", vendor_files["html"].decode() + vendor_files["md"].decode()))
    assert len(roster) == 6000 and not words & roster  # 3000 tutored students and as many untutored
    assert not [b for b in vendor.button if b.key in ("draft-report", "save-text", "correct-report")]
    assert "Attendance held up through the winter break." in [t.value for t in vendor.text]

    # A facilitator presenting with "Vendor A, B, C" reads what went to the board, vendors as letters, and no file.
    presenter = open_page(PAGE, query={"present": "true", "alias": "true"}, user="facilitator", state={"report": rid})
    assert not presenter.exception
    cells = {str(v) for frame in presenter.dataframe for v in frame.value.to_numpy().ravel()}
    assert not cells & {"V1", "V2", "V3", "V4", "V5", "V6"} and any(str(c).startswith("Vendor ") for c in cells)
    assert not [key for key in downloads(presenter) if "download-report" in key]
