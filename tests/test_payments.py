"""Contract-grade payments on a hand-built district small enough to work out by hand.

Vendor VA's contract (Sep 1 to May 29): $100 per student served (three attended sessions),
monthly; $50 for 10 scaled-score points of growth from fall to spring and $200 for a spring
SGP of 50 or more, for students enrolled by Oct 1; $250 per student, $700 per contract.
Vendor VB's first contract pays $100 per student served (60 minutes) quarterly and $300 for
spring proficiency, for students meeting the dosage standard in half their tutoring weeks;
its second (from Jan 5) pays $10 per student served (one session).

    A1 served Sep 10; fall SGP 30 (growth from before tutoring: not paid on), spring SGP 60,
       scaled 200 -> 215: both outcomes, $350 cut to $250 by the student cap
    A2 two sessions: not served
    A3 served Oct 2; no spring test: not eligible
    A4 served Oct 22, but enrolled Oct 15, after Oct 1: not eligible
    A5 served Sep 10; spring SGP 40, scaled 200 -> 205: eligible, not successful
    A6 served Nov 5; spring SGP 70, no fall test: SGP paid ($300 cut to $250), growth not eligible
    B1 served Oct 7 (contract 1) and Jan 12 (contract 2): flagged on both; proficient
    B2 45 minutes: not served
    B3 served Oct 7; the dosage standard in none of its weeks: not eligible
"""

import io
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import SAMPLES, make_warehouse, snapshot, write_csv
from ciboard import payments, queries
from ciboard.access import ANALYST, Scope, ScopeError
from ciboard.cli import main
from ciboard.ingest import IngestRejected, Submission, ingest

CONTRACT_HEADER = (
    "vendor_id,payment_metric,threshold,base_per_student,outcome_per_student,cap,starts_on,ends_on,"
    "served_by,served_min,success,outcome_window,from_window,enrolled_by,min_dosage_share,student_cap,base_schedule"
)
CONTRACTS = (
    "VA,scaled_score,10,100,50,700,2025-09-01,2026-05-29,sessions,3,growth,spring,fall,2025-10-01,,250,monthly",
    "VA,sgp,50,100,200,700,2025-09-01,2026-05-29,sessions,3,percentile,spring,,2025-10-01,,250,monthly",
    "VB,proficient,1,100,300,,2025-09-01,2026-05-29,minutes,60,threshold,spring,,,0.5,,quarterly",
    "VB,proficient,1,10,0,,2026-01-05,2026-05-29,sessions,1,threshold,spring,,,,,monthly",
)
ENROLLED = {"A4": "2025-10-15"}
SESSIONS = {
    "VA": {
        "A1": [("2025-09-08", 40), ("2025-09-09", 40), ("2025-09-10", 40)],
        "A2": [("2025-09-08", 40), ("2025-09-09", 40)],
        "A3": [("2025-09-29", 40), ("2025-10-01", 40), ("2025-10-02", 40)],
        "A4": [("2025-10-20", 40), ("2025-10-21", 40), ("2025-10-22", 40)],
        "A5": [("2025-09-08", 40), ("2025-09-09", 40), ("2025-09-10", 40)],
        "A6": [("2025-11-03", 40), ("2025-11-04", 40), ("2025-11-05", 40)],
    },
    "VB": {
        "B1": [("2025-10-06", 30), ("2025-10-07", 30), ("2025-10-08", 30), ("2025-10-13", 30),
               ("2026-01-12", 30), ("2026-01-13", 30), ("2026-01-14", 30)],
        "B2": [("2025-10-06", 45)],
        "B3": [("2025-10-06", 40), ("2025-10-07", 40)],
    },
}
# (student, window, test date, scaled score, sgp, proficient)
TESTS = (
    ("A1", "fall", "2025-09-10", 200, 30, 0), ("A1", "spring", "2026-04-15", 215, 60, 0),
    ("A2", "fall", "2025-09-10", 200, 50, 0), ("A2", "spring", "2026-04-15", 240, 99, 1),
    ("A3", "fall", "2025-09-10", 200, 70, 0),
    ("A4", "fall", "2025-09-10", 200, 80, 0), ("A4", "spring", "2026-04-15", 220, 80, 0),
    ("A5", "fall", "2025-09-10", 200, 90, 0), ("A5", "spring", "2026-04-15", 205, 40, 0),
    ("A6", "spring", "2026-04-15", 230, 70, 0),
    ("B1", "spring", "2026-04-15", 230, 50, 1),
    ("B2", "spring", "2026-04-15", 230, 50, 1),
    ("B3", "spring", "2026-04-15", 230, 50, 1),
)


