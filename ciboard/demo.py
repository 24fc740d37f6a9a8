"""The demo district: a seeded, realistic school year of tutoring, loaded through the real ingest.

It writes the files a district and its vendors would send (rosters, weekly session logs and
exit tickets, weekly school attendance, three assessment windows, reference files) and then
loads them with `ingest`, so the demo exercises the same path as real data, including a
rejected file, a corrected re-submission, a habitually late vendor and a missing week.

Randomness comes from hashing (seed, student, date, purpose), not from a random stream, so
the same seed gives the same district whatever the order or parallelism of generation, and
DuckDB generates each week's rows in bounded memory.

Planted effects (the README lists them for users to find):
- V3's tutoring attendance drops about 8 points from week 20 of the school year on;
- English learners at V5 attend tutoring about 10 points less than other V5 students;
- economically disadvantaged students' median SGP is about 8 points lower, except at V2;
- school attendance dips in the two weeks after winter break;
- V1's met-growth-target rate rises after its January program change;
- V4 logs sessions on the first snow day and on the first two days of winter break, which the
  service checks flag and payments do not count until accepted;
- V4's log of one October Monday gives start times, and three of its tutors are booked with two
  groups at overlapping times (a tutor in two places at once), which the plausibility check flags.
- as many students again, in the same schools, whom no vendor tutors: in the district's student
  records (somewhat less often far below grade level: tutoring went to those who needed it),
  with school attendance and assessments but no sessions, and the growth of students without
  tutoring, so the matched comparison and the difference in differences have something true to find.
"""

import csv
import shutil
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import duckdb

from ciboard import accounts, demo_meetings, demo_reports
from ciboard.appdb import AppDB
from ciboard.calendar import Calendar, calendar_for, parse_school_year, school_closed, weeks
from ciboard.ingest import IngestRejected, Outcome, Progress, Submission, ingest
from ciboard.settings import Settings
from ciboard.warehouse import Warehouse

PLANTED_VENDOR = "V4"  # logs sessions on a snow day and in winter break, for the service checks to flag
# Three of the planted vendor's tutors, double-booked on one day: half their students at 15:00, half at 15:15.
DOUBLE_BOOKED = ("V4-T0000", "V4-T0001", "V4-T0002")
VENDORS = {
    "V1": "BrightPath Tutoring",
    "V2": "Lumen Learning Partners",
    "V3": "Keystone Math Corps",
    "V4": "Northstar Readers",
    "V5": "Cardinal Tutors",
    "V6": "Summit Peer Tutoring",
}

# Elementary schools (grades 3-5) E01-E20 and middle schools (6-8) M01-M10, each served by one
# vendor. V5 serves the schools with the most English learners.
SCHOOL_VENDOR = {
    **{f"E{i:02d}": v for v, ids in {
        "V1": (1, 2, 3, 4), "V2": (5, 6, 7), "V3": (8, 9, 10),
        "V4": (11, 12, 13), "V5": (14, 15, 16, 17), "V6": (18, 19, 20),
    }.items() for i in ids},
    **{f"M{i:02d}": v for v, ids in {
        "V1": (1,), "V2": (2, 3), "V3": (4,), "V4": (5, 6), "V5": (7,), "V6": (8, 9, 10),
    }.items() for i in ids},
}
SCHOOL_NAMES = (
    "Adams", "Banneker", "Carver", "Douglass", "Earhart", "Franklin", "Garfield", "Hamilton",
    "Irving", "Jefferson", "King", "Lincoln", "Madison", "Nightingale", "Obama", "Parks",
    "Quincy", "Roosevelt", "Sequoyah", "Truth", "Union", "Vasquez", "Washington", "Xavier",
    "Young", "Zapata", "Chavez", "Tubman", "Anthony", "Curie",
)

# Attendance propensity of each vendor's students before any planted effect.
VENDOR_ATTENDANCE = {"V1": 0.86, "V2": 0.89, "V3": 0.88, "V4": 0.84, "V5": 0.87, "V6": 0.83}
SESSION_MINUTES = {"V1": 40, "V2": 45, "V3": 40, "V4": 40, "V5": 45, "V6": 40}


@dataclass
class DemoResult:
    students: int
    files: int
    facts: int
    version: str
    outcomes: list[Outcome]
    passwords: dict[str, str]  # the demo accounts' user names and passwords, made once


