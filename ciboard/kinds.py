"""The kinds of file a district and its vendors send: what each holds, and the problems a file
of a kind can have, found in one pass over its staged rows against the warehouse.

A problem also says what the file's vendor may be told of it: nothing about other vendors'
students, batches or files (`as_vendor_sees`).
"""

from dataclasses import dataclass, field
from datetime import date

import duckdb

from ciboard.groups import BASELINE_BANDS, GROUP_FIELDS, MAPPED_FIELDS, mapped_sql, spellings
from ciboard.profiles import ImportProfile, Score, StudentFile, mapping_sql, shipped, target_columns, term_sql

# --- what each kind of file holds ---------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # varchar | integer | double | date | boolean | time
    required: bool = True
    limit: float | None = None  # a number's magnitude must stay below this (the warehouse column's range)


@dataclass(frozen=True)
class Check:
    """A rule on typed columns: `ok` is SQL over the staged row that is true when the row is fine.
    `for_vendor` is what the file's vendor is told instead, where `reason` would tell it about
    other vendors."""

    column: str
    ok: str
    reason: str
    for_vendor: str | None = None


@dataclass(frozen=True)
class Kind:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    checks: tuple[Check, ...] = ()
    # Joins (to `staged`) of what the checks look up in the warehouse. Lookups are joins, never
    # subqueries that refer to the row: DuckDB would hold a whole large file in memory for those.
    lookups: str = ""
    period_column: str | None = None  # the dates that say which period a file covers
    data_dates: tuple[str, ...] = ()  # dates that must lie in a school year and not in the future
    year_dates: tuple[str, ...] = ()  # dates that must lie in a school year
    # SQL that rebuilds the typed table `{typed}` with columns the checks and the load need
    # (a term's school year and window, a group's name as the dashboard spells it).
    enrich: str = ""


NOT_YOURS = "is not on your roster"
MAX_PROBLEMS = 1_000  # listed per file; a file with more says how many more
WHOLE_NUMBER_LIMIT = 2_147_483_647  # the warehouse keeps whole numbers as 32-bit integers

WINDOW_NAMES = "('fall', 'winter', 'spring')"