def district_files(folder: Path) -> list[Submission]:
    folder.mkdir(parents=True, exist_ok=True)
    files = [
        Submission(write_csv(folder / "schools.csv", "school_id,name", "S1,First School"), "schools"),
        Submission(write_csv(folder / "vendors.csv", "vendor_id,name", "VA,Vendor A", "VB,Vendor B"), "vendors"),
        Submission(write_csv(folder / "contracts.csv", CONTRACT_HEADER, *CONTRACTS), "contracts"),
        Submission(write_csv(
            folder / "roster.csv",
            "student_id,vendor_id,school_id,grade,race_ethnicity,gender,econ_disadvantaged,english_learner,"
            "special_education,baseline_band,enrolled_on",
            *[f"{s},{v},S1,4,White,Female,0,0,0,near,{ENROLLED.get(s, '2025-09-01')}"
              for v, students in SESSIONS.items() for s in students],
        ), "roster"),
    ]
    for vendor, students in SESSIONS.items():
        rows = [f"{s},{day},{vendor}-T1,3,45,{minutes}" for s, days in students.items() for day, minutes in days]
        path = write_csv(folder / f"sessions_{vendor}.csv",
                         "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes", *rows)
        files.append(Submission(path, "sessions", vendor))
    files.append(Submission(write_csv(
        folder / "assessment.csv", "student_id,window,test_date,scaled_score,sgp,proficient",
        *[",".join(map(str, t)) for t in TESTS],
    ), "assessment"))
    return files


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    folder = tmp_path_factory.mktemp("payments")
    warehouse = make_warehouse(folder / "data")
    warehouse.init(["2025-26"])
    ingest(warehouse, district_files(folder / "files"))
    yield warehouse
    warehouse.close()


def statement(warehouse, vendor: str, period: str, scope=ANALYST):
    rows = queries.run(warehouse, "statement", scope, {"vendor_id": vendor, "period": period})
    return rows, pd.DataFrame(rows.attrs["totals"])


def standing(rows: pd.DataFrame) -> dict:
    return {
        (r.student_id, r.payment_metric): (r.served, r.eligible, r.not_eligible_because, r.outcome)
        for r in rows.itertuples()
    }


def test_each_student_s_standing_on_each_line_once_the_spring_window_has_closed(district):
    rows, _ = statement(district, "VA", "2026-06")
    assert standing(rows) == {
        ("A1", "scaled_score"): (True, True, "", "successful"),
        ("A1", "sgp"): (True, True, "", "successful"),
        ("A2", "scaled_score"): (False, False, "not served (has 2 of 3 attended session(s))", "not eligible"),
        ("A2", "sgp"): (False, False, "not served (has 2 of 3 attended session(s))", "not eligible"),
        ("A3", "scaled_score"): (True, False, "not tested in the spring window", "not eligible"),
        ("A3", "sgp"): (True, False, "not tested in the spring window", "not eligible"),
        ("A4", "scaled_score"): (True, False, "enrolled 2025-10-15, after 2025-10-01", "not eligible"),
        ("A4", "sgp"): (True, False, "enrolled 2025-10-15, after 2025-10-01", "not eligible"),
        ("A5", "scaled_score"): (True, True, "", "not successful"),
        ("A5", "sgp"): (True, True, "", "not successful"),
        ("A6", "scaled_score"): (True, False, "not tested in the fall window", "not eligible"),
        ("A6", "sgp"): (True, True, "", "successful"),
    }
    served_on = dict(zip(rows["student_id"], rows["served_on"]))
    assert served_on == {"A1": date(2025, 9, 10), "A2": None, "A3": date(2025, 10, 2), "A4": date(2025, 10, 22),
                         "A5": date(2025, 9, 10), "A6": date(2025, 11, 5)}