def build(
    warehouse: Warehouse,
    *,
    students: int = 12_000,
    seed: int = 7,
    school_year: str = "2025-26",
    progress: Progress | None = None,
) -> DemoResult:
    """Writes the demo district's files under <data_dir>/demo_files and loads them into a new warehouse."""
    say = progress or (lambda message: None)
    settings = warehouse.settings
    if warehouse.exists():
        raise FileExistsError(
            f"{warehouse.directory} already holds a warehouse; the demo builds a new one (choose another --data-dir)"
        )
    cal = calendar_for(parse_school_year(school_year, settings.school_year_start_month).name)
    main_files, corrections = write_files(
        Path(settings.data_dir) / "demo_files", students=students, seed=seed, cal=cal, settings=settings, say=say
    )
    warehouse.init([cal.school_year])
    say(f"loading {len(main_files)} files through ingest")
    # A demo of a school year still under way may hold dates after today; it is made-up data.
    today = max(date.today(), cal.last_school_day)
    outcomes = ingest(warehouse, main_files, progress=say, today=today)
    for submission in corrections:
        try:
            outcomes += ingest(warehouse, [submission], progress=say, today=today)
        except IngestRejected as rejected:
            say(f"{submission.path.name}: rejected as planned ({len(rejected.problems)} problems)")
            outcomes += rejected.outcomes
    with warehouse.cursor() as cur:
        facts = cur.execute("select count(*) from facts").fetchall()[0][0]
        vendors = cur.execute("select vendor_id, name from vendors order by vendor_id").fetchall()
        schools = cur.execute("select school_id, name from schools order by school_id").fetchall()
    # The demo's school account is the coordinators' who sit in its workgroups, so it has some to take part in.
    schools = [s for s in schools if s[0] in demo_meetings.COORDINATED_SCHOOLS] or schools
    db = AppDB.of(settings)
    passwords = make_accounts(db, vendors, say, schools)
    say("seeding the CI workgroups, meetings, commitments and PDSA cycles")
    demo_meetings.seed(db, warehouse)
    say("seeding the follow-up log of persistently absent students")
    demo_meetings.seed_follow_ups(db, warehouse)
    demo_reports.seed(db, warehouse)  # the year's contract report, released to the board
    return DemoResult(students, len(main_files) + len(corrections), facts, warehouse.version(), outcomes, passwords)


def make_accounts(
    db: AppDB, vendors: list[tuple[str, str]], say: Progress, schools: list[tuple[str, str]] = ()
) -> dict[str, str]:
    """The demo's accounts, one per role and per vendor (the school account reads the first
    two schools given), unless the app database has accounts already."""
    if accounts.users(db):
        say("the app database already has accounts; no demo accounts made")
        return {}
    say("making one account per role and per vendor")
    return accounts.create_demo_accounts(db, vendors, schools)