# What every roster is checked for, whoever decides its students' groups.
ROSTER_CHECKS = (
    # A vendor is not told which other vendor ids exist.
    Check(
        "vendor_id",
        "vendor_id in (select vendor_id from known_vendors)",
        "unknown vendor_id",
        for_vendor="is not the submitting vendor",
    ),
    Check("vendor_id", "submitting_vendor is null or vendor_id = submitting_vendor", "is not the submitting vendor"),
    Check(
        "student_id",
        "rostered_vendor is null or rostered_vendor = vendor_id",
        "is already on another vendor's roster",
        for_vendor=NOT_YOURS,
    ),
    Check("exited_on", "exited_on >= enrolled_on", "is before enrolled_on"),
)
ROSTERED = (
    "left join (select student_key, vendor_id as rostered_vendor from students) as rostered"
    " on rostered.student_key = staged.student_id"
)

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "schools",
            (Column("school_id", "varchar"), Column("name", "varchar")),
            key=("school_id",),
        ),
        Kind(
            "vendors",
            (Column("vendor_id", "varchar"), Column("name", "varchar")),
            key=("vendor_id",),
        ),
        Kind(
            "contracts",
            (
                Column("vendor_id", "varchar"),
                Column("payment_metric", "varchar"),
                Column("threshold", "double"),
                Column("base_per_student", "double", limit=1e10),
                Column("outcome_per_student", "double", limit=1e10),
                Column("cap", "double", required=False, limit=1e12),
                Column("starts_on", "date"),
                Column("ends_on", "date"),
                # The rate card's terms (see sql/migrations/007_rate_card.sql for what their absence means).
                Column("served_by", "varchar", required=False),
                Column("served_min", "double", required=False, limit=1e7),
                Column("success", "varchar", required=False),
                Column("outcome_window", "varchar", required=False),
                Column("from_window", "varchar", required=False),
                Column("enrolled_by", "date", required=False),
                Column("min_dosage_share", "double", required=False),
                Column("student_cap", "double", required=False, limit=1e10),
                Column("base_schedule", "varchar", required=False),
                # Plausibility: attended sessions a student may have in a day (sql/migrations/014); none: the setting.
                Column("max_sessions_per_day", "integer", required=False, limit=100),
                # A multi-year contract's terms per school year (sql/migrations/008_contract_years.sql).
                Column("school_year", "varchar", required=False),
            ),
            key=("vendor_id", "payment_metric", "starts_on", "school_year"),
            checks=(
                Check("vendor_id", "vendor_id in (select vendor_id from known_vendors)", "unknown vendor_id"),
                Check(
                    "payment_metric",
                    "payment_metric in (select metric_id from metrics)",
                    "unknown metric id (see the data map)",
                ),
                Check("base_per_student", "base_per_student >= 0", "must not be negative"),
                Check("outcome_per_student", "outcome_per_student >= 0", "must not be negative"),
                Check("cap", "cap >= 0", "must not be negative"),
                Check("ends_on", "ends_on >= starts_on", "ends before starts_on"),
                Check("served_by", "served_by in ('sessions', 'minutes', 'dosage_weeks')",
                      "must be sessions, minutes or dosage_weeks (weeks meeting the dosage standard)"),
                Check("served_min", "served_min > 0", "must be more than 0"),
                Check("success", "success in ('threshold', 'growth', 'percentile')", "must be threshold, growth or percentile"),
                Check("success", "success <> 'growth' or (from_window is not null and outcome_window is not null)",
                      "growth is measured between two windows: give from_window and outcome_window"),
                Check("success", "success <> 'percentile' or (payment_metric = 'sgp' and outcome_window is not null)",
                      "percentile is a growth percentile (payment_metric sgp) in a named window: give outcome_window"),
                Check("outcome_window", "outcome_window in (select window_name from calendar_weeks)",
                      "is not an assessment window of the calendar (fall, winter, spring)"),
                Check("outcome_window", "payment_metric in (select metric_id from metrics where frequency = 'window')",
                      "names an assessment window, but payment_metric is not measured in windows"),
                Check("from_window", "from_window in (select window_name from calendar_weeks)",
                      "is not an assessment window of the calendar (fall, winter, spring)"),
                Check("from_window", "list_position(['fall', 'winter', 'spring'], from_window)"
                      " < list_position(['fall', 'winter', 'spring'], outcome_window)",
                      "must come before outcome_window"),
                Check("enrolled_by", "enrolled_by <= ends_on", "is after ends_on"),
                Check("min_dosage_share", "min_dosage_share between 0 and 1", "must be a share from 0 to 1"),
                Check("student_cap", "student_cap >= 0", "must not be negative"),
                Check("base_schedule", "base_schedule in ('monthly', 'quarterly')", "must be monthly or quarterly"),
                Check("max_sessions_per_day", "max_sessions_per_day >= 1", "must be at least 1"),
                Check("school_year", "year_name is not null",
                      "is not a school year of the warehouse (written 2025-26; add one with ciboard init --school-year)"),
                Check("school_year", "year_starts_on <= ends_on and year_ends_on >= starts_on",
                      "is a school year the contract's dates (starts_on to ends_on) do not reach"),
            ),
            # Renamed: the staged row has a school_year, starts_on and ends_on of its own.
            lookups="left join (select school_year as year_name, starts_on as year_starts_on, ends_on as year_ends_on"
            " from school_years) as contract_year on contract_year.year_name = staged.school_year",
        ),
        Kind(
            "annotations",
            (
                Column("starts_on", "date"),
                Column("ends_on", "date", required=False),
                Column("kind", "varchar"),
                Column("title", "varchar"),
                Column("description", "varchar", required=False),
                Column("vendor_id", "varchar", required=False),
                Column("school_id", "varchar", required=False),
                Column("metric_id", "varchar", required=False),
            ),
            key=("starts_on", "kind", "title", "vendor_id", "school_id", "metric_id"),
            checks=(
                Check(
                    "kind",
                    "kind in ('break', 'closure', 'program change', 'external', 'data')",
                    "must be one of break, closure, program change, external, data",
                ),
                Check("ends_on", "ends_on >= starts_on", "ends before starts_on"),
                Check("vendor_id", "vendor_id in (select vendor_id from known_vendors)", "unknown vendor_id"),
                Check("school_id", "school_id in (select school_id from known_schools)", "unknown school_id"),
                Check("metric_id", "metric_id in (select metric_id from metrics)", "unknown metric id"),
            ),
            year_dates=("starts_on", "ends_on"),
        ),
        Kind(
            "roster",
            (
                Column("student_id", "varchar"),
                Column("vendor_id", "varchar"),
                Column("school_id", "varchar"),
                Column("grade", "integer"),
                Column("race_ethnicity", "varchar"),
                Column("gender", "varchar"),
                Column("econ_disadvantaged", "boolean"),
                Column("english_learner", "boolean"),
                Column("special_education", "boolean"),
                Column("baseline_band", "varchar"),
                Column("enrolled_on", "date"),
                Column("exited_on", "date", required=False),
            ),
            key=("student_id",),
            checks=(
                *ROSTER_CHECKS,
                Check("school_id", "school_id in (select school_id from known_schools)", "unknown school_id"),
                Check("grade", "grade between 0 and 12", "must be a grade from 0 (K) to 12"),
                Check(
                    "baseline_band",
                    "baseline_band in " + str(BASELINE_BANDS),
                    "must be one of " + ", ".join(BASELINE_BANDS),
                ),
            ),
            lookups=ROSTERED,
            period_column="enrolled_on",
            data_dates=("enrolled_on",),
        ),
        Kind(
            "sessions",
            (
                Column("student_id", "varchar"),
                Column("session_date", "date"),
                Column("tutor_id", "varchar"),
                Column("group_size", "integer"),
                Column("scheduled_minutes", "integer"),
                Column("attended_minutes", "integer"),
                # When the session started, so a tutor booked in two places at once is found.
                Column("start_time", "time", required=False),
            ),
            key=("student_id", "session_date", "tutor_id"),
            checks=(
                Check("group_size", "group_size between 1 and 50", "must be between 1 and 50"),
                Check("scheduled_minutes", "scheduled_minutes between 1 and 480", "must be between 1 and 480"),
                Check(
                    "attended_minutes",
                    "attended_minutes between 0 and scheduled_minutes",
                    "must be between 0 (absent) and scheduled_minutes",
                ),
            ),
            period_column="session_date",
            data_dates=("session_date",),
        ),
        Kind(
            "school_attendance",
            (
                Column("student_id", "varchar"),
                Column("week_start", "date"),
                Column("days_enrolled", "integer"),
                Column("days_present", "integer"),
            ),
            key=("student_id", "week_start"),
            checks=(
                Check("week_start", "isodow(week_start) = 1", "must be a Monday (weeks start on Monday)"),
                Check("days_enrolled", "days_enrolled between 0 and 7", "must be between 0 and 7"),
                Check(
                    "days_present", "days_present between 0 and days_enrolled", "must be between 0 and days_enrolled"
                ),
            ),
            period_column="week_start",
            data_dates=("week_start",),
        ),
        Kind(
            "assessment",
            (
                Column("student_id", "varchar"),
                Column("window", "varchar"),
                Column("test_date", "date"),
                Column("scaled_score", "double"),
                Column("sgp", "integer", required=False),
                Column("proficient", "boolean"),
            ),
            key=("student_id", "window", "school_year"),
            checks=(
                Check("window", "\"window\" in ('fall', 'winter', 'spring')", "must be fall, winter or spring"),
                Check(
                    "test_date",
                    "\"window\" is null or \"window\" = calendar_window",
                    "is not in the stated window of the school calendar",
                ),
                Check("scaled_score", "scaled_score >= 0", "must not be negative"),
                Check("sgp", "sgp between 1 and 99", "must be a percentile from 1 to 99"),
            ),
            period_column="test_date",
            data_dates=("test_date",),
        ),
        Kind(
            "survey",
            (
                Column("student_id", "varchar"),
                Column("response_date", "date"),
                Column("item", "varchar"),
                Column("score", "integer"),
            ),
            key=("student_id", "response_date", "item"),
            checks=(
                # Any survey metric of the data map: an administrator adds an item without code.
                Check("item", "item in (select metric_id from metrics where submitted_as = 'survey')",
                      "is not a survey metric of the data map (see ciboard metrics list)"),
                Check("score", "score between 1 and 5", "must be from 1 to 5"),
            ),
            period_column="response_date",
            data_dates=("response_date",),
        ),
    )
}


