"""Ingest tells a vendor nothing about other vendors: a student who is not its own is "not on
your roster" whether unknown or another vendor's, for every kind a vendor sends, and a key
already loaded names only the vendor's own files. The district is told everything; the
rejection log keeps only what the file's vendor may read, since the vendor reads it."""

import pytest

from conftest import SAMPLES, write_csv
from ciboard.access import ANALYST, Scope
from ciboard.ingest import IngestRejected, Submission, ingest
from ciboard.queries import run

HEADERS = {kind: (SAMPLES / f"{kind}.csv").read_text().splitlines()[0] for kind in ("roster", "sessions", "survey")}
V2_FILE = "sessions_V2_2025-09-22.csv"
UNKNOWN, OTHERS = "ST0000077", "ST0000009"  # nobody's student; V2's student
# For each kind a vendor sends: a row about an unknown student and a row about V2's student.
ROWS = {
    "sessions": ["{student},2025-09-22,V2-T001,1,45,45", "{student},2025-09-23,V1-T001,1,45,45"],
    "survey": ["{student},2025-09-24,sel_identity,4", "{student},2025-09-25,sel_efficacy,3"],
    "roster": ["{student},V1,E01,4,White,Male,0,0,0,near,2025-09-15"],
}
# Words that would tell V1 about V2: its id, its file, whose roster a student is on.
LEAKS = ("V2", V2_FILE, "another vendor", "any roster", "batch")


@pytest.fixture
def two_vendors(loaded, tmp_path):
    """The samples (V1's students) and V2 with a student, a week of sessions and a survey."""
    roster = write_csv(tmp_path / "roster_v2.csv", HEADERS["roster"], f"{OTHERS},V2,E02,3,White,Male,0,0,0,near,2025-09-15")
    sessions = write_csv(tmp_path / V2_FILE, HEADERS["sessions"], f"{OTHERS},2025-09-22,V2-T001,1,45,45")
    survey = write_csv(tmp_path / "survey_v2.csv", HEADERS["survey"], f"{OTHERS},2025-09-24,sel_identity,4")
    ingest(loaded, [Submission(roster, "roster", by_district=True)])
    ingest(loaded, [Submission(sessions, "sessions", "V2")])
    ingest(loaded, [Submission(survey, "survey", "V2")])
    return loaded


def problems_of(warehouse, path, kind, vendor="V1", **given) -> list:
    with pytest.raises(IngestRejected) as caught:
        ingest(warehouse, [Submission(path, kind, vendor, **given)])
    return caught.value.problems


@pytest.mark.parametrize("kind", ["sessions", "survey"])
def test_a_vendor_hears_the_same_of_an_unknown_student_and_of_another_vendors(two_vendors, tmp_path, kind):
    rows = [row.format(student=student) for student in (UNKNOWN, OTHERS) for row in ROWS[kind][:1]]
    path = write_csv(tmp_path / f"{kind}_v1.csv", HEADERS[kind], *rows)
    problems = problems_of(two_vendors, path, kind)
    assert [(p.row, p.column, p.value, p.reason) for p in problems] == [
        (2, "student_id", UNKNOWN, "is not on your roster"),
        (3, "student_id", OTHERS, "is not on your roster"),
    ]


def test_a_vendors_roster_hears_only_not_on_your_roster_of_another_vendors_student(two_vendors, tmp_path):
    path = write_csv(tmp_path / "roster_v1.csv", HEADERS["roster"], ROWS["roster"][0].format(student=OTHERS))
    problems = problems_of(two_vendors, path, "roster")
    assert [(p.row, p.column, p.reason) for p in problems] == [(2, "student_id", "is not on your roster")]


def test_a_vendors_roster_naming_another_vendor_hears_only_that_it_is_not_the_sender(two_vendors, tmp_path):
    known = ROWS["roster"][0].format(student="ST0000050").replace(",V1,", ",V2,")
    unknown = ROWS["roster"][0].format(student="ST0000051").replace(",V1,", ",V9,")
    path = write_csv(tmp_path / "roster_v1.csv", HEADERS["roster"], known, unknown)
    problems = problems_of(two_vendors, path, "roster")
    assert [(p.row, p.column, p.reason) for p in problems] == [
        (2, "vendor_id", "is not the submitting vendor"),
        (3, "vendor_id", "is not the submitting vendor"),
    ]