def write_files(
    directory: Path, *, students: int, seed: int, cal: Calendar, settings: Settings, say: Progress
) -> tuple[list[Submission], list[Submission]]:
    """Writes the district's raw files; returns the main load and the later corrections, in order."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    scratch = directory.with_name(directory.name + "_scratch")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    con = duckdb.connect(
        config={"memory_limit": settings.memory_limit, "temp_directory": str(scratch), "preserve_insertion_order": False}
    )
    try:
        return DemoWriter(con, cal, seed, directory, say, settings).write_all(students)
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)


class DemoWriter:
    def __init__(
        self, con: duckdb.DuckDBPyConnection, cal: Calendar, seed: int, directory: Path, say: Progress, settings: Settings
    ):
        self.con = con
        self.cal = cal
        self.seed = seed
        self.directory = directory
        self.say = say
        # u(...) is a uniform draw in [0, 1) and z(...) a standard normal one, both pure
        # functions of their arguments and the seed.
        con.execute(f"create macro u(a, b, c) as (hash({int(seed)}, a, b, c) % 1000003) / 1000003.0")
        # Standard normal CDF, Bowling et al. (2009) logistic approximation (error < 1.4e-4).
        con.execute("create macro normal_cdf(x) as 1 / (1 + exp(-(1.5976 * x + 0.070566 * x * x * x)))")
        con.execute(
            "create macro z(a, b, c) as sqrt(-2 * ln(greatest(u(a, b, c || 'r'), 1e-9)))"
            " * cos(2 * pi() * u(a, b, c || 't'))"
        )
        self.sessions_week: date | None = None
        self.week_numbers = {
            row["week_start"]: row["week_of_year"]
            for row in weeks(parse_school_year(cal.school_year, settings.school_year_start_month), settings)
        }

    def path(self, name: str) -> Path:
        return self.directory / name

    def copy(self, query: str, name: str, params: list | None = None) -> Path:
        target = self.path(name)
        self.con.execute(f"copy ({query}) to '{target}' (header, delimiter ',')", params or [])
        return target

    def write_all(self, students: int) -> tuple[list[Submission], list[Submission]]:
        cal = self.cal
        opened = datetime.combine(cal.program_start - timedelta(days=14), time(9))
        files = [
            Submission(self.write_schools(), "schools", received_at=opened),
            Submission(self.write_vendors(), "vendors", received_at=opened),
        ]
        self.make_students(students)
        # The district's records come before the rosters, which then only assign students to vendors.
        files.append(Submission(self.write_student_records(), "students", received_at=opened))
        files.append(Submission(self.write_contracts(), "contracts", received_at=opened))
        files.append(Submission(self.write_annotations(), "annotations", received_at=opened))
        for vendor in VENDORS:
            files.append(
                Submission(
                    self.write_roster(vendor), "roster", vendor, datetime.combine(cal.program_start, time(8))
                )
            )
        school_weeks = sorted(w for w in self.week_numbers if cal.first_school_day <= w <= cal.last_school_day)
        for week in school_weeks:
            if week >= cal.program_start and week <= cal.program_end and not self.break_week(week):
                for vendor in VENDORS:
                    if vendor == "V6" and week == self.missing_week():
                        continue  # V6 never sends this week
                    received = self.received_at(vendor, week)
                    if not (vendor == "V2" and week == self.rejected_week()):
                        files.append(Submission(self.write_sessions(vendor, week), "sessions", vendor, received))
                    files.append(Submission(self.write_survey(vendor, week), "survey", vendor, received))
            elif self.planted_days(week):
                received = self.received_at(PLANTED_VENDOR, week)
                files.append(Submission(self.write_sessions(PLANTED_VENDOR, week), "sessions", PLANTED_VENDOR, received))
            if not self.break_week(week):
                files.append(
                    Submission(
                        self.write_school_attendance(week),
                        "school_attendance",
                        received_at=datetime.combine(week + timedelta(days=9), time(7)),
                    )
                )
            self.say(f"wrote files for the week of {week}")
        for window, start in cal.windows.items():
            files.append(
                Submission(
                    self.write_assessment(window, start),
                    "assessment",
                    received_at=datetime.combine(start + timedelta(days=23), time(10)),
                )
            )
        return files, self.write_corrections()

    # --- the calendar of submissions ---------------------------------------------------

    def break_week(self, week: date) -> bool:
        return all(
            school_closed(self.cal, week + timedelta(days=d)) and not (week + timedelta(days=d)) in self.cal.snow_days
            for d in range(5)
        )

    def missing_week(self) -> date:
        return self.cal.snow_days[1] - timedelta(days=self.cal.snow_days[1].weekday())

    def rejected_week(self) -> date:
        return self.cal.program_start + timedelta(weeks=4)

    def corrected_week(self) -> date:
        return self.cal.program_start + timedelta(weeks=7)

    def double_booked_day(self) -> date:
        """The day the planted vendor's log gives start times: the first session day six weeks in."""
        return self.session_days(self.cal.program_start + timedelta(weeks=6))[0]

    def received_at(self, vendor: str, week: date) -> datetime:
        """Vendors send Monday to Wednesday after the week (due Wednesday); V4 is habitually late."""
        draw = self.con.execute("select u(?, ?, 'received')", [vendor, week]).fetchall()[0][0]
        if vendor == "V4" and draw < 0.7:
            days = 10 + int(draw * 8)  # Thursday of the next week or later
        else:
            days = 7 + int(draw * 3)
        return datetime.combine(week + timedelta(days=days), time(8 + int(draw * 9), int(draw * 3600) % 60))

    # --- reference files ---------------------------------------------------------------

    def write_schools(self) -> Path:
        rows = [
            (school, f"{SCHOOL_NAMES[i]} {'Elementary' if school.startswith('E') else 'Middle'} School")
            for i, school in enumerate(SCHOOL_VENDOR)
        ]
        self.con.execute("create table demo_schools (school_id varchar, name varchar, vendor_id varchar)")
        self.con.executemany(
            "insert into demo_schools values (?, ?, ?)", [(s, n, SCHOOL_VENDOR[s]) for s, n in rows]
        )
        return self.copy("select school_id, name from demo_schools order by school_id", "schools.csv")

    def write_vendors(self) -> Path:
        self.con.execute("create table demo_vendors (vendor_id varchar, name varchar)")
        self.con.executemany("insert into demo_vendors values (?, ?)", list(VENDORS.items()))
        return self.copy("select * from demo_vendors order by vendor_id", "vendors.csv")

    def write_contracts(self) -> Path:
        """Rate-card lines: $700 per student served plus $750 per student with a spring growth
        percentile of 50 or more, capped a little under the most the roster could earn (V2's cap is
        tighter, so it binds). A student is served after six attended sessions (V6: four weeks
        meeting the dosage standard) and is eligible for the outcome if enrolled within the
        program's first four weeks; V3 also asks the dosage standard in 35% of its tutoring weeks
        and V4 is paid its base quarterly. The Payments page shows every rule: served, not eligible
        and why, and outcomes "due after the spring window". No student cap: the Vendors page reads
        any cap applied as the contract's binding, which only V2's is."""
        cal = self.cal
        return self.copy(
            """select vendor_id, 'sgp' as payment_metric, 50 as threshold, 700 as base_per_student,
                      750 as outcome_per_student,
                      round(count(*) * case vendor_id when 'V2' then 1000 else 1200 end, -3) as cap,
                      ?::date as starts_on, ?::date as ends_on,
                      case vendor_id when 'V6' then 'dosage_weeks' else 'sessions' end as served_by,
                      case vendor_id when 'V6' then 4 else 6 end as served_min,
                      'percentile' as success, 'spring' as outcome_window, null as from_window,
                      ?::date as enrolled_by,
                      case vendor_id when 'V3' then 0.35 end as min_dosage_share,
                      null as student_cap,
                      case vendor_id when 'V4' then 'quarterly' else 'monthly' end as base_schedule
               from demo_students where tutored group by vendor_id order by vendor_id""",
            "contracts.csv",
            [cal.program_start, cal.program_end, cal.program_start + timedelta(weeks=4)],
        )

    def write_annotations(self) -> Path:
        cal = self.cal
        rows = [
            (cal.winter_break[0], cal.winter_break[1], "break", "Winter break", "Schools closed; no tutoring.", None),
            (cal.spring_break[0], cal.spring_break[1], "break", "Spring break", "Schools closed; no tutoring.", None),
            (cal.thanksgiving[0], cal.thanksgiving[1], "closure", "Thanksgiving", "Schools closed Wednesday to Friday.", None),
            *[
                (day, day, "closure", "Snow day", "Schools closed district-wide; sessions cancelled.", None)
                for day in cal.snow_days
            ],
            # Monday holidays close schools too: a four-day week is not comparable with the others.
            *[
                (day, day, "closure", "Holiday", "Schools closed for a public holiday.", None)
                for day in cal.holidays
            ],
            (
                cal.program_change_v1,
                cal.program_change_v1,
                "program change",
                "V1 moves sessions into the school day",
                "BrightPath moves tutoring from after school to an intervention block and adds a "
                "weekly check-in with each student's teacher.",
                "V1",
            ),
        ]
        self.con.execute(
            "create table demo_annotations (starts_on date, ends_on date, kind varchar, title varchar,"
            " description varchar, vendor_id varchar)"
        )
        self.con.executemany("insert into demo_annotations values (?, ?, ?, ?, ?, ?)", rows)
        return self.copy("select * from demo_annotations order by starts_on", "annotations.csv")

    # --- students ----------------------------------------------------------------------

    def make_students(self, count: int) -> None:
        cal = self.cal
        self.con.execute(
            """
            create table demo_students as
            with ids as (
                select i, 'ST' || lpad(i::varchar, 7, '0') as student_id, 3 + (hash(?, i, 'grade') % 6)::int as grade,
                       -- The first `count` are tutored; as many again in the same schools are not.
                       i <= ? as tutored
                from range(1, 2 * ? + 1) as t(i)
            ),
            placed as (
                select ids.*,
                       case when grade <= 5 then 'E' || lpad((1 + hash(?, i, 'school') % 20)::varchar, 2, '0')
                            else 'M' || lpad((1 + hash(?, i, 'school') % 10)::varchar, 2, '0') end as school_id
                from ids
            ),
            with_vendor as (
                select p.*, s.vendor_id as school_vendor, case when p.tutored then s.vendor_id end as vendor_id
                from placed as p inner join demo_schools as s using (school_id)
            ),
            race as (
                select *,
                       u(i, 'race', '') as r_race,
                       -- V5's schools enrol more Hispanic and Asian students, hence more English learners.
                       case when school_vendor = 'V5' then 0.15 else 0 end as shift
                from with_vendor
            ),
            demographics as (
                select *,
                    case when r_race < 0.38 + shift then 'Hispanic'
                         when r_race < 0.63 + shift * 0.6 then 'Black'
                         when r_race < 0.83 + shift * 0.3 then 'White'
                         when r_race < 0.91 + shift * 0.3 then 'Asian'
                         when r_race < 0.97 then 'Multiracial'
                         when r_race < 0.985 then 'American Indian'
                         else 'Pacific Islander' end as race_ethnicity,
                    case when u(i, 'gender', '') < 0.49 then 'Female'
                         when u(i, 'gender', '') < 0.99 then 'Male' else 'Nonbinary' end as gender
                from race
            ),
            programs as (
                select *,
                    u(i, 'econ', '') < case race_ethnicity when 'White' then 0.38 when 'Asian' then 0.45 else 0.72 end
                        as econ_disadvantaged,
                    u(i, 'el', '') < case race_ethnicity when 'Hispanic' then 0.42 when 'Asian' then 0.35 else 0.03 end
                        as english_learner,
                    u(i, 'sped', '') < 0.14 as special_education
                from demographics
            ),
            bands as (
                select *,
                    u(i, 'band', '') - case when econ_disadvantaged then 0.08 else -0.06 end
                    -- Tutoring went to students who needed it: those without start far below less often.
                    + case when tutored then 0 else 0.12 end as r_band
                from programs
            )
            select
                i, student_id, tutored, grade, school_id, vendor_id, race_ethnicity, gender,
                econ_disadvantaged, english_learner, special_education,
                case when r_band < 0.30 then 'well below' when r_band < 0.65 then 'below'
                     when r_band < 0.90 then 'near' else 'above' end as baseline_band,
                case when r_band < 0.30 then -1.5 when r_band < 0.65 then -0.7
                     when r_band < 0.90 then 0.0 else 0.8 end + 0.3 * z(i, 'ability', '') as ability,
                -- Most start in the first week; some join late, a few leave early.
                ?::date + 7 * case when not tutored or u(i, 'enrol', '') < 0.8 then 0
                                   when u(i, 'enrol', '') < 0.95 then 1 + (hash(?, i, 'late') % 3)::int
                                   else 4 + (hash(?, i, 'late') % 9)::int end as enrolled_on,
                case when tutored and u(i, 'leave', '') < 0.05 then ?::date + 7 * (8 + (hash(?, i, 'left') % 20)::int)
                     else ?::date + 1 end as left_on,
                z(i, 'engage', '') as engagement,
                u(i, 'absent', '') < 0.06 as persistently_absent,
                u(i, 'chronic', '') < 0.09 as chronically_absent
            from bands
            """,
            [self.seed, count, count, self.seed, self.seed, cal.program_start, self.seed, self.seed,
             cal.program_start, self.seed, cal.program_end],
        )
        self.con.execute(
            """
            create table demo_tutors as
            select vendor_id, greatest(3, count(*) // 8)::int as pool from demo_students where tutored group by vendor_id
            """
        )
        self.con.execute(
            """
            create or replace table demo_students as
            select s.*,
                   s.vendor_id || '-T' || lpad((hash(?, s.i, 'tutor') % t.pool)::varchar, 4, '0') as main_tutor,
                   t.pool as tutor_pool,
                   -- A student's propensity to attend tutoring, before the planted effects.
                   least(0.99, greatest(0.05,
                       v.base + 0.06 * s.engagement
                       - case when s.persistently_absent then 0.45 else 0 end
                       - case when s.grade >= 6 then 0.03 else 0 end)) as attend_base,
                   1 + (hash(?, s.i, 'group') % case s.vendor_id when 'V2' then 2 else 4 end)::int as group_size,
                   v.minutes as session_minutes
            from demo_students as s
            left join demo_tutors as t using (vendor_id)
            left join (
                select unnest(?::varchar[]) as vendor_id, unnest(?::double[]) as base, unnest(?::integer[]) as minutes
            ) as v using (vendor_id)
            """,
            [
                self.seed,
                self.seed,
                list(VENDOR_ATTENDANCE),
                list(VENDOR_ATTENDANCE.values()),
                [SESSION_MINUTES[v] for v in VENDOR_ATTENDANCE],
            ],
        )
        self.say(f"made {count:,} tutored students and {count:,} without tutoring")

    def write_student_records(self) -> Path:
        """The district's records of every student, tutored or not, as of two weeks before tutoring starts."""
        return self.copy(
            """select student_id, school_id, grade, race_ethnicity, gender,
                      econ_disadvantaged::int as econ_disadvantaged, english_learner::int as english_learner,
                      special_education::int as special_education, baseline_band, ?::date as as_of
               from demo_students order by student_id""",
            "student_records.csv",
            [self.cal.program_start - timedelta(days=14)],
        )

    def write_roster(self, vendor: str) -> Path:
        return self.copy(
            """select student_id, vendor_id, school_id, grade, race_ethnicity, gender,
                      econ_disadvantaged::int as econ_disadvantaged, english_learner::int as english_learner,
                      special_education::int as special_education, baseline_band, enrolled_on
               from demo_students where vendor_id = ? order by student_id""",
            f"roster_{vendor}.csv",
            [vendor],
        )

    # --- weekly files ------------------------------------------------------------------

    def session_days(self, week: date) -> list[date]:
        return [
            week + timedelta(days=d) for d in (0, 1, 3) if not school_closed(self.cal, week + timedelta(days=d))
        ]

    def planted_days(self, week: date) -> list[date]:
        """Days the planted vendor logs sessions though schools are closed: the first snow day,
        and the Monday and Tuesday of winter break (its own schedule, kept through the break)."""
        first, last = self.cal.winter_break
        days = [week + timedelta(days=d) for d in range(5)]
        return [d for d in days if d == self.cal.snow_days[0]] + [
            d for d in days[:2] if first <= d <= last and d < first + timedelta(days=7)
        ]

    def make_week_sessions(self, week: date) -> None:
        number = self.week_numbers[week]
        after_break = self.cal.winter_break[1] < week <= self.cal.winter_break[1] + timedelta(days=14)
        self.con.execute(
            """
            create or replace temp table week_sessions as
            with scheduled as (
                select s.*, d.session_date,
                       least(0.99, greatest(0.03, s.attend_base
                           -- planted: V3's attendance drops from week 20 of the school year
                           - case when s.vendor_id = 'V3' and ? >= 20 then 0.08 else 0 end
                           -- planted: English learners at V5 attend about 10 points less
                           - case when s.vendor_id = 'V5' and s.english_learner then 0.10 else 0 end
                           - case when ? then 0.03 else 0 end)) as p_attend
                from demo_students as s, (
                    select unnest(?::date[]) as session_date, false as planted
                    union all
                    select unnest(?::date[]), true
                ) as d
                where s.tutored and s.enrolled_on <= d.session_date and d.session_date < s.left_on
                  -- planted: one vendor logs sessions on days schools are closed (Data quality flags them)
                  and (not d.planted or s.vendor_id = ?)
            ),
            tutored as (
                select
                    student_id, vendor_id, session_date,
                    case when u(i, session_date, 'sub') < 0.85 then main_tutor
                         else vendor_id || '-T' || lpad((hash(?, i, session_date, 'sub') % tutor_pool)::varchar, 4, '0')
                    end as tutor_id,
                    group_size,
                    session_minutes as scheduled_minutes,
                    -- Some arrive late; an absence is logged as 0 minutes.
                    case when u(i, session_date, 'attend') < p_attend
                         then session_minutes - case when u(i, session_date, 'late') < 0.12
                                                     then 5 + (hash(?, i, session_date, 'late') % 15)::int else 0 end
                         else 0 end as attended_minutes
                from scheduled
            )
            -- planted: on one day two tutors are booked with two groups 15 minutes apart (Data quality flags them)
            select *,
                   case when session_date = ? and list_contains(?::varchar[], tutor_id)
                        then case when row_number() over (partition by session_date, tutor_id order by student_id) % 2 = 0
                                  then '15:15' else '15:00' end
                   end as start_time
            from tutored
            """,
            [number, after_break, self.session_days(week), self.planted_days(week), PLANTED_VENDOR, self.seed, self.seed,
             self.double_booked_day(), list(DOUBLE_BOOKED)],
        )

    def write_sessions(self, vendor: str, week: date) -> Path:
        self.ensure_week(week)
        # Only the log that double-books its tutors gives start times; the others leave the column out.
        timed = ", start_time" if vendor == PLANTED_VENDOR and week <= self.double_booked_day() < week + timedelta(days=7) else ""
        return self.copy(
            f"""select student_id, session_date, tutor_id, group_size, scheduled_minutes, attended_minutes{timed}
               from week_sessions where vendor_id = ? order by session_date, student_id""",
            f"sessions_{vendor}_{week}.csv",
            [vendor],
        )

    def ensure_week(self, week: date) -> None:
        if self.sessions_week != week:
            self.make_week_sessions(week)
            self.sessions_week = week

    def write_survey(self, vendor: str, week: date) -> Path:
        """Exit tickets after the last attended session of the week; satisfaction in testing weeks."""
        self.ensure_week(week)
        window = next((w for w, start in self.cal.windows.items() if start == week), None)
        return self.copy(
            """
            with attended as (
                select w.student_id, max(w.session_date) as response_date, any_value(s.i) as i,
                       any_value(s.engagement) as engagement, count(*) as sessions
                from week_sessions as w inner join demo_students as s using (student_id)
                where w.vendor_id = ? and w.attended_minutes > 0
                group by w.student_id
            ),
            items as (
                select a.*, item from attended as a,
                    (select unnest(['sel_identity', 'sel_efficacy'] || case when ? then ['satisfaction'] else [] end) as item)
                where u(a.i, a.response_date, 'answers') < 0.8
            )
            select student_id, response_date, item,
                   least(5, greatest(1, round(3.5 + 0.45 * engagement + 0.15 * sessions
                       + 0.6 * z(i, response_date, item)
                       + case item when 'satisfaction' then 0.3 else 0 end)))::int as score
            from items order by student_id, item
            """,
            f"survey_{vendor}_{week}.csv",
            [vendor, window is not None],
        )

    def write_school_attendance(self, week: date) -> Path:
        days = [week + timedelta(days=d) for d in range(5) if not school_closed(self.cal, week + timedelta(days=d))]
        after_break = self.cal.winter_break[1] < week <= self.cal.winter_break[1] + timedelta(days=14)
        return self.copy(
            """
            with probabilities as (
                select student_id, i,
                       least(0.995, greatest(0.3, 0.94 + 0.02 * engagement
                           - case when chronically_absent then 0.17 else 0 end
                           - case when persistently_absent then 0.05 else 0 end
                           -- planted: attendance dips in the two weeks after winter break
                           - case when ? then 0.06 else 0 end)) as p_present
                from demo_students
            )
            select student_id, ?::date as week_start, len(?::date[]) as days_enrolled,
                   list_count(list_filter(?::date[], lambda d: u(i, d, 'present') < p_present)) as days_present
            from probabilities order by student_id
            """,
            f"school_attendance_{week}.csv",
            [after_break, week, days, days],
        )

    def write_assessment(self, window: str, start: date) -> Path:
        """Scaled score, SGP and proficiency; growth reflects attendance, engagement and the planted effects."""
        test_days = [start + timedelta(days=d) for d in range(12) if (start + timedelta(days=d)).weekday() < 5]
        order = list(self.cal.windows).index(window)
        return self.copy(
            """
            with tested as (
                select s.*, (?::date[])[1 + (hash(?, s.i, ?, 'day') % len(?::date[]))::int] as test_date
                from demo_students as s
                where s.enrolled_on <= ?::date and u(s.i, ?, 'tested') < 0.95
            ),
            growth as (
                select *,
                    z(i, ?, 'growth')
                    -- tutoring helps once it has run a window; students without it grow as before
                    + case when ? > 0 and tutored then 0.10 + (attend_base - 0.85) + 0.1 * engagement else 0 end
                    -- planted: economically disadvantaged students grow less, except at V2
                    - case when econ_disadvantaged and vendor_id is distinct from 'V2' then 0.2 else 0 end
                    -- planted: V1's January program change
                    + case when vendor_id = 'V1' then case ? when 1 then 0.15 when 2 then 0.45 else 0 end else 0 end
                    as growth_z
                from tested
            )
            select student_id, ? as window, test_date,
                   round(400 + 40 * grade + 35 * (ability + 0.15 * ? + 0.1 * growth_z) + 8 * z(i, ?, 'score'), 0) as scaled_score,
                   case when u(i, ?, 'prior') < 0.04 then null
                        else least(99, greatest(1, round(100 * normal_cdf(growth_z))))::int end as sgp,
                   ((ability + 0.15 * ? + 0.1 * growth_z + 0.25 * z(i, ?, 'score')) >= 0.45)::int as proficient
            from growth order by student_id
            """,
            f"assessment_{window}.csv",
            [test_days, self.seed, window, test_days, start, window, window, order, order, window, order,
             window, window, order, window],
        )

    # --- a rejected file and a corrected re-submission ---------------------------------

    def write_corrections(self) -> list[Submission]:
        rejected_week = self.rejected_week()
        self.ensure_week(rejected_week)
        good = self.write_sessions("V2", rejected_week)
        bad = self.path(f"sessions_V2_{rejected_week}_first_try.csv")
        lines = good.read_text().splitlines()
        # The first try has the mistakes real exports make: a US date with a typo, minutes
        # typed into the wrong column and a row pasted twice.
        header, rows = lines[0], lines[1:]
        broken = rows[0].split(",")
        broken[1] = "13/40/2025"
        rows[0] = ",".join(broken)
        swapped = rows[1].split(",")
        swapped[4], swapped[5] = swapped[5], "90"
        rows[1] = ",".join(swapped)
        rows.insert(3, rows[2])
        bad.write_text("\n".join([header, *rows]) + "\n")
        due = rejected_week + timedelta(days=9)

        corrected_week = self.corrected_week()
        self.ensure_week(corrected_week)
        self.write_sessions("V5", corrected_week)  # the file the main load took
        self.con.execute(
            "update week_sessions set attended_minutes = 0 where vendor_id = 'V5' and hash(student_id, session_date) % 40 = 0"
        )
        second = self.copy(
            """select student_id, session_date, tutor_id, group_size, scheduled_minutes, attended_minutes
               from week_sessions where vendor_id = 'V5' order by session_date, student_id""",
            f"sessions_V5_{corrected_week}_corrected.csv",
        )
        return [
            Submission(bad, "sessions", "V2", datetime.combine(due - timedelta(days=1), time(16))),
            Submission(good, "sessions", "V2", datetime.combine(due, time(11))),
            Submission(second, "sessions", "V5", datetime.combine(corrected_week + timedelta(days=15), time(9))),
        ]



def next_week_of_sessions(warehouse, vendor: str, folder: Path) -> Path:
    """The sessions file `vendor` would send next: its last week's sessions again, a week on.
    For benchmarks and tests of an upload after the demo was built."""
    with warehouse.cursor() as cur:
        rows = cur.execute(
            """select student_key, session_date + 7, tutor_id, group_size, scheduled_minutes, attended_minutes
            from sessions where vendor_id = ?
            and session_date >= (select max(session_date) - 6 from sessions where vendor_id = ?)""",
            [vendor, vendor],
        ).fetchall()
    path = folder / f"sessions_{vendor}_next_week.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", "session_date", "tutor_id", "group_size", "scheduled_minutes", "attended_minutes"])
        writer.writerows(rows)
    return path