TERM_REASON = 'must be a term such as "Fall 2013-2014": Fall, Winter or Spring and two consecutive years'
YEAR_REASON = "names a school year the warehouse does not have (add it with 'ciboard init --school-year')"


def _score_reason(score: Score) -> str | None:
    if score.min is not None and score.max is not None:
        return f"must be from {score.min:g} to {score.max:g}"
    if score.min is not None:
        return f"must be at least {score.min:g}"
    if score.max is not None:
        return f"must be at most {score.max:g}"
    return None


def profile_kinds(profile: ImportProfile) -> list[Kind]:
    """An export's files as kinds whose columns are the export's own, so every problem names the
    column as the file has it: the results file, and the students file where the profile has one."""
    kinds = [] if profile.students is None else [_students_kind(profile, profile.students)]
    return kinds + [_results_kind(profile)]


def _students_kind(profile: ImportProfile, f: StudentFile) -> Kind:
    s = f.columns
    window, year = term_sql(f't."{s["term"]}"')
    return Kind(
        f.kind,
        tuple(Column(column, "varchar") for column in s.values()),
        key=(s["student_id"], s["term"]),
        checks=(
            Check(s["term"], "term_year is not null", TERM_REASON),
            Check(s["term"], "term_year is null or term_year in (select school_year from school_years)", YEAR_REASON),
            Check(s["race_ethnicity"], "group_race is not null",
                  "is not an ethnic group this import knows (" + ", ".join(f.race_ethnicity) + ")"),
            Check(s["gender"], "group_gender is not null",
                  "is not a gender this import knows (" + ", ".join(f.gender) + ")"),
            Check(s["grade"], "grade_number is not null",
                  "must be a grade as this import spells one (" + ", ".join(f.grades) + ")"),
        ),
        enrich=f"""create or replace temp table {{typed}} as
            select t.*, {year} as term_year, {window} as term_window,
                {mapping_sql(f't."{s["race_ethnicity"]}"', f.race_ethnicity)} as group_race,
                {mapping_sql(f't."{s["gender"]}"', f.gender)} as group_gender,
                {mapping_sql(f't."{s["grade"]}"', f.grades)} as grade_number
            from {{typed}} as t""",
    )