def test_june_pays_the_outcomes_under_the_student_and_contract_caps(district):
    rows, totals = statement(district, "VA", "2026-06")
    paid = rows[rows["outcome_amount"] > 0]
    assert [tuple(r) for r in paid[["student_id", "payment_metric", "outcome_amount", "student_cap_applied", "amount"]]
            .itertuples(index=False)] == [
        ("A1", "scaled_score", 50.0, 0.0, 50.0),
        ("A1", "sgp", 200.0, 100.0, 100.0),  # $100 base + $50 + $200, capped at $250 a student
        ("A6", "sgp", 200.0, 50.0, 150.0),
    ]
    assert rows["base_amount"].sum() == 0
    [total] = totals.to_dict("records")
    # $500 of base before June; the $700 contract cap leaves $200 of June's $300.
    assert {k: total[k] for k in ("base_amount", "outcome_amount", "student_cap_applied", "contract_cap_applied",
                                  "total", "total_to_date", "cap")} == {
        "base_amount": 0.0, "outcome_amount": 450.0, "student_cap_applied": 150.0, "contract_cap_applied": 100.0,
        "total": 200.0, "total_to_date": 700.0, "cap": 700.0,
    }


def test_base_falls_due_in_the_month_a_student_is_served(district):
    due = {}
    for period in ("2025-09", "2025-10", "2025-11", "2025-12", "2026-01"):
        rows, totals = statement(district, "VA", period)
        due[period] = (sorted(rows.loc[rows["base_amount"] > 0, "student_id"]), totals["total"].item(), totals["total_to_date"].item())
    assert due == {
        "2025-09": (["A1", "A5"], 200.0, 200.0),
        "2025-10": (["A3", "A4"], 200.0, 400.0),
        "2025-11": (["A6"], 100.0, 500.0),
        "2025-12": ([], 0.0, 500.0),
        "2026-01": ([], 0.0, 500.0),
    }


def test_nothing_is_earned_for_an_outcome_whose_window_has_not_closed(district):
    rows, totals = statement(district, "VA", "2026-01")
    served = rows[rows["served"]]
    assert set(served["outcome"]) == {"due after the spring window (2026-06)"}
    assert rows["outcome_amount"].sum() == 0
    # A test the spring window has yet to give is no reason yet; an enrolment date already is.
    because = rows.drop_duplicates("student_id").set_index("student_id")["not_eligible_because"]
    assert because["A3"] == "" and because["A4"] == "enrolled 2025-10-15, after 2025-10-01"
    summary = queries.run(district, "payments", ANALYST, {"end": "2026-01-31"}).set_index("payment_metric")
    assert summary.loc["sgp", "students_successful"] == 0 and summary.loc["sgp", "amount_earned"] == 500
    assert summary.loc["sgp", "outcome_due"] == date(2026, 6, 1)
    # The fall SGP of 30 (A1) or 90 (A5) never decides anything: spring does.
    whole = queries.run(district, "payments", ANALYST, {}).set_index(["vendor_id", "payment_metric"])
    assert whole.loc[("VA", "sgp"), "students_successful"] == 2
    assert whole.loc[("VA", "sgp"), "amount_earned"] == 700 and whole.loc[("VA", "sgp"), "cap_applied"]


