"""A multi-year contract on a hand-built district: terms per school year, each year judged on its
own, a student's outcome counted once per contract year.

Vendor VM's contract runs from Sep 3, 2024 to May 29, 2026, two school years:
- 2024-25: $100 per student served (two attended sessions), $200 for a spring SGP of 50 or more;
  $1,000 per contract year.
- 2025-26: $120 per student served (three sessions), $300 for a spring SGP of 60 or more.

    M1 served both years (Sep 10, 2024; Sep 10, 2025); spring SGP 55 then 65: successful both years
    M2 served both years; spring SGP 55 then 58: successful in 2024-25 only
    M3 served in 2024-25; two sessions in 2025-26, under that year's three: not served then
"""

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from conftest import make_warehouse, snapshot, write_csv, close_statement
from ciboard import queries
from ciboard.access import ANALYST
from ciboard.ingest import IngestRejected, Submission, ingest

CONTRACT_HEADER = (
    "vendor_id,payment_metric,threshold,base_per_student,outcome_per_student,cap,starts_on,ends_on,"
    "served_by,served_min,success,outcome_window,school_year"
)
YEARLY_TERMS = (
    "VM,sgp,50,100,200,1000,2024-09-03,2026-05-29,sessions,2,percentile,spring,2024-25",
    "VM,sgp,60,120,300,1000,2024-09-03,2026-05-29,sessions,3,percentile,spring,2025-26",
)
SESSIONS = {
    "M1": ["2024-09-09", "2024-09-10", "2025-09-08", "2025-09-09", "2025-09-10"],
    "M2": ["2024-10-07", "2024-10-08", "2025-10-06", "2025-10-07", "2025-10-08"],
    "M3": ["2024-09-09", "2024-09-10", "2025-09-08", "2025-09-09"],
}
# (student, window, test date, scaled score, sgp, proficient)
TESTS = (
    ("M1", "spring", "2025-04-15", 210, 55, 0), ("M1", "spring", "2026-04-15", 220, 65, 0),
    ("M2", "spring", "2025-04-15", 210, 55, 0), ("M2", "spring", "2026-04-15", 220, 58, 0),
    ("M3", "spring", "2025-04-15", 210, 70, 0), ("M3", "spring", "2026-04-15", 220, 70, 0),
)


def district_files(folder: Path, contract_lines=YEARLY_TERMS, header=CONTRACT_HEADER) -> list[Submission]:
    folder.mkdir(parents=True, exist_ok=True)
    sessions = [f"{s},{day},VM-T1,3,45,40" for s, days in SESSIONS.items() for day in days]
    return [
        Submission(write_csv(folder / "schools.csv", "school_id,name", "S1,First School"), "schools"),
        Submission(write_csv(folder / "vendors.csv", "vendor_id,name", "VM,Vendor M"), "vendors"),
        Submission(write_csv(folder / "contracts.csv", header, *contract_lines), "contracts"),
        Submission(write_csv(
            folder / "roster.csv",
            "student_id,vendor_id,school_id,grade,race_ethnicity,gender,econ_disadvantaged,english_learner,"
            "special_education,baseline_band,enrolled_on",
            *[f"{s},VM,S1,4,White,Female,0,0,0,near,2024-09-03" for s in SESSIONS],
        ), "roster"),
        Submission(write_csv(folder / "sessions.csv",
                             "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes",
                             *sessions), "sessions", "VM"),
        Submission(write_csv(folder / "assessment.csv", "student_id,window,test_date,scaled_score,sgp,proficient",
                             *[",".join(map(str, t)) for t in TESTS]), "assessment"),
    ]


def two_year_district(folder: Path, **files):
    warehouse = make_warehouse(folder / "data")
    warehouse.init(["2024-25", "2025-26"])
    ingest(warehouse, district_files(folder / "files", **files))
    return warehouse


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    warehouse = two_year_district(tmp_path_factory.mktemp("multiyear"))
    yield warehouse
    warehouse.close()


def statement(warehouse, period: str):
    rows = queries.run(warehouse, "statement", ANALYST, {"vendor_id": "VM", "period": period})
    return rows, pd.DataFrame(rows.attrs["totals"]), pd.DataFrame(rows.attrs["terms"])


def test_each_year_is_judged_on_its_own_terms_and_windows(district):
    summary = queries.run(district, "payments", ANALYST, {}).set_index("contract_starts_on")
    # The second year starts with its school year (August) and ends with the contract.
    first, second = date(2024, 9, 3), date(2025, 8, 1)
    assert dict(zip(summary.index, summary["contract_ends_on"])) == {first: date(2025, 7, 31), second: date(2026, 5, 29)}
    assert dict(zip(summary.index, summary["threshold"])) == {first: 50.0, second: 60.0}
    assert dict(zip(summary.index, summary["students_served"])) == {first: 3, second: 2}
    assert dict(zip(summary.index, summary["students_successful"])) == {first: 3, second: 1}
    # Base $300 + outcomes $600 in the first year; base $240 + outcome $300 in the second.
    assert dict(zip(summary.index, summary["amount_earned"])) == {first: 900.0, second: 540.0}