def _results_kind(profile: ImportProfile) -> Kind:
    r = profile.results
    column = {"student": r.student_id, "date": r.test_date}
    columns = [Column(r.student_id, "varchar"), Column(r.test_date, "date")]
    columns += [Column(c, "varchar") for c in (r.term, r.window, r.subject, r.test_id) if c]
    columns += [Column(r.preferred, "boolean")] if r.preferred else []
    columns += [Column(s.column, "integer" if s.whole else "double") for s in r.scores.values()]
    columns += [Column(c, "double", required=False, limit=1e4) for c in target_columns(profile)]
    t = {name: f't."{c}"' for name, c in column.items()}
    checks = []
    if r.term:
        window, year = term_sql(f't."{r.term}"')
        checks += [
            Check(r.term, "term_year is not null", TERM_REASON),
            Check(r.term, "term_year is null or term_year in (select school_year from school_years)", YEAR_REASON),
            # The term, not the test date, says the window (a winter term may start in a week the
            # calendar counts as fall); the date must still lie in the term's school year.
            Check(r.test_date, "term_year is null or calendar_year is null or calendar_year = term_year",
                  "is not in the term's school year"),
        ]
        term_key = f't."{r.term}"'
    elif r.window:
        window = f"case when lower(trim(t.\"{r.window}\")) in {WINDOW_NAMES} then lower(trim(t.\"{r.window}\")) end"
        year = "w.school_year"
        checks.append(Check(r.window, "term_window is not null", "must be fall, winter or spring"))
        term_key = f"w.school_year || ' ' || {window}"
    else:
        window, year = "w.window_name", "w.school_year"
        term_key = "w.school_year || ' ' || w.window_name"
    for score in r.scores.values():
        reason = _score_reason(score)
        if reason:
            bounds = [f'"{score.column}" >= {score.min}'] * (score.min is not None)
            bounds += [f'"{score.column}" <= {score.max}'] * (score.max is not None)
            checks.append(Check(score.column, " and ".join(bounds), reason))
    known = (f"send the {profile.students.label} file of the term with it" if profile.students
             else "load the district's student records or the vendor's roster first")
    checks.append(Check(r.student_id, "profile_student in (select student_key from students)", f"is not a known student: {known}"))
    if r.preferred:
        checks.append(Check(r.preferred, "preferred_rows <= 1",
                            "is TRUE on more than one test of this student, term" + (" and subject" if r.subject else "")))
    subject = f"coalesce(trim(t.\"{r.subject}\"), '')" if r.subject else "''"
    # find_problems names the student of a row already loaded as student_id
    student_id = "" if r.student_id.lower() == "student_id" else f' {t["student"]} as student_id,'
    preferred = f't."{r.preferred}"' if r.preferred else "true"
    return Kind(
        r.kind,
        tuple(columns),
        key=tuple(c for c in (r.student_id, r.term or "term_key", r.subject, r.test_id) if c),
        checks=tuple(checks),
        period_column=r.test_date,
        data_dates=(r.test_date,),
        enrich=f"""create or replace temp table {{typed}} as
            select t.*, {year} as term_year, {window} as term_window, w.school_year as calendar_year,
                '{r.kind}' as result_kind, {t["student"]} as profile_student,{student_id}
                {term_key} as term_key,
                {subject} as subject_name, coalesce({f't."{r.test_id}"' if r.test_id else "null"}, '') as test_key,
                {preferred} as is_preferred,
                count(*) filter (where {preferred}) over (partition by {t["student"]}, {term_key}, {subject}) as preferred_rows
            from {{typed}} as t
            left join calendar_weeks as w on w.week_start = date_trunc('week', {t["date"]})::date""",
    )


