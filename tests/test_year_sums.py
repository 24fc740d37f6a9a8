"""student_year_sums: each student's facts of a metric summed per school year, which the views read
for dates that hold whole school years (the pages' default) instead of the facts. The numbers
must be the facts' own: checked against SQL written over the facts, the sums against the facts
after each kind of load, and an old snapshot without the table read through a stand-in."""

import shutil

import pytest

from conftest import SAMPLES, make_warehouse, sample_submissions, write_csv
from ciboard import queries
from ciboard.access import ANALYST
from ciboard.ingest import ingest
from ciboard.submissions import Submission
from ciboard.warehouse import STUDENT_YEAR_SUMS

# The facts read as panel.sql reads them (scoped, on a calendar week, in a group), summed by hand
# per group: what a breakdown over any dates must give.
BY_HAND = """
with rows as (
    select
        dimension_value($by, f.vendor_id, f.school_id, f.grade, f.race_ethnicity, f.gender,
            f.econ_disadvantaged, f.english_learner, f.special_education, f.baseline_band) as group_1,
        coalesce(dimension_value($by2, f.vendor_id, f.school_id, f.grade, f.race_ethnicity, f.gender,
            f.econ_disadvantaged, f.english_learner, f.special_education, f.baseline_band), '') as group_2,
        f.student_key, f.value, f.denominator
    from scoped_facts($metric, scope_vendor := $vendor, start_date := $start, end_date := $end,
        filters := $filters::map(varchar, varchar[]), min_dosage_share := $dosage) as f
    inner join calendar_weeks as w on w.week_start = f.period_start
)
select
    group_1, group_2,
    case m.aggregation when 'rate' then sum(value) / nullif(sum(denominator), 0) else avg(value) end as value,
    count(distinct student_key) as n,
    sum(value) as numerator,
    case m.aggregation when 'rate' then sum(denominator) else count(*) end as denominator,
    case m.aggregation when 'mean' then sample_sd(value) end as sd,
    bit_xor(distinct hash(student_key, k.secret)) as cell_key
from rows, metrics as m, privacy_key as k
where m.metric_id = $metric and group_1 is not null and ($by2 is null or group_2 <> '')
group by group_1, group_2, m.aggregation
order by group_1, group_2
"""

CASES = [
    # (metric and how it aggregates, dimensions, vendor scope, filters, dosage share)
    ("tutoring_attendance_rate", "race_ethnicity", None, None, {}, None),
    ("tutoring_attendance_rate", "vendor_id", "english_learner", None, {}, None),
    ("tutoring_attendance_rate", "school_id", None, "V1", {"grade": ["3", "4"]}, None),
    ("dosage_minutes", "gender", None, None, {}, None),  # a mean: its sd too
    ("scaled_score", "vendor_id", "special_education", None, {"econ_disadvantaged": ["true"]}, None),
    ("met_growth_target", "race_ethnicity", None, None, {}, 0.5),  # a proportion, with the dosage filter
    ("school_attendance_rate", "vendor_id", None, None, {}, None),  # 'not tutored' students too
]


def breakdown(cur, metric, by, by2, vendor, filters, dosage, start, end):
    bound = {"metric": metric, "by": by, "by2": by2, "vendor": vendor, "dosage": dosage, "start": start, "end": end,
             "filters": {"key": list(filters), "value": list(filters.values())}}
    ours = cur.execute(
        "select group_1, group_2, value, n, numerator, denominator, sd, cell_key from breakdown($metric, $by,"
        " by_dimension_2 := $by2, scope_vendor := $vendor, start_date := $start, end_date := $end,"
        " filters := $filters::map(varchar, varchar[]), min_dosage_share := $dosage)",
        bound,
    ).fetchall()
    return ours, cur.execute(BY_HAND, bound).fetchall()