def test_a_month_s_statement_picks_its_year_s_terms(district):
    rows, totals, terms = statement(district, "2024-09")
    assert list(terms["contract_year"]) == ["2024-25"]
    assert terms["served"].item() == "at least 2 attended session(s) within the contract dates"
    assert terms["outcome"].item() == "sgp ≥ 50 in the spring window"
    assert "school year 2024-25 of the contract from 2024-09-03 to 2026-05-29" in terms["contract"].item()
    assert dict(zip(rows["student_id"], rows["base_amount"])) == {"M1": 100.0, "M2": 0.0, "M3": 100.0}

    rows, totals, terms = statement(district, "2025-09")
    assert list(terms["contract_year"]) == ["2025-26"]
    assert terms["outcome"].item() == "sgp ≥ 60 in the spring window"
    assert dict(zip(rows["student_id"], rows["base_amount"])) == {"M1": 120.0, "M2": 0.0, "M3": 0.0}
    assert rows.set_index("student_id").loc["M3", "not_eligible_because"] == (
        "not served (has 2 of 3 attended session(s))"
    )
    assert set(rows["outcome"]) == {"due after the spring window (2026-06)", "not eligible"}
    assert totals["total"].tolist() == [120.0]


def test_a_student_s_outcome_is_counted_once_per_contract_year(district):
    # The first year's spring window closes with its school year (July): its outcomes fall due in
    # August, the second year's first month, beside that year's base payments.
    due = {}
    for period in ("2025-06", "2025-07", "2025-08", "2026-05", "2026-06"):
        rows, totals, _ = statement(district, period)
        paid = rows[rows["outcome_amount"] > 0]
        due[period] = sorted(zip(paid["contract_starts_on"].astype(str), paid["student_id"], paid["outcome_amount"]))
    assert due == {
        "2025-06": [], "2025-07": [],
        "2025-08": [("2024-09-03", "M1", 200.0), ("2024-09-03", "M2", 200.0), ("2024-09-03", "M3", 200.0)],
        "2026-05": [],
        # M3's spring SGP of 70 pays nothing this year: it was not served this year.
        "2026-06": [("2025-08-01", "M1", 300.0)],
    }
    rows, totals, terms = statement(district, "2025-08")
    assert sorted(terms["contract_year"]) == ["2024-25", "2025-26"]
    assert dict(zip(totals["contract_starts_on"].astype(str), totals["total"])) == {"2024-09-03": 600.0, "2025-08-01": 0.0}


def test_terms_for_every_year_judge_each_year_apart(tmp_path):
    """A line that names no school year holds the terms of every year the contract reaches."""
    header = CONTRACT_HEADER.removesuffix(",school_year")
    warehouse = two_year_district(tmp_path, contract_lines=(
        "VM,sgp,50,100,200,,2024-09-03,2026-05-29,sessions,2,percentile,spring",), header=header)
    summary = queries.run(warehouse, "payments", ANALYST, {})
    assert len(summary) == 2
    # Served after two sessions, so every student both years; spring SGP 55/55/70 then 65/58/70
    # against the same 50, each year's result paid once, in its year.
    assert summary["students_successful"].tolist() == [3, 3]
    assert summary["amount_earned"].tolist() == [900.0, 900.0]
    assert summary["outcome_due"].tolist() == [date(2025, 8, 1), date(2026, 6, 1)]
    warehouse.close()


@pytest.mark.parametrize(
    ("lines", "row", "reason"),
    [
        (("VM,sgp,50,100,200,1000,2024-09-03,2026-05-29,sessions,2,percentile,spring,2023-24",), 2,
         "is not a school year of the warehouse"),
        (("VM,sgp,50,100,200,1000,2024-09-03,2025-05-29,sessions,2,percentile,spring,2025-26",), 2,
         "do not reach"),
        (("VM,sgp,50,100,200,1000,2024-09-03,2026-05-29,sessions,2,percentile,spring,2024-5",), 2,
         "is not a school year of the warehouse"),
        (("VM,sgp,50,100,200,1000,2024-09-03,2026-05-29,sessions,2,percentile,spring,2024-25",
          "VM,sgp,60,120,300,1000,2024-09-03,2026-05-29,sessions,3,percentile,spring,2024-25"), 3,
         "repeats the key"),
        (("VM,sgp,50,100,200,1000,2024-09-03,2026-05-29,sessions,2,percentile,spring,2024-25",
          "VM,proficient,1,100,300,1000,2024-09-03,2026-05-29,sessions,2,threshold,spring,"), 2,
         "either all name their school_year or none does"),
    ],
)
def test_a_bad_school_year_names_its_file_row_and_field_and_saves_nothing(district, tmp_path, lines, row, reason):
    before = snapshot(district)
    path = write_csv(tmp_path / "contracts.csv", CONTRACT_HEADER, *lines)
    with pytest.raises(IngestRejected) as rejected:
        ingest(district, [Submission(path, "contracts")])
    problem = rejected.value.problems[0]
    assert (problem.file, problem.row) == ("contracts.csv", row)
    assert reason in problem.reason, problem.reason
    assert snapshot(district) == before