def test_minutes_quarterly_base_dosage_share_and_a_student_served_under_two_contracts(district):
    december, totals = statement(district, "VB", "2025-12")
    first = december[december["contract_starts_on"] == date(2025, 9, 1)]
    assert dict(zip(first["student_id"], first["base_amount"])) == {"B1": 100.0, "B2": 0.0, "B3": 100.0}
    assert dict(zip(totals["contract_starts_on"], totals["total"])) == {date(2025, 9, 1): 200.0, date(2026, 1, 5): 0.0}
    october, _ = statement(district, "VB", "2025-10")
    assert october["base_amount"].sum() == 0, "a quarterly base waits for the quarter's last month"

    june, totals = statement(district, "VB", "2026-06")
    by = {(r.contract_starts_on, r.student_id): r for r in june.itertuples()}
    assert by[(date(2025, 9, 1), "B1")].outcome == "successful" and by[(date(2025, 9, 1), "B1")].amount == 300
    assert by[(date(2025, 9, 1), "B2")].not_eligible_because == (
        "not served (has 45 of 60 minutes attended); dosage standard met in 0% of tutoring weeks, under 50%"
    )
    assert by[(date(2025, 9, 1), "B3")].not_eligible_because == "dosage standard met in 0% of tutoring weeks, under 50%"
    assert by[(date(2025, 9, 1), "B1")].also_served_under == "VB from 2026-01-05"
    assert by[(date(2026, 1, 5), "B1")].also_served_under == "VB from 2025-09-01"
    assert by[(date(2025, 9, 1), "B3")].also_served_under == ""
    january, totals = statement(district, "VB", "2026-01")
    assert dict(zip(totals["contract_starts_on"], totals["total"])) == {date(2025, 9, 1): 0.0, date(2026, 1, 5): 10.0}


def test_a_vendor_s_statement_holds_only_its_own_students(district):
    rows, _ = statement(district, "VA", "2026-06", Scope("vendor", "VA"))
    assert set(rows["student_id"]) == {"A1", "A2", "A3", "A4", "A5", "A6"} and set(rows["vendor_id"]) == {"VA"}
    own = queries.run(district, "statement", Scope("vendor", "VB"), {"period": "2026-06"})
    assert set(own["student_id"]) == {"B1", "B2", "B3"}
    for params in ({"vendor_id": "VA", "period": "2026-06"}, {"vendor_id": "VB,VA", "period": "2026-06"},
                   {"vendor_id": ["VA"], "period": "2026-06"}):
        with pytest.raises(ScopeError) as refused:
            queries.run(district, "statement", Scope("vendor", "VB"), params)
        assert "VA" not in str(refused.value)
    with pytest.raises(ScopeError):
        queries.run(district, "statement", Scope("facilitator"), {"vendor_id": "VA", "period": "2026-06"})
    # Values reach SQL only as bound parameters; a vendor id that is SQL is just an unknown vendor.
    sneaky = queries.run(district, "statement", ANALYST, {"vendor_id": "VA' or 1=1 --", "period": "2026-06"})
    assert sneaky.empty
    summary = queries.run(district, "payments", Scope("vendor", "VB"), {})
    assert set(summary["vendor_id"]) == {"VB"}


@pytest.mark.parametrize("period", ["2026-13", "January", "2026-1-5", ""])
def test_a_period_that_is_not_a_month_is_refused(district, period):
    with pytest.raises(queries.QueryError, match="YYYY-MM"):
        queries.run(district, "statement", ANALYST, {"vendor_id": "VA", "period": period or " "})


