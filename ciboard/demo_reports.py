"""The demo district's contract report: the school year's report, drafted and written by the
analyst, reviewed (its numbers frozen) and approved by the admin, and released to the board, so
a fresh demo shows the whole workflow on the Contract reports page."""

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


def seed(db: AppDB, warehouse: Warehouse) -> bool:
    """The school year's report, released to the board; only into an app database with no report
    and with the demo's analyst and admin accounts (returns False otherwise)."""
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
    return True