@pytest.mark.parametrize("kind", ["sessions", "survey", "roster"])
def test_nothing_a_vendor_is_told_names_another_vendor_or_its_files(two_vendors, tmp_path, kind):
    """Every row that would touch V2's student or V2's loaded rows (each kind's first row for
    V2's student is a row V2 loaded), in one file."""
    rows = [row.format(student=s) for s in (UNKNOWN, OTHERS) for row in ROWS[kind]]
    path = write_csv(tmp_path / f"{kind}_v1.csv", HEADERS[kind], *rows)
    problems = problems_of(two_vendors, path, kind)
    assert problems, "the file was rejected"
    told = " | ".join(p.reason for p in problems)  # values are what V1 itself sent
    assert not [word for word in LEAKS if word in told], told
    assert {p.reason for p in problems if p.column == "student_id"} == {"is not on your roster"}
    # Each row is told once, however many checks it failed.
    assert len({(p.row, p.column, p.reason) for p in problems}) == len(problems)


def test_the_district_is_told_whose_student_and_which_file(two_vendors, tmp_path):
    path = write_csv(tmp_path / "sessions_v1.csv", HEADERS["sessions"], f"{OTHERS},2025-09-22,V2-T001,1,45,45")
    problems = problems_of(two_vendors, path, "sessions", by_district=True)
    reasons = {p.reason for p in problems}
    assert "is on another vendor's roster" in reasons
    assert any(r.startswith("was already loaded in batch") and f"({V2_FILE})" in r for r in reasons), reasons


def test_a_vendor_is_told_of_its_own_files_by_name(two_vendors, tmp_path):
    own = (SAMPLES / "sessions.csv").read_text().splitlines()[1]  # of the week of 2025-09-15
    path = write_csv(tmp_path / "again.csv", HEADERS["sessions"], "ST0000001,2025-09-22,V1-T001,3,40,40", own)
    [problem] = problems_of(two_vendors, path, "sessions")
    assert problem.reason.startswith("was already loaded in batch") and problem.reason.endswith("(sessions.csv)")


def test_the_rejection_log_keeps_what_the_vendor_may_read_even_from_the_district(two_vendors, tmp_path):
    """The district sends V1's file and is told everything; the log, which V1 reads on Data
    quality, in the rejections view and in its CSV, keeps the vendor's words."""
    path = write_csv(
        tmp_path / "sessions_v1_week.csv", HEADERS["sessions"],
        f"{UNKNOWN},2025-09-22,V1-T001,1,45,45", f"{OTHERS},2025-09-22,V2-T001,1,45,45",
    )
    told = problems_of(two_vendors, path, "sessions", by_district=True)
    assert "is on another vendor's roster" in {p.reason for p in told}
    for scope in (Scope("vendor", "V1"), ANALYST):
        kept = run(two_vendors, "rejections", scope, {})
        kept = kept[kept["file_name"] == "sessions_v1_week.csv"]
        assert kept[["row_number", "column_name", "value", "reason"]].values.tolist() == [
            [2, "student_id", UNKNOWN, "is not on your roster"],
            [3, "student_id", OTHERS, "is not on your roster"],
        ], scope
    with two_vendors.cursor() as cur:
        stored = " | ".join(r for (r,) in cur.execute("select reason from submission_errors").fetchall())
    assert "another vendor" not in stored and V2_FILE not in stored


def test_a_district_file_without_a_vendor_keeps_every_reason(two_vendors, tmp_path):
    path = write_csv(tmp_path / "attendance.csv", "student_id,week_start,days_enrolled,days_present", "ST0000099,2025-09-22,5,5")
    problems_of(two_vendors, path, "school_attendance", vendor=None)
    kept = run(two_vendors, "rejections", ANALYST, {})
    assert kept[kept["file_name"] == "attendance.csv"]["reason"].tolist() == ["is not on any roster"]


def test_another_vendors_identical_file_is_not_taken_as_already_loaded(two_vendors, tmp_path):
    """V1 sending a copy of V2's file learns nothing from an 'unchanged'."""
    copy = tmp_path / "copy.csv"
    copy.write_bytes((tmp_path / V2_FILE).read_bytes())
    problems = problems_of(two_vendors, copy, "sessions")
    assert [(p.row, p.reason) for p in problems] == [(2, "is not on your roster")]