SPELLING_HELP = (
    "is not a spelling of {what} that the table of spellings knows (README: District student records);"
    " add the district's own with the setting CIBOARD_STUDENT_GROUP_SPELLINGS"
)
GROUP_NAMES = {
    "grade": "a grade (K, 0 to 12)", "race_ethnicity": "a race/ethnicity", "gender": "a gender",
    "econ_disadvantaged": "yes or no (economically disadvantaged)", "english_learner": "yes or no (English learner)",
    "special_education": "yes or no (special education)",
    "baseline_band": "a baseline band (" + ", ".join(BASELINE_BANDS) + ")",
}


def _mapped(spellings: dict[str, dict[str, object]]) -> str:
    """Rebuilds `{typed}` with each group as the dashboard names it (`group_<field>`), null where
    the table has no such spelling."""
    groups = ", ".join(f'{mapped_sql(f"t.{field}", spellings[field])} as group_{field}' for field in MAPPED_FIELDS)
    return f"create or replace temp table {{typed}} as select t.*, {groups} from {{typed}} as t"


def students_kind(spellings: dict[str, dict[str, object]]) -> Kind:
    """The district's student records: one version of a student's groups per as_of date."""
    return Kind(
        "students",
        (
            Column("student_id", "varchar"),
            Column("school_id", "varchar"),
            *(Column(field, "varchar", required=field != "baseline_band") for field in MAPPED_FIELDS),
            Column("as_of", "date"),
        ),
        key=("student_id", "as_of"),
        checks=(
            Check("school_id", "school_id in (select school_id from known_schools)", "unknown school_id"),
            *(Check(field, f"group_{field} is not null", SPELLING_HELP.format(what=GROUP_NAMES[field]))
              for field in MAPPED_FIELDS),
        ),
        period_column="as_of",
        data_dates=("as_of",),
        enrich=_mapped(spellings),
    )


def assignment_roster_kind(spellings: dict[str, dict[str, object]]) -> Kind:
    """A vendor's roster once the district has sent its student records: which vendor serves a
    student, from when to when. Group columns it still has are read as text, only to be
    compared with the district's (ciboard.groups maps them); they decide nothing."""
    return Kind(
        "roster",
        (
            Column("student_id", "varchar"),
            Column("vendor_id", "varchar"),
            Column("enrolled_on", "date"),
            Column("exited_on", "date", required=False),
            *(Column(field, "varchar", required=False) for field in GROUP_FIELDS),
        ),
        key=("student_id",),
        checks=(
            *ROSTER_CHECKS,
            Check(
                "student_id",
                "student_id in (select student_key from district_students)",
                "is not a student in the district's student records",
            ),
        ),
        lookups=ROSTERED,
        period_column="enrolled_on",
        data_dates=("enrolled_on",),
        enrich=_mapped(spellings),
    )


KINDS["students"] = students_kind(spellings())

VENDOR_KINDS = ("roster", "sessions", "survey")
STUDENT_KINDS = ("sessions", "school_attendance", "assessment", "survey")

# Where each kind's rows land, the key that finds a row already loaded, and the date that
# says which week a row belongs to.
RAW_TABLES = {
    "sessions": ("sessions", "student_key, session_date, tutor_id", "session_date"),
    "school_attendance": ("school_attendance", "student_key, week_start", "week_start"),
    "assessment": ("assessments", "student_key, window_name, school_year", "test_date"),
    "survey": ("survey_responses", "student_key, response_date, item", "response_date"),
    "students": ("district_students", "student_key, as_of", "as_of"),
}
STAGED_KEYS = {
    "sessions": "student_id, session_date, tutor_id",
    "school_attendance": "student_id, week_start",
    "assessment": 'student_id, "window", school_year',
    "survey": "student_id, response_date, item",
    "students": "student_id, as_of",
}


# The import profiles whose kinds are known, by the kind of each of their files.
PROFILE_OF_KIND: dict[str, ImportProfile] = {}


