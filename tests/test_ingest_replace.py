"""A corrected re-submission replaces the earlier file of the same vendor, kind and period; if
that would remove rows, nothing lands until the sender confirms, and the refusal says, week
by week, how many rows there are now and in the new file, and how many would go and come."""

from datetime import date

import pytest

from conftest import snapshot, write_csv
from ciboard.ingest import ReplaceUnconfirmed, Submission, ingest
from ciboard.submissions import WeekChange, week_lines

HEADER = "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes"
WEEK = [  # three of V1's students, Monday to Wednesday of the week of 2025-09-22
    f"ST000000{student},2025-09-2{day},V1-T001,3,40,40" for student in (1, 2, 3) for day in (2, 3, 4)
]


@pytest.fixture
def a_week_sent(loaded, tmp_path):
    [first] = ingest(loaded, [Submission(write_csv(tmp_path / "week.csv", HEADER, *WEEK), "sessions", "V1")])
    return loaded, first


def test_a_one_row_file_does_not_silently_wipe_the_week(a_week_sent, tmp_path):
    warehouse, first = a_week_sent
    before, version = snapshot(warehouse), warehouse.version()
    one_row = write_csv(tmp_path / "oops.csv", HEADER, WEEK[0])
    with pytest.raises(ReplaceUnconfirmed) as caught:
        ingest(warehouse, [Submission(one_row, "sessions", "V1")])
    [outcome] = caught.value.outcomes
    assert outcome.status == "not loaded" and outcome.replaced_batch_id == first.batch_id
    assert outcome.changes == [WeekChange(date(2025, 9, 22), rows_before=9, rows_after=1, removed=8, added=0)]
    assert week_lines(outcome) == ["week of 2025-09-22: 9 rows now, 1 in oops.csv (8 removed, 0 added)"]
    assert "8 of its 9 rows would be removed" in str(caught.value)
    assert snapshot(warehouse) == before and warehouse.version() == version, "an unconfirmed replacement landed"
    with warehouse.cursor() as cur:
        logged = cur.execute("select count(*) from submissions where file_name = 'oops.csv'").fetchone()[0]
    assert logged == 0, "a question is not a submission"


def test_a_confirmed_replacement_lands_and_says_what_it_replaced(a_week_sent, tmp_path):
    warehouse, first = a_week_sent
    one_row = write_csv(tmp_path / "oops.csv", HEADER, WEEK[0])
    [outcome] = ingest(warehouse, [Submission(one_row, "sessions", "V1")], replace=True)
    assert (outcome.status, outcome.rows, outcome.replaced_batch_id) == ("accepted", 1, first.batch_id)
    assert [(c.removed, c.added) for c in outcome.changes] == [(8, 0)]
    with warehouse.cursor() as cur:
        assert cur.execute("select count(*) from sessions where session_date >= date '2025-09-22'").fetchone()[0] == 1


def test_a_correction_that_removes_nothing_needs_no_confirmation(a_week_sent, tmp_path):
    warehouse, first = a_week_sent
    corrected = [row[: -len(",40")] + ",0" if i == 4 else row for i, row in enumerate(WEEK)]
    extra = "ST0000004,2025-09-25,V1-T001,3,40,40"
    path = write_csv(tmp_path / "week_fixed.csv", HEADER, *corrected, extra)
    [outcome] = ingest(warehouse, [Submission(path, "sessions", "V1")])
    assert outcome.status == "accepted" and outcome.replaced_batch_id == first.batch_id
    assert outcome.changes == [WeekChange(date(2025, 9, 22), 9, 10, 0, 1)]


def test_each_week_of_a_replaced_file_is_counted_apart(loaded, tmp_path):
    two_weeks = [*WEEK, "ST0000001,2025-09-29,V1-T001,3,40,40", "ST0000002,2025-09-30,V1-T001,3,40,40"]
    ingest(loaded, [Submission(write_csv(tmp_path / "two.csv", HEADER, *two_weeks), "sessions", "V1")])
    # Same period (the first Monday to the last Sunday); the second week loses a row, the first gains one.
    again = [*WEEK, "ST0000004,2025-09-22,V1-T001,3,40,40", "ST0000001,2025-09-29,V1-T001,3,40,40"]
    with pytest.raises(ReplaceUnconfirmed) as caught:
        ingest(loaded, [Submission(write_csv(tmp_path / "two_fixed.csv", HEADER, *again), "sessions", "V1")])
    [outcome] = caught.value.outcomes
    assert [(c.week_start, c.rows_before, c.rows_after, c.removed, c.added) for c in outcome.changes] == [
        (date(2025, 9, 22), 9, 10, 0, 1),
        (date(2025, 9, 29), 2, 1, 1, 0),
    ]


def test_a_command_of_several_files_is_refused_whole_and_lands_whole_when_confirmed(a_week_sent, tmp_path):
    warehouse, _ = a_week_sent
    other_week = write_csv(tmp_path / "next.csv", HEADER, "ST0000001,2025-10-06,V1-T001,3,40,40")
    one_row = write_csv(tmp_path / "oops.csv", HEADER, WEEK[0])
    files = [Submission(other_week, "sessions", "V1"), Submission(one_row, "sessions", "V1")]
    before, version = snapshot(warehouse), warehouse.version()
    with pytest.raises(ReplaceUnconfirmed) as caught:
        ingest(warehouse, files)
    assert [(o.file, o.status, o.removes_rows) for o in caught.value.outcomes] == [
        ("next.csv", "not loaded", False), ("oops.csv", "not loaded", True),
    ]
    assert snapshot(warehouse) == before and warehouse.version() == version
    assert [o.status for o in ingest(warehouse, files, replace=True)] == ["accepted", "accepted"]


def test_the_district_replacing_its_attendance_week_is_asked_too(loaded, tmp_path):
    header = "student_id,week_start,days_enrolled,days_present"
    rows = [f"ST000000{s},2025-09-22,5,5" for s in (1, 2, 3, 4)]
    ingest(loaded, [Submission(write_csv(tmp_path / "att.csv", header, *rows), "school_attendance")])
    with pytest.raises(ReplaceUnconfirmed) as caught:
        ingest(loaded, [Submission(write_csv(tmp_path / "att2.csv", header, rows[0]), "school_attendance")])
    assert [(c.rows_before, c.rows_after, c.removed) for c in caught.value.outcomes[0].changes] == [(4, 1, 3)]