def test_a_year_s_terms_reloaded_leave_the_other_year_s(district, tmp_path):
    with district.cursor() as cur:
        before = cur.execute("select school_year, threshold from contracts order by 1").fetchall()
    assert before == [("2024-25", 50.0), ("2025-26", 60.0)]
    path = write_csv(tmp_path / "contracts.csv", CONTRACT_HEADER,
                     "VM,sgp,60,120,300,1000,2024-09-03,2026-05-29,sessions,3,percentile,spring,2025-26")
    # The same line again changes nothing.
    ingest(district, [Submission(path, "contracts")])
    with district.cursor() as cur:
        assert cur.execute("select school_year, threshold from contracts order by 1").fetchall() == before


@pytest.fixture
def two_year_dashboard(tmp_path, monkeypatch):
    """The two-year district as the dashboard's warehouse, with the demo's accounts."""
    import streamlit as st

    from ciboard.accounts import create_demo_accounts
    from ciboard.appdb import AppDB
    from ciboard.settings import get_settings

    warehouse = two_year_district(tmp_path)
    create_demo_accounts(AppDB.of(warehouse.settings), [("VM", "Vendor M")])
    monkeypatch.setenv("CIBOARD_DATA_DIR", str(warehouse.settings.data_dir))
    get_settings.cache_clear()
    st.cache_resource.clear()
    yield warehouse
    get_settings.cache_clear()
    st.cache_resource.clear()
    warehouse.close()


def test_the_payments_page_shows_the_month_s_contract_year_and_its_terms(two_year_dashboard):
    from conftest import open_page

    def terms_shown(app) -> pd.DataFrame:
        return next(frame.value for frame in app.dataframe if "outcome due" in frame.value.index)

    app = open_page("app_pages/payments.py", user="vendor-vm", query={"month": "2025-10"})
    assert not app.exception, [e.value for e in app.exception]
    terms = terms_shown(app)
    assert list(terms.columns) == ["sgp"]
    assert terms.loc["outcome", "sgp"] == "sgp ≥ 60 in the spring window"
    assert "school year 2025-26" in terms.loc["contract", "sgp"]
    statement = next(frame.value for frame in app.dataframe if "not_eligible_because" in frame.value.columns)
    assert set(statement["contract_starts_on"].astype(str)) == {"2025-08-01"}

    # August: the first year's outcomes fall due beside the second year's start, each line named by its year.
    app = open_page("app_pages/payments.py", user="vendor-vm", query={"month": "2025-08"})
    assert not app.exception, [e.value for e in app.exception]
    assert list(terms_shown(app).columns) == ["sgp, 2024-25", "sgp, 2025-26"]
    assert {m.label: m.proto.help.split(". ")[0] for m in app.metric}["Due this month"] == "$600.00"


def test_a_correction_to_a_year_no_longer_shown_keeps_its_own_total():
    from ciboard import payments

    totals = pd.DataFrame([{"vendor_id": "VM", "contract_starts_on": date(2025, 8, 1), "period": "2025-10",
                            "students_served": 2, "base_amount": 240.0, "outcome_amount": 0.0, "student_cap_applied": 0.0,
                            "contract_cap_applied": 0.0, "total": 240.0, "total_to_date": 240.0, "cap": 1000.0}])
    lines = pd.DataFrame([{"vendor_id": "VM", "contract_starts_on": date(2024, 9, 3), "student_id": "M3",
                           "corrects": "2025-08", "reason": "sgp outcome result changed", "amount_before": 0.0,
                           "amount_after": 200.0, "amount": 200.0}])
    adjusted = payments.adjusted(totals, lines).set_index("contract_starts_on")
    assert adjusted.loc[date(2025, 8, 1), ["adjustments", "total"]].tolist() == [0.0, 240.0]
    assert adjusted.loc[date(2024, 9, 3), ["adjustments", "total", "period"]].tolist() == [200.0, 200.0, "2025-10"]


def test_a_report_splits_earned_to_date_by_every_month_closed_since_the_contract_began(tmp_path):
    """A report's earned to date runs from the contract's first day, so a month certified in
    2024-25 is part of what a 2025-26 report calls certified, not of what it calls provisional."""
    from ciboard import reports, statements
    from ciboard.access import Scope
    from ciboard.accounts import Account
    from ciboard.appdb import AppDB

    warehouse = two_year_district(tmp_path)
    db = AppDB.of(warehouse.settings)
    admin = Account("admin", "Admin", "admin")
    close_statement(warehouse, db, admin, "VM", "2024-09", today=date(2026, 12, 1))
    statements.sign(db, admin, "VM", "2024-09")
    statements.sign(db, Account("vm", "Vendor M", "vendor", "VM"), "VM", "2024-09")
    certified = float(statements.read(db, Scope("admin"), "VM", "2024-09").totals["total"].sum())
    assert certified == 200.0  # M1 and M3 served in September 2024, $100 each

    [row] = reports.compute(warehouse, db, reports.period_of(warehouse, "2025-26", "year"), public=False)["payments"]
    assert row["certified"] == certified
    assert row["closed_awaiting_signoff"] == 0.0
    assert row["provisional"] == round(row["earned_to_date"] - certified, 2)