def register(profile: ImportProfile) -> None:
    """Makes a profile's files kinds that ingest can check and load (a later version of a
    profile replaces the earlier one's)."""
    for kind in profile_kinds(profile):
        KINDS[kind.name] = kind
        PROFILE_OF_KIND[kind.name] = profile
    RAW_TABLES[profile.results.kind] = ("profile_results", "kind, student_key, term_name, subject, test_id", "test_date")
    STAGED_KEYS[profile.results.kind] = "result_kind, profile_student, term_key, subject_name, test_key"


for _profile in shipped().values():
    register(_profile)


# --- what is wrong with a file ------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    file: str
    row: int | None
    column: str | None
    value: str | None
    reason: str
    # What the file's vendor is told instead, where `reason` says something about other
    # vendors; "" for nothing (another problem of the row says what the vendor may know).
    for_vendor: str | None = field(default=None, compare=False, repr=False)
    # On the problem that stands for those not listed (see MAX_PROBLEMS): the file's rows with a problem.
    rows_with_problems: int | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        where = f"{self.file}" + (f", row {self.row}" if self.row is not None else "")
        what = f"{self.column}" + (f" = {self.value!r}" if self.value is not None else "") if self.column else ""
        return f"{where}: {what + ': ' if what else ''}{self.reason}"


def as_vendor_sees(problems: list[Problem]) -> list[Problem]:
    """The problems as the file's vendor may read them: nothing about other vendors' students,
    batches or files, and each thing said once."""
    seen, shown = set(), []
    for problem in problems:
        reason = problem.reason if problem.for_vendor is None else problem.for_vendor
        if reason and (problem.file, problem.row, problem.column, reason) not in seen:
            seen.add((problem.file, problem.row, problem.column, reason))
            shown.append(Problem(problem.file, problem.row, problem.column, problem.value, reason,
                                 rows_with_problems=problem.rows_with_problems))
    return shown


def rows_with_problems(problems: list[Problem]) -> int:
    counted = [p.rows_with_problems for p in problems if p.rows_with_problems is not None]
    return max(counted) if counted else len({p.row for p in problems if p.row is not None})


def more_problems(file_name: str, every: int, rows: int, told: int | None = None) -> Problem:
    """Stands for the problems beyond the first MAX_PROBLEMS of a file. `told`: how many of
    them all the file's vendor may hear of. Its row is the number of rows with a problem."""
    def text(count: int) -> str:
        return f"and {count - MAX_PROBLEMS:,} more problem(s): only the first {MAX_PROBLEMS:,} are listed"

    return Problem(file_name, None, None, None, text(every), None if told is None else text(told), rows_with_problems=rows)


# --- checking a staged file ---------------------------------------------------------------


def _typed(column: Column, source: str) -> str:
    text = f"nullif(trim({source}::varchar), '')"
    number = f"try_cast({text} as double)"
    if column.type == "varchar":
        return text
    if column.type == "double":
        within = f" and abs({number}) < {column.limit}" if column.limit else ""
        return f"case when isfinite({number}){within} then {number} end"
    if column.type == "integer":
        # A whole number only: a cast would silently round 3.5 to 4.
        return (
            f"case when isfinite({number}) and {number} = floor({number}) and abs({number}) <= {WHOLE_NUMBER_LIMIT}"
            f" then {number}::integer end"
        )
    if column.type == "date":
        return (
            f"coalesce(try_cast({text} as date), try_strptime({text}, '%m/%d/%Y')::date,"
            f" try_cast(try_cast({text} as timestamp) as date))"
        )
    if column.type == "time":
        return f"try_cast({text} as time)"
    if column.type == "boolean":
        return (
            f"case when lower({text}) in ('1', 'true', 't', 'yes', 'y') then true"
            f" when lower({text}) in ('0', 'false', 'f', 'no', 'n') then false end"
        )
    raise ValueError(column.type)


def _out_of_range(column: Column) -> tuple[str, str] | None:
    """When a number is beyond what the column holds: (SQL true on such a raw value, reason)."""
    number = f"try_cast(nullif(trim(\"{column.name}__raw\"), '') as double)"
    if column.type == "integer":
        return f"isinf({number}) or abs({number}) > {WHOLE_NUMBER_LIMIT}", f"is out of range for a whole number (up to {WHOLE_NUMBER_LIMIT:,})"
    if column.type == "double" and column.limit:
        return f"isinf({number}) or abs({number}) >= {column.limit}", f"is out of range (it must be below {column.limit:,.0f})"
    if column.type == "double":
        return f"isinf({number})", "is out of range"
    return None


TYPE_HELP = {
    "varchar": "text",
    "double": "a number",
    "integer": "a whole number",
    "date": "a date (YYYY-MM-DD or MM/DD/YYYY)",
    "boolean": "yes/no (1/0, true/false, Y/N)",
    "time": "a time of day (HH:MM, 24-hour)",
}