def test_the_cli_gives_the_statement_the_query_layer_gives(district, tmp_path):
    data = str(district.settings.data_dir)
    result = CliRunner().invoke(main, ["payments", "statement", "--vendor", "VA", "--period", "2026-06", "--data-dir", data],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    printed = pd.read_csv(io.StringIO(result.output), dtype={"student_id": str})
    rows, totals = statement(district, "VA", "2026-06")
    students = printed[printed["student_id"] != "TOTAL"]
    assert students["amount"].tolist() == rows["amount"].tolist()
    assert students["outcome"].tolist() == rows["outcome"].tolist()
    assert printed.loc[printed["student_id"] == "TOTAL", "amount"].tolist() == totals["total"].tolist() == [200.0]
    for output_format in ("xlsx", "html"):
        target = tmp_path / f"statement.{output_format}"
        result = CliRunner().invoke(main, ["payments", "statement", "--vendor", "VA", "--period", "2026-06", "--format",
                                           output_format, "--output", str(target), "--data-dir", data])
        assert result.exit_code == 0, result.output
    workbook = pd.read_excel(tmp_path / "statement.xlsx", sheet_name=None)
    assert workbook["Totals"]["total"].tolist() == [200.0] and len(workbook["Students"]) == len(rows)
    page = (tmp_path / "statement.html").read_text()
    assert "not tested in the fall window" in page and "http" not in page
    refused = CliRunner().invoke(main, ["payments", "statement", "--vendor", "VA", "--period", "2026-06",
                                        "--as", "vendor:VB", "--data-dir", data])
    assert refused.exit_code == 1 and "only its own vendor" in refused.output


def contract_file(folder: Path, *lines: str) -> Submission:
    return Submission(write_csv(folder / "contracts.csv", CONTRACT_HEADER, *lines), "contracts")


@pytest.mark.parametrize(
    ("line", "column", "reason"),
    [
        ("VA,sgp,50,-100,200,700,2025-09-01,2026-05-29,,,,,,,,,", "base_per_student", "must not be negative"),
        ("VA,sgp,50,100,200,700,2025-09-01,2026-05-29,,,,,,,,-5,", "student_cap", "must not be negative"),
        ("VA,sgp,50,100,200,700,2025-09-01,2026-05-29,,,percentile,summer,,,,,",
         "outcome_window", "is not an assessment window of the calendar"),
        ("VA,scaled_score,5,100,200,700,2025-09-01,2026-05-29,,,growth,fall,spring,,,,",
         "from_window", "must come before outcome_window"),
        ("VA,scaled_score,5,100,200,700,2025-09-01,2026-05-29,,,growth,spring,,,,,", "success", "give from_window"),
        ("VA,sgp,50,100,200,700,2025-09-01,2025-08-01,,,,,,,,,", "ends_on", "ends before starts_on"),
        ("VA,sgp,50,100,200,700,2025-09-01,2026-05-29,weeks,3,,,,,,,", "served_by", "must be sessions, minutes"),
        ("VA,sgp,50,100,200,700,2025-09-01,2026-05-29,,0,,,,,,,", "served_min", "must be more than 0"),
        ("VA,sgp,50,100,200,700,2025-09-01,2026-05-29,,,,,,,1.5,,", "min_dosage_share", "share from 0 to 1"),
        ("VA,sgp,50,100,200,700,2025-09-01,2026-05-29,,,,,,,,,yearly", "base_schedule", "monthly or quarterly"),
        ("VA,dosage_minutes,50,100,200,700,2025-09-01,2026-05-29,,,,spring,,,,,", "outcome_window", "not measured in windows"),
        ("VA,scaled_score,50,100,200,700,2025-09-01,2026-05-29,,,percentile,spring,,,,,", "success", "payment_metric sgp"),
    ],
)
def test_a_bad_term_names_its_file_row_and_field_and_saves_nothing(district, tmp_path, line, column, reason):
    before = snapshot(district)
    good = "VB,proficient,1,100,300,,2025-09-01,2026-05-29,minutes,60,threshold,spring,,,0.5,,quarterly"
    with pytest.raises(IngestRejected) as rejected:
        ingest(district, [contract_file(tmp_path, good, line)])
    [problem] = rejected.value.problems
    assert (problem.file, problem.row, problem.column) == ("contracts.csv", 3, column)
    assert reason in problem.reason, problem.reason
    assert snapshot(district) == before


def test_an_old_contract_file_loads_with_today_s_meaning_made_explicit(tmp_path):
    warehouse = make_warehouse(tmp_path / "data")
    warehouse.init(["2025-26"])
    folder = tmp_path / "files"
    files = district_files(folder)
    files[2] = Submission(write_csv(
        folder / "old_contracts.csv", "vendor_id,payment_metric,threshold,base_per_student,outcome_per_student,cap,starts_on,ends_on",
        "VA,sgp,50,100,200,,2025-09-01,2026-05-29",
    ), "contracts")
    ingest(warehouse, files)
    with warehouse.cursor() as cur:
        terms = cur.execute(
            "select served_by, served_min, success, outcome_window, from_window, enrolled_by, min_dosage_share,"
            " student_cap, base_schedule from contracts"
        ).fetchall()
    assert terms == [("sessions", 1.0, "threshold", None, None, None, None, None, "monthly")]
    rows, _ = statement(warehouse, "VA", "2026-06")
    # Served after one session; paid on each student's latest SGP in the contract dates.
    outcome = dict(zip(rows["student_id"], rows["outcome"]))
    assert outcome == {"A1": "successful", "A2": "successful", "A3": "successful", "A4": "successful",
                       "A5": "not successful", "A6": "successful"}
    described = pd.DataFrame(rows.attrs["terms"]).iloc[0]
    assert described["outcome"] == "sgp ≥ 50 on the student's latest result in the contract dates"
    assert described["served"] == "at least 1 attended session(s) within the contract dates"
    assert described["outcome due"] == "2026-06, after the contract ends"

    # New terms for the same line replace the old in force; both versions stay, by batch.
    ingest(warehouse, [contract_file(folder, CONTRACTS[1])])
    with warehouse.cursor() as cur:
        history = cur.execute("select success, outcome_window, batch_id from contract_history order by batch_id").fetchall()
        in_force = cur.execute("select success, outcome_window, batch_id from contracts").fetchall()
    assert [h[:2] for h in history] == [("threshold", None), ("percentile", "spring")]
    assert in_force == [history[1]]
    rows, _ = statement(warehouse, "VA", "2026-06")
    described = pd.DataFrame(rows.attrs["terms"]).iloc[0]
    assert described["contract"].endswith(f"(terms of batch {history[1][2]})")
    assert described["outcome"] == "sgp ≥ 50 in the spring window"
    assert dict(zip(rows["student_id"], rows["outcome"]))["A2"] == "not eligible"
    warehouse.close()


def test_weeks_meeting_the_dosage_standard_as_the_served_rule(tmp_path):
    warehouse = make_warehouse(tmp_path / "data")
    warehouse.init(["2025-26"])
    files = district_files(tmp_path / "files")
    files[2] = contract_file(tmp_path, "VB,proficient,1,100,300,,2025-09-01,2026-05-29,dosage_weeks,2,threshold,spring,,,,,monthly")
    ingest(warehouse, files)
    rows, _ = statement(warehouse, "VB", "2026-01")
    # B1 met the standard in the week of Oct 6 (on its third session, Oct 8) and of Jan 12 (Jan 14).
    assert dict(zip(rows["student_id"], rows["served_on"])) == {"B1": date(2026, 1, 14), "B2": None, "B3": None}
    assert dict(zip(rows["student_id"], rows["base_amount"])) == {"B1": 100.0, "B2": 0.0, "B3": 0.0}
    assert rows.set_index("student_id").loc["B3", "not_eligible_because"] == (
        "not served (has 0 of 2 week(s) meeting the dosage standard)"
    )
    warehouse.close()


def test_money_reads_with_thousands_separators_in_the_files_for_people_and_plain_in_csv(district, tmp_path):
    import openpyxl

    assert payments.money(1234567) == "$1,234,567.00" and payments.money(-150) == "-$150.00"
    assert payments.money(float("nan")) == "" and payments.money(None) == ""
    rows = queries.run(district, "statement", ANALYST, {"vendor_id": "VA", "period": "2026-06"})
    page = payments.as_file(rows, "html", "VA").decode()
    assert "<td>$700.00</td>" in page and "<td>$200.00</td>" in page and "<td>700.0</td>" not in page
    target = tmp_path / "statement.xlsx"
    target.write_bytes(payments.as_file(rows, "xlsx", "VA"))
    sheet = openpyxl.load_workbook(target)["Totals"]
    header = [cell.value for cell in sheet[1]]
    total = sheet.cell(row=2, column=header.index("total") + 1)
    assert total.value == 200.0 and total.number_format == payments.EXCEL_MONEY
    assert sheet.cell(row=2, column=header.index("students_served") + 1).number_format == "General"
    csv = payments.as_file(rows, "csv", "VA").decode()
    assert csv.splitlines()[-1].endswith(",200.0") and "$" not in csv


def test_a_contract_pays_on_imported_assessment_metrics(tmp_path):
    """A rate card on metrics an NWEA MAP export brings (the data map's nwea_* metrics): RIT
    growth of 12 points from fall to spring, and meeting NWEA's typical growth in spring.
    Spring RIT gains: S1 13, S2 12, S3 11 (each at or past its typical growth); S4 has no session."""
    from ciboard import nwea

    warehouse = make_warehouse(tmp_path / "data")
    try:
        warehouse.init(["2024-25"])
        nwea.import_files(warehouse, sorted((SAMPLES / "nwea_map_current").glob("*.csv")))
        with warehouse.cursor() as cur:
            schools = dict(cur.execute("select name, school_id from schools").fetchall())
        school = {"S1": "Lincoln", "S2": "Lincoln", "S3": "Roosevelt", "S4": "Roosevelt"}
        folder = tmp_path / "files"
        folder.mkdir()
        ingest(warehouse, [
            Submission(write_csv(folder / "vendors.csv", "vendor_id,name", "VN,Vendor N"), "vendors"),
            Submission(write_csv(
                folder / "contracts.csv", CONTRACT_HEADER,
                "VN,nwea_mathematics_rit,12,100,200,,2024-09-02,2025-05-30,sessions,1,growth,spring,fall,,,,monthly",
                "VN,nwea_mathematics_met_typical_growth,1,100,50,,2024-09-02,2025-05-30,sessions,1,threshold,spring,,,,,monthly",
            ), "contracts"),
            Submission(write_csv(
                folder / "roster.csv",
                "student_id,vendor_id,school_id,grade,race_ethnicity,gender,econ_disadvantaged,english_learner,"
                "special_education,baseline_band,enrolled_on",
                *[f"{s},VN,{next(i for n, i in schools.items() if n.startswith(school[s]))},4,White,Female,0,0,0,near,2024-09-03"
                  for s in school],
            ), "roster"),
            Submission(write_csv(folder / "sessions.csv",
                                 "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes",
                                 *[f"{s},2024-09-17,VN-T1,3,45,40" for s in ("S1", "S2", "S3")]), "sessions", "VN"),
        ])
        rows, totals = statement(warehouse, "VN", "2025-06")
        assert {(r["student_id"], r["payment_metric"]): r["outcome"] for r in rows.to_dict("records")} == {
            ("S1", "nwea_mathematics_met_typical_growth"): "successful", ("S1", "nwea_mathematics_rit"): "successful",
            ("S2", "nwea_mathematics_met_typical_growth"): "successful", ("S2", "nwea_mathematics_rit"): "successful",
            ("S3", "nwea_mathematics_met_typical_growth"): "successful", ("S3", "nwea_mathematics_rit"): "not successful",
            ("S4", "nwea_mathematics_met_typical_growth"): "not eligible", ("S4", "nwea_mathematics_rit"): "not eligible",
        }
        # June pays the outcomes: $200 to S1 and S2 for growth, $50 to S1, S2 and S3 for typical growth.
        assert totals["outcome_amount"].tolist() == [550.0]
        terms = pd.DataFrame(rows.attrs["terms"]).set_index("payment_metric")
        assert terms.loc["nwea_mathematics_rit", "outcome"] == (
            "nwea_mathematics_rit grows by at least 12 from the fall to the spring window")
    finally:
        warehouse.close()