def same_numbers(ours, theirs) -> bool:
    if len(ours) != len(theirs):
        return False
    for mine, wanted in zip(ours, theirs):
        # Groups, counts and cell keys exact; sums of doubles to their last digits.
        if mine[:2] != wanted[:2] or mine[3] != wanted[3] or mine[7] != wanted[7]:
            return False
        for a, b in zip(mine[2:7], wanted[2:7]):
            if (a is None) != (b is None) or (a is not None and abs(a - b) > 1e-9 * max(1.0, abs(b))):
                return False
    return True


@pytest.mark.parametrize(("metric", "by", "by2", "vendor", "filters", "dosage"), CASES)
def test_a_breakdown_of_a_whole_school_year_gives_the_facts_own_numbers(demo_warehouse, metric, by, by2, vendor, filters,
                                                                         dosage):
    with demo_warehouse.cursor() as cur:
        [(first, last)] = cur.execute("select min(week_start), max(week_start) from calendar_weeks").fetchall()
        for start, end in [(None, None), (first, last), (first, None)]:  # read from the sums
            ours, theirs = breakdown(cur, metric, by, by2, vendor, filters, dosage, start, end)
            assert ours and same_numbers(ours, theirs), (start, end, ours, theirs)
        # Part of the year (the facts) and the whole year (the sums) in one range's difference.
        ours, theirs = breakdown(cur, metric, by, by2, vendor, filters, dosage, first, "2026-01-31")
        assert ours and same_numbers(ours, theirs), (ours, theirs)


def test_a_whole_school_year_is_read_from_the_sums_and_part_of_one_from_the_facts(demo_warehouse):
    """The view takes the sums where the dates hold every week of a year: with the sums hidden by an
    empty table of their name, a whole year has no rows and part of it still has its own."""
    with demo_warehouse.cursor() as cur:
        whole = cur.execute("select * from breakdown('tutoring_attendance_rate', 'race_ethnicity')").fetchall()
        part = cur.execute("select * from breakdown('tutoring_attendance_rate', 'race_ethnicity',"
                           " start_date := '2025-09-01', end_date := '2026-01-31')").fetchall()
        cur.execute("create temp table student_year_sums as select * from main.student_year_sums limit 0")
        try:
            assert cur.execute("select * from breakdown('tutoring_attendance_rate', 'race_ethnicity')").fetchall() == []
            assert cur.execute("select * from breakdown('tutoring_attendance_rate', 'race_ethnicity',"
                               " start_date := '2025-09-01', end_date := '2026-01-31')").fetchall() == part
            # A median reads the facts whatever the dates.
            assert cur.execute("select count(*) from breakdown('sgp', 'race_ethnicity')").fetchall()[0][0] > 0
        finally:
            cur.execute("drop table temp.student_year_sums")
        assert whole and whole != part


def sums_differ_from_facts(warehouse) -> list:
    """The rows where student_year_sums and the facts summed now disagree, either way."""
    fresh = f"select * replace (scaled_total::decimal(38, 0) as scaled_total, scaled_squares::decimal(38, 0) as scaled_squares) from ({STUDENT_YEAR_SUMS.format(only='')})"
    with warehouse.cursor() as cur:
        return cur.execute(
            f"(select * from student_year_sums except all {fresh}) union all ({fresh} except all select * from student_year_sums)"
        ).fetchall()