def type_rows(
    con: duckdb.DuckDBPyConnection, kind: Kind, stage_table: str, headers: list[str], file_name: str
) -> tuple[str | None, list[Problem]]:
    """Builds `<stage>_typed`: each column of the kind as text (`<name>__raw`) and typed (`<name>`)."""
    wanted = {c.name.strip().lower().replace(" ", "_"): c.name for c in kind.columns}
    position: dict[str, int] = {}
    problems: list[Problem] = []
    for i, header in enumerate(headers):
        name = wanted.get(header.strip().lower().replace(" ", "_"))
        if name is not None:
            if name in position:
                problems.append(Problem(file_name, 1, header, None, f"column {name} appears twice"))
            position.setdefault(name, i)
    missing = [c.name for c in kind.columns if c.required and c.name not in position]
    if missing:
        problems.append(
            Problem(
                file_name,
                1,
                None,
                None,
                f"missing required column(s) {', '.join(missing)}; a {kind.name} file has columns "
                + ", ".join(c.name + ("" if c.required else " (optional)") for c in kind.columns)
                + "; this file has "
                + (", ".join(h for h in headers if h) or "none"),
            )
        )
    if problems:
        return None, problems

    typed = f"{stage_table}_typed"
    selects = ["_row"]
    for c in kind.columns:
        source = f"c{position[c.name]}" if c.name in position else "null"
        selects.append(f'{source}::varchar as "{c.name}__raw"')
        selects.append(f'{_typed(c, source)} as "{c.name}"')
    con.execute(f"create or replace temp table {typed} as select {', '.join(selects)} from {stage_table}")
    if kind.name == "assessment":
        # The school year is part of the key; the window the calendar has is checked against the stated one.
        con.execute(
            f"""create or replace temp table {typed} as
            select t.*, w.school_year, w.window_name as calendar_window from {typed} as t
            left join calendar_weeks as w on w.week_start = date_trunc('week', t.test_date)::date"""
        )
    if kind.enrich:
        con.execute(kind.enrich.replace("{typed}", typed))
    if con.execute(f"select count(*) from {typed}").fetchall()[0][0] == 0:
        problems.append(Problem(file_name, None, None, None, "the file has no data rows"))
    return typed, problems


