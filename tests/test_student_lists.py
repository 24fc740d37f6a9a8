"""Student follow-up on the demo district: the three lists in every scope, the log and its
scope, the counts a meeting reads, and a packet that holds counts and never a student id.

The log is the demo's shared app database: these tests only add entries, and every entry
they add is dated on a day of its own (TEST_DAY and after), so no other test's reading changes.
"""

import re
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest

from ciboard import followup, meetings, packet, packet_files, student_lists
from ciboard.access import ANALYST, Scope, ScopeError
from ciboard.appdb import AppDB, IntegrityError
from ciboard.queries import run
from conftest import VENDOR_LABELS

VENDORS = list(VENDOR_LABELS)
FACILITATOR = Scope("facilitator")
YEAR_END = date(2026, 7, 31)
TEST_AT = datetime(2026, 8, 20, 12, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def db(demo_warehouse) -> AppDB:
    return AppDB.of(demo_warehouse.settings)


@pytest.fixture
def log_db(tmp_path, app_db_url) -> AppDB:
    """An app database of the test's own, on each backend, for tests that write to the log."""
    return AppDB(app_db_url or tmp_path / "app.sqlite3")


@pytest.fixture(scope="module")
def unserved_day(demo_warehouse) -> date:
    """A day some rostered student had waited over three weeks for a first session (the demo
    serves every student in the end, a few late)."""
    with demo_warehouse.cursor() as cur:
        [(day,)] = cur.execute(
            "select max(first - 1) from (select s.student_key, s.enrolled_on, min(x.session_date) as first"
            " from students as s join sessions as x using (student_key) where x.attended_minutes > 0 group by all)"
            " where first > enrolled_on + 21"
        ).fetchall()
    return day


def keys(frame: pd.DataFrame) -> set[str]:
    return set(frame["student_key"])


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_vendor_sees_only_its_own_students_on_every_list(demo_warehouse, unserved_day, vendor):
    for day in (YEAR_END, unserved_day):
        everyone = student_lists.lists(demo_warehouse, ANALYST, day)
        own = student_lists.lists(demo_warehouse, Scope("vendor", vendor), day)
        counted = student_lists.counts(demo_warehouse, Scope("vendor", vendor), day)
        for key in student_lists.LISTS:
            assert set(own[key]["vendor_id"]) <= {vendor}
            assert keys(own[key]) == keys(everyone[key][everyone[key]["vendor_id"] == vendor])
            assert counted[key] == len(own[key])
    # Every list has students somewhere, so the checks above compared something.
    assert all(len(everyone[key]) for key in ("absent", "not_growing"))
    assert len(student_lists.lists(demo_warehouse, ANALYST, unserved_day)["not_yet_served"]) > 0


def test_the_lists_follow_their_definitions(demo_warehouse, unserved_day):
    settings = demo_warehouse.settings
    found = student_lists.lists(demo_warehouse, ANALYST, YEAR_END)
    assert (found["absent"]["attendance_rate"] < settings.absent_below_rate).all()
    assert found["not_growing"]["window_start"].nunique() == 1
    assert (found["not_growing"]["served_on"] <= YEAR_END).all()
    assert (found["not_growing"]["sgp"] < settings.growth_target_sgp).all()
    waiting = student_lists.lists(demo_warehouse, ANALYST, unserved_day)["not_yet_served"]
    assert (waiting["weeks_on_roster"] >= settings.unserved_weeks).all()
    with demo_warehouse.cursor() as cur:
        attended = {k for (k,) in cur.execute(
            "select distinct student_key from sessions where attended_minutes > 0 and session_date <= ?", [unserved_day]
        ).fetchall()}
    assert not keys(waiting) & attended


def test_a_vendor_cannot_widen_its_lists(demo_warehouse):
    own = Scope("vendor", "V2")
    for view in ("absent_students", "not_growing", "not_yet_served", "follow_up_counts"):
        params = {"max_rate": 0.5} if view in ("absent_students", "follow_up_counts") else {}
        for asked in ("V3", ["V2", "V3"], "V2,V3"):
            with pytest.raises(ScopeError) as error:
                run(demo_warehouse, view, own, {**params, "vendor_id": asked})
            assert "V3" not in str(error.value)
    # Another vendor's student, asked for by id, is not there.
    other = run(demo_warehouse, "not_growing", ANALYST, {"vendor_id": "V3"})["student_key"].iloc[0]
    assert run(demo_warehouse, "followed_student", own, {"student_id": other}).empty
    assert len(run(demo_warehouse, "followed_student", Scope("vendor", "V3"), {"student_id": other})) == 1


def test_a_facilitator_gets_counts_and_never_a_student(demo_warehouse):
    for view, params in (("absent_students", {"max_rate": 0.5}), ("not_growing", {}), ("not_yet_served", {}),
                         ("followed_student", {"student_id": "ST0000001"})):
        with pytest.raises(ScopeError, match="only analysts"):
            run(demo_warehouse, view, FACILITATOR, params)
    with pytest.raises(ScopeError):
        student_lists.latest(AppDB.of(demo_warehouse.settings), FACILITATOR)
    exact = student_lists.counts(demo_warehouse, ANALYST, YEAR_END)
    seen = student_lists.counts(demo_warehouse, FACILITATOR, YEAR_END)
    min_cell = demo_warehouse.settings.min_cell_size
    # Hidden where small; otherwise within the cell-key noise of the true count (never below min_cell).
    assert [k for k, n in exact.items() if n < min_cell] == [k for k, n in seen.items() if n is None]
    assert all(abs(seen[k] - n) <= 2 and seen[k] >= min_cell for k, n in exact.items() if n >= min_cell)
    # One small school's list: hidden from the facilitator, whole for the analyst.
    small = student_lists.counts(demo_warehouse, FACILITATOR, YEAR_END, {"school_id": ["E01"], "grade": ["3"]})
    exact_small = student_lists.counts(demo_warehouse, ANALYST, YEAR_END, {"school_id": ["E01"], "grade": ["3"]})
    assert [k for k, n in exact_small.items() if n < min_cell] == [k for k, n in small.items() if n is None] != []


def test_a_facilitators_counts_carry_the_same_noise_as_every_count_so_two_filters_do_not_subtract(demo_warehouse):
    """Follow-up counts reach facilitators on the page, in meetings and in packets: as every count
    of students a hiding scope reads (ciboard.privacy, the cell-key method), each carries noise
    drawn from the students behind it: the same students give the same count every time, within
    two of the truth, and a difference of two filters' counts is not the students between them.
    Whoever follows the students up reads the exact count of the lists it reads whole."""
    min_cell = demo_warehouse.settings.min_cell_size
    schools = run(demo_warehouse, "choices", ANALYST).query("dimension == 'school_id'")["value"].tolist()
    moved = 0
    for school in schools:
        asked = {"school_id": [school]}
        exact = student_lists.counts(demo_warehouse, ANALYST, YEAR_END, asked)
        seen = student_lists.counts(demo_warehouse, FACILITATOR, YEAR_END, asked)
        assert seen == student_lists.counts(demo_warehouse, FACILITATOR, YEAR_END, asked), "the same every time"
        for key, n in exact.items():
            if n < min_cell:
                assert seen[key] is None
            else:
                assert abs(seen[key] - n) <= 2 and seen[key] >= min_cell
                moved += seen[key] != n
    assert moved, "no count carried noise"
    # A vendor reads its own lists whole, so its counts are theirs exactly.
    vendor = Scope("vendor", "V3")
    lists = student_lists.lists(demo_warehouse, vendor, YEAR_END)
    assert student_lists.counts(demo_warehouse, vendor, YEAR_END) == {k: len(frame) for k, frame in lists.items()}


def test_a_vendor_cannot_log_for_another_vendors_student(demo_warehouse, log_db):
    absent = student_lists.lists(demo_warehouse, ANALYST, YEAR_END)["absent"]
    theirs = absent[absent["vendor_id"] == "V1"]["student_key"].iloc[0]
    mine = absent[absent["vendor_id"] == "V4"]["student_key"].iloc[0]
    v4 = Scope("vendor", "V4")
    before = _all_entries(log_db)
    for student in (theirs, "ST9999999", f"{mine}' or '1'='1", f"{theirs}\x00", "%", "ST*"):
        with pytest.raises(ScopeError) as error:
            student_lists.log_status(log_db, demo_warehouse, v4, student, "absent", "contacted", by="vendor-v4",
                                     at=TEST_AT)
        assert "V1" not in str(error.value)
    with pytest.raises(ValueError, match="which student"):
        student_lists.log_status(log_db, demo_warehouse, v4, " ", "absent", "contacted", by="vendor-v4", at=TEST_AT)
    with pytest.raises(ScopeError):
        student_lists.log_status(log_db, demo_warehouse, FACILITATOR, mine, "absent", "contacted", by="facilitator",
                                 at=TEST_AT)
    assert _all_entries(log_db) == before
    logged = student_lists.log_status(log_db, demo_warehouse, v4, mine, "absent", "contacted", by="vendor-v4",
                                      note="Left a message", on=TEST_AT.date(), at=TEST_AT)
    assert student_lists.history(log_db, v4, mine)[-1] == logged
    # What V4 logged, V1 does not read; the district does.
    assert student_lists.history(log_db, Scope("vendor", "V1"), mine) == []
    assert mine not in student_lists.latest(log_db, Scope("vendor", "V1"))
    assert student_lists.latest(log_db, ANALYST)[mine] == logged
    # The entry is the warehouse's student, under its vendor: V4's log holds it.
    assert student_lists.latest(log_db, v4)[mine] == logged


def test_the_log_is_only_added_to(demo_warehouse, log_db):
    with pytest.raises(ValueError, match="unknown status"):
        student_lists.log_status(log_db, demo_warehouse, ANALYST, "ST0000001", "absent", "gone", by="analyst", at=TEST_AT)
    with pytest.raises(ValueError, match="after today"):
        student_lists.log_status(log_db, demo_warehouse, ANALYST, "ST0000001", "absent", "contacted", by="analyst",
                                 on=TEST_AT.date() + timedelta(days=1), at=TEST_AT)
    student_lists.log_status(log_db, demo_warehouse, ANALYST, "ST0000001", "absent", "contacted", by="analyst",
                             at=TEST_AT)
    with log_db.connect() as con:
        for statement in ("update student_follow_ups set status = 'new'", "delete from student_follow_ups",
                          "update student_follow_ups set note = '' where entry_id = 1",
                          *(["truncate student_follow_ups"] if log_db.url else [])):
            with pytest.raises(IntegrityError, match="only added to"):
                con.execute(statement)
    assert len(student_lists.history(log_db, ANALYST, "ST0000001")) == 1


def test_a_students_log_survives_leaving_the_list_and_coming_back(demo_warehouse, log_db):
    """A student on the absent list one week, off it later, and back on it after: the status
    logged the first time is the student's status when the student is back."""
    weeks = [date(2025, 10, 6) + timedelta(weeks=i) for i in range(40)]
    on = {day: keys(student_lists.lists(demo_warehouse, ANALYST, day)["absent"]) for day in weeks}
    found = next(
        (s, first, off, back)
        for i, first in enumerate(weeks) for s in sorted(on[first])
        for off in weeks[i + 1:] if s not in on[off]
        for back in weeks[weeks.index(off) + 1:] if s in on[back]
    )
    student, first, off, back = found
    logged = student_lists.log_status(log_db, demo_warehouse, ANALYST, student, "absent", "re-engaged", by="analyst",
                                      note="Back after a week's illness", on=TEST_AT.date(), at=TEST_AT)
    assert student not in keys(student_lists.lists(demo_warehouse, ANALYST, off)["absent"])
    again = student_lists.lists(demo_warehouse, ANALYST, back)["absent"]
    shown = student_lists.with_status(again, student_lists.latest(log_db, ANALYST)).set_index("student_key")
    assert shown.loc[student, "status"] == "re-engaged" and shown.loc[student, "note"] == logged.note
    assert student_lists.history(log_db, ANALYST, student)[-1] == logged
    # A student on no list reads as new.
    fresh = again[~again["student_key"].isin(student_lists.latest(log_db, ANALYST))]
    assert set(student_lists.with_status(fresh, {})["status"]) <= {"new"}


def test_the_demo_log_has_contacted_and_re_engaged_students(db):
    found = student_lists.latest(db, ANALYST)
    statuses = [e.status for e in found.values() if e.by.startswith("vendor-")]
    assert statuses.count("re-engaged") >= 3 and "contacted" in statuses
    for entry in found.values():
        log = student_lists.history(db, ANALYST, entry.student_key)
        assert [e.on for e in log] == sorted(e.on for e in log)


def test_a_meeting_reads_the_lists_counts_and_their_movement(demo_warehouse, db):
    [group] = [g for g in meetings.workgroups(db, ANALYST) if g.vendor_ids == ["V3"]]
    held_on = date(2026, 3, 10)
    prefill = followup.outcomes_prefill(demo_warehouse, db, FACILITATOR, group.id, held_on)
    since = date.fromisoformat(prefill.since)
    narrowed = {"vendor_id": ["V3"]}
    now = student_lists.counts(demo_warehouse, FACILITATOR, held_on, narrowed)
    then = student_lists.counts(demo_warehouse, FACILITATOR, since, narrowed)
    assert prefill.follow_up == {k: {"now": now[k], "then": then[k]} for k in student_lists.LISTS}
    exact = student_lists.counts(demo_warehouse, ANALYST, held_on, narrowed)
    assert abs(now["absent"] - exact["absent"]) <= 2 and exact["absent"] >= 10  # the facilitator's, with noise
    line = next(s for s in followup.summary(prefill, demo_warehouse) if s.startswith("Students to follow up"))
    assert f"persistently absent {now['absent']:,} (was {then['absent']:,} on {prefill.since})" in line
    # The V3 packet, read by V3 and by the district, holds the counts and no student id.
    final = next(x for x in meetings.meetings(db, ANALYST, group.id) if x.status == "final")
    for scope in (Scope("vendor", "V3"), FACILITATOR, ANALYST):
        made = packet.build(demo_warehouse, db, scope, final.id)
        text = packet_files.to_markdown(made) + packet_files.to_html(made)
        assert "Students to follow up" in text
        assert not re.search(r"ST\d{7}", text)


def _all_entries(db: AppDB) -> list[tuple]:
    with db.connect() as con:
        return [tuple(row) for row in con.execute("select * from student_follow_ups order by entry_id")]


def test_an_evaluator_reads_the_log_under_its_pseudonyms_without_notes_and_writes_nothing(demo_warehouse, db):
    from ciboard import privacy

    evaluator = Scope("evaluator", evaluator="evaluator")
    key = privacy.pseudonym_key(db)
    analysts = student_lists.latest(db, ANALYST)
    seen = student_lists.latest(db, evaluator)
    assert set(seen) == {privacy.pseudonym(key, "evaluator", s) for s in analysts}
    student, entry = next(iter(analysts.items()))
    mine = seen[privacy.pseudonym(key, "evaluator", student)]
    assert (mine.status, mine.list, mine.on, mine.by, mine.note) == (entry.status, entry.list, entry.on, "", "")
    # Its history is asked for by pseudonym; the real id finds nothing.
    assert [e.status for e in student_lists.history(db, evaluator, mine.student_key)] == [
        e.status for e in student_lists.history(db, ANALYST, student)]
    assert student_lists.history(db, evaluator, student) == []
    with pytest.raises(ScopeError, match="evaluator"):
        student_lists.log_status(db, demo_warehouse, evaluator, student, "absent", "contacted", by="evaluator")
    assert student_lists.latest(db, ANALYST) == analysts