def test_the_sums_are_the_facts_summed_after_each_kind_of_load(demo_warehouse, loaded, tmp_path):
    # The demo: every kind of file, district records with dated groups, and vendors' rosters.
    assert sums_differ_from_facts(demo_warehouse) == []
    assert sums_differ_from_facts(loaded) == []
    with loaded.cursor() as cur:
        before = cur.execute("select count(*) from student_year_sums where student_key = 'ST0000001'").fetchall()[0][0]
    # A week more of sessions, and a roster that corrects a student's groups (the facts regrouped).
    sessions = write_csv(tmp_path / "sessions.csv", "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes",
                         "ST0000001,2026-03-02,V1-T001,3,40,40", "ST0000002,2026-03-03,V1-T001,3,40,10")
    roster_header = (SAMPLES / "roster.csv").read_text().splitlines()[0]
    roster = write_csv(tmp_path / "roster.csv", roster_header, "ST0000001,V1,E01,4,White,Female,1,0,0,below,2025-09-15")
    for submission in (Submission(sessions, "sessions", "V1"), Submission(roster, "roster", "V1")):
        [outcome] = ingest(loaded, [submission])
        assert outcome.status == "accepted", outcome
        assert sums_differ_from_facts(loaded) == []
    with loaded.cursor() as cur:
        assert cur.execute("select distinct race_ethnicity from student_year_sums where student_key = 'ST0000001'").fetchall() == [("White",)]
        assert cur.execute("select count(*) from student_year_sums where student_key = 'ST0000001'").fetchall()[0][0] == before

    # A district record regroups a student's facts of every metric from its date on (here all of
    # them), where a sessions file changes only the facts, and sums, of the metrics sessions make.
    records_header = (SAMPLES / "students.csv").read_text().splitlines()[0]
    records = write_csv(tmp_path / "records.csv", records_header, "ST0000002,E01,4,Asian,M,N,N,N,below,2025-09-01",
                        "ST0000002,E01,4,Asian,M,N,N,Y,below,2025-09-10")
    [outcome] = ingest(loaded, [Submission(records, "students")])
    assert outcome.status == "accepted", outcome
    assert sums_differ_from_facts(loaded) == []
    with loaded.cursor() as cur:
        regrouped = cur.execute(
            "select list(distinct metric_id) from student_year_sums where student_key = 'ST0000002' and special_education"
        ).fetchall()[0][0]
    assert {"scaled_score", "school_attendance_rate", "sel_identity"} < set(regrouped)

    # A new count date regroups every student's facts at the next ingest, whatever it loads: on
    # September 5 the student's first record is in force.
    data_dir = loaded.settings.data_dir
    loaded.close()
    recounted = make_warehouse(data_dir, group_count_date="09-05")
    more = write_csv(tmp_path / "more.csv", "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes",
                     "ST0000003,2026-03-09,V1-T002,2,40,35")
    [outcome] = ingest(recounted, [Submission(more, "sessions", "V1")])
    assert outcome.status == "accepted", outcome
    assert sums_differ_from_facts(recounted) == []
    with recounted.cursor() as cur:
        assert cur.execute(
            "select count(*) from student_year_sums where student_key = 'ST0000002' and special_education"
        ).fetchall()[0][0] == 0, "the new count date did not reach the sums"
    recounted.close()


@pytest.mark.parametrize("storage", ["lake", "files"])
def test_a_version_without_the_sums_is_read_with_sums_of_its_own_facts(tmp_path, loaded_data_dir, storage):
    """A record may pin a version made before migration 017: today's views read it with the sums
    computed from that version's facts, as a stand-in view, and give the numbers it gave."""
    data_dir = tmp_path / "data"
    if storage == "lake":
        shutil.copytree(loaded_data_dir, data_dir)
        warehouse = make_warehouse(data_dir)
    else:
        warehouse = make_warehouse(data_dir, storage="files")
        warehouse.init(["2025-26"])
        ingest(warehouse, sample_submissions())
    asked = {"metric": "tutoring_attendance_rate", "by": "race_ethnicity"}
    try:
        with_sums = queries.run(warehouse, "breakdown", ANALYST, asked)
        with warehouse.publish() as con:
            con.execute("drop table student_year_sums")
        without = warehouse.version()
        warehouse.pin(without, "meeting-1")
        with warehouse.at(without).cursor() as cur:
            assert cur.execute("select count(*) from duckdb_views() where view_name = 'student_year_sums'").fetchall() == [(1,)]
        read_again = queries.run(warehouse.at(without), "breakdown", ANALYST, asked)
        assert not with_sums.empty and read_again.equals(with_sums)
    finally:
        warehouse.close()