def find_problems(
    con: duckdb.DuckDBPyConnection, kind: Kind, typed: str, file_name: str, vendor_id: str | None, today: date
) -> list[Problem]:
    """Every problem of a typed file against the warehouse as this transaction leaves it.

    The temp table `replacing` names the batches this file replaces: their rows do not count
    as already loaded. Each problem also says what `vendor_id` may be told of it.
    """
    # (column, condition true on a bad row, reason, what the vendor is told instead)
    checks: list[tuple[str, str, str, str | None]] = []
    for c in kind.columns:
        given = f"trim(coalesce(\"{c.name}__raw\", '')) <> ''"
        if c.required:
            checks.append((c.name, f"not {given}", "is required", None))
        too_big = _out_of_range(c)
        if too_big:
            checks.append((c.name, f'"{c.name}" is null and {given} and coalesce({too_big[0]}, false)', too_big[1], None))
            given += f" and not coalesce({too_big[0]}, false)"
        checks.append((c.name, f'"{c.name}" is null and {given}', f"is not {TYPE_HELP[c.type]}", None))
    for check in kind.checks:
        checks.append(
            (check.column, f'"{check.column}" is not null and not coalesce({check.ok}, false)', check.reason, check.for_vendor)
        )
    for column in kind.data_dates:
        checks.append((column, f'"{column}" > today', "is in the future", None))
    for column in kind.data_dates + kind.year_dates:
        checks.append(
            (
                column,
                f'"{column}" is not null and len(list_filter(years, lambda y: "{column}" between y.starts_on and y.ends_on)) = 0',
                "is outside every school year of the warehouse (add one with 'ciboard init --school-year')",
                None,
            )
        )
    if kind.name in STUDENT_KINDS:
        # A vendor hears the same of an unknown student and of another vendor's.
        checks.append(
            ("student_id", "student_id not in (select student_key from students)", "is not on any roster", NOT_YOURS)
        )
        if kind.name in VENDOR_KINDS:
            # A district student no vendor has rostered (from an assessment export) is nobody's yet.
            checks.append(
                (
                    "student_id",
                    "student_id in (select student_key from students where vendor_id is null)",
                    "is a district student on no vendor's roster",
                    NOT_YOURS,
                )
            )
        if vendor_id is not None:
            checks.append(
                (
                    "student_id",
                    "student_id in (select student_key from students where vendor_id <> $vendor)",
                    "is on another vendor's roster",
                    NOT_YOURS,
                )
            )
    con.execute(
        "create or replace temp table known_vendors as select vendor_id from vendors"
        + (f" union select vendor_id from {typed}" if kind.name == "vendors" else "")
    )
    con.execute(
        "create or replace temp table known_schools as select school_id from schools"
        + (f" union select school_id from {typed}" if kind.name == "schools" else "")
    )

    def text(value: str | None) -> str:
        return "null::varchar" if value is None else "'" + value.replace("'", "''") + "'"

    context = (
        "(select $vendor::varchar as submitting_vendor, $today::date as today,"
        " (select list({'starts_on': starts_on, 'ends_on': ends_on}) from school_years) as years) as context"
    )
    # Every row check in one pass over the file: each row collects the problems it has. Each
    # condition is written once, as a flag: planning the query is most of a small file's check,
    # and written twice it took a third to three quarters longer (contracts 70 ms against 40).
    flags = ",\n".join(f"({condition}) is true as _check_{i}" for i, (_, condition, _, _) in enumerate(checks))
    found = ",\n".join(
        f"case when _check_{i} then {{'column_name': {text(column)}, 'value': \"{column}__raw\","
        f" 'reason': {text(reason)}, 'for_vendor': {text(for_vendor)}}} end"
        for i, (column, _, reason, for_vendor) in enumerate(checks)
    )
    # Only a row with some problem builds its list: on a clean file of 1M rows the lists took
    # a third of the pass (bench/README.md).
    any_problem = " or ".join(f"_check_{i}" for i in range(len(checks))) or "false"
    queries = [
        f"""select _row, problem.column_name, problem.value, problem.reason, problem.for_vendor
        from (
            select _row, unnest(list_filter([{found}], lambda p: p is not null)) as problem
            from (select staged.*, {flags} from {typed} as staged {kind.lookups}, {context})
            where {any_problem}
        )"""
    ]
    key_list = ", ".join(f'"{k}"' for k in kind.key)
    key_text = " || ', ' || ".join(f"coalesce(\"{k}\"::varchar, '')" for k in kind.key)
    # A key the file does not hold (an assessment's school year, from its term) is always there.
    required_keys = [k for k in kind.key if all(c.name != k or c.required for c in kind.columns)]
    queries.append(
        f"""select _row, '{kind.key[0]}', {key_text}, 'repeats the key ({", ".join(kind.key)}) of row ' || first_row,
            null::varchar
        from (select _row, {key_list}, min(_row) over (partition by {key_list}) as first_row from {typed})
        where _row <> first_row and {' and '.join(f'"{k}" is not null' for k in required_keys)}"""
    )
    if kind.name in RAW_TABLES:
        raw_table, raw_key, _ = RAW_TABLES[kind.name]
        staged_key = ", ".join("staged." + k for k in STAGED_KEYS[kind.name].split(", "))
        loaded_key = ", ".join("loaded." + k for k in raw_key.split(", "))
        already = "'was already loaded in batch ' || loaded.batch_id || ' (' || coalesce(log.file_name, '?') || ')'"
        # A vendor hears of its own files only; of another's, nothing if the student is not its
        # own (the row is "not on your roster"), and no batch or file if it is.
        queries.append(
            f"""select staged._row, '{kind.key[0]}', {key_text.replace('coalesce("', 'coalesce(staged."')}, {already},
                case
                    when log.vendor_id is not distinct from submitting_vendor then {already}
                    when staged.student_id in (select student_key from students where vendor_id = $vendor)
                        then 'was already loaded'
                    else ''
                end
            from {typed} as staged
            inner join {raw_table} as loaded on ({loaded_key}) = ({staged_key})
            left join submissions as log on log.batch_id = loaded.batch_id, {context}
            where loaded.batch_id not in (select batch_id from replacing)"""
        )
    found = " union all ".join(queries)
    params = {"today": today, "vendor": vendor_id}
    rows = con.execute(f"select * from ({found}) order by 1, 2 limit {MAX_PROBLEMS + 1}", params).fetchall()
    problems = [Problem(file_name, *row) for row in rows[:MAX_PROBLEMS]]
    if len(rows) > MAX_PROBLEMS:
        every, told, bad_rows = con.execute(
            f"select count(*), count(*) filter (where for_vendor is distinct from ''), count(distinct _row) from ({found})",
            params,
        ).fetchall()[0]
        problems.append(more_problems(file_name, every, bad_rows, told))
    return problems
