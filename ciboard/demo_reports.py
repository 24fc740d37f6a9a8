"""The demo district's contract reports: the school year's report, drafted and written by the
analyst, reviewed (its numbers frozen) and approved by the admin, and released to the board; the
first quarter's, released to the board and the vendors; and the second quarter's, a draft the
analyst is still writing. A fresh demo shows the whole workflow on the Contract reports page."""

from ciboard import accounts, reports
from ciboard.appdb import AppDB
from ciboard.queries import run
from ciboard.warehouse import Warehouse

TEXTS = {
    "summary": "Tutoring reached students at every contracted school this year. Attendance at sessions held up "
    "through the autumn, dipped after winter break at one vendor, and recovered after the CI workgroup's "
    "commitments on scheduling.",
    "outcomes": "Payments follow the contracts' outcome terms: what is certified has been signed off by the "
    "district and the vendor; the rest is provisional until each month is closed.",
    "equity": "Gaps between student groups are shown with their 95% intervals; the district reads a gap as real "
    "only where its interval leaves out zero.",
    "next_steps": "The workgroups keep meeting monthly. Next year's contracts carry the same outcome measures, so "
    "this report's numbers are their baseline.",
}


QUARTER_TEXTS = {
    "summary": "The first quarter: every vendor began sessions by the end of September, and the first fall window "
    "gave each school its baseline.",
    "next_steps": "The workgroups begin meeting monthly in November, starting with session attendance.",
}
DRAFT_TEXTS = {"summary": "Second quarter, still being written: winter break and the snow day come first."}


def seed(db: AppDB, warehouse: Warehouse) -> bool:
    """The reports above; only into an app database with no report and with the demo's analyst and
    admin accounts (returns False otherwise)."""
    analyst, admin = accounts.account(db, "analyst"), accounts.account(db, "admin")
    if analyst is None or admin is None or reports.listing(db, admin.scope):
        return False
    years = run(warehouse, "choices", reports.REPORT_SCOPE).query("dimension == 'school_year' and students > 0")
    year = str(years["value"].max())
    report = reports.create(db, warehouse, analyst, year, "year")
    reports.write(db, analyst, report.report_id, TEXTS)
    reports.review(db, warehouse, admin, report.report_id, "Numbers checked against the Payments and Vendors pages.")
    reports.approve(db, admin, report.report_id, "Approved for the board's meeting.")
    reports.release(db, warehouse, admin, report.report_id, ["board"], "For the board.")
    quarter = reports.create(db, warehouse, analyst, year, "Q1")
    reports.write(db, analyst, quarter.report_id, QUARTER_TEXTS)
    reports.review(db, warehouse, admin, quarter.report_id, "Checked against the Vendors page.")
    reports.approve(db, admin, quarter.report_id)
    reports.release(db, warehouse, admin, quarter.report_id, ["board", "vendors"], "For the board and the vendors.")
    draft = reports.create(db, warehouse, analyst, year, "Q2")
    reports.write(db, analyst, draft.report_id, DRAFT_TEXTS)
    return True
