"""Import profiles: how an assessment export maps to students, terms and metrics, written as a
TOML file instead of code (docs/profiles.md says how to write one).

A profile names the export's results file (and optionally a file of the students it tested):
which column holds the student id, the term, window or test date, the subject, the scores, and
the metrics to derive from them. `parse` reads and checks a profile strictly: every problem
names the TOML key it is about. The warehouse keeps every version of every profile
(`import_profiles`, with who added it and when); an import uses the latest. The profiles
shipped in ciboard/profile_files/ are recorded in a warehouse the first time it is migrated.

ciboard.kinds turns a profile into the file kinds that check its files (each problem names the
export's own column), ciboard.ingest stores their rows in `profile_results` and derives the
facts, and `metric_rows` writes the data-map entries.
"""

import hashlib
import math
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parent / "profile_files"
NAME = re.compile(r"[a-z][a-z0-9-]{1,39}")
PREFIX = re.compile(r"[a-z][a-z0-9_]{0,19}")
SUFFIX = re.compile(r"[a-z][a-z0-9_]{0,39}")
COLUMN = re.compile(r"[^\"'\x00-\x1f]{1,200}")  # quotes would end the name in SQL
SCORE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
WINDOWS = ("fall", "winter", "spring")
METRIC_KINDS = ("payment outcome", "process outcome", "context")
DERIVES = ("mean", "median", "at_least", "growth")
AGGREGATION = {"mean": "mean", "median": "median", "at_least": "proportion", "growth": "proportion"}
# Kinds of file CI Board has of its own: a profile's kinds may not take their names.
RESERVED_PREFIXES = ("assessment", "sessions", "school", "survey", "roster", "students", "contracts", "vendors",
                     "schools", "annotations")


class ProfileInvalid(ValueError):
    """A profile that cannot be used; `problems` name the TOML key of each."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{source} is not a usable import profile:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class StudentFile:
    """The export's file of the students it tested in a term, and its spellings of their groups
    as the dashboard names them (a value not listed is a row problem, never a guess)."""

    kind: str
    label: str
    recognised_by: str
    columns: dict[str, str]  # term, student_id, school, race_ethnicity, gender, grade
    race_ethnicity: dict[str, str]
    gender: dict[str, str]
    grades: dict[str, int]


@dataclass(frozen=True)
class Score:
    column: str
    whole: bool = False
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class ResultsFile:
    """The file of test results, one row per test. The window a row belongs to comes from a term
    column ("Fall 2013-2014"), or a window column (fall, winter, spring), or else from the
    school calendar's window of the test date."""

    kind: str
    label: str
    recognised_by: str
    student_id: str
    test_date: str
    term: str | None = None
    window: str | None = None
    subject: str | None = None
    test_id: str | None = None
    preferred: str | None = None  # a yes/no column: the test that counts where a student took several
    scores: dict[str, Score] = field(default_factory=dict)


@dataclass(frozen=True)
class DerivedMetric:
    """A metric derived per subject (`<prefix>_<subject>_<suffix>`, or `<prefix>_<suffix>` for a
    file without subjects). `derive`: mean or median of the score `of`; at_least: whether the
    score is at least `threshold`; growth: whether the gain in `of` from the `from_window` test
    to this window's is at least the from-window row's `target_columns[window]` (the first that
    holds a value) or the fixed `target`."""

    suffix: str
    label: str  # {subject} is the subject as the file names it
    kind: str
    unit: str
    derive: str
    of: str
    definition: str
    accuracy: str
    better: str = "higher"
    threshold: float | None = None
    from_window: str | None = None
    target: float | None = None
    target_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def aggregation(self) -> str:
        return AGGREGATION[self.derive]

    @property
    def growth(self) -> bool:
        return self.derive == "growth"


@dataclass(frozen=True)
class ImportProfile:
    name: str
    label: str
    metric_prefix: str
    instrument: str
    source: str
    timing: str
    results: ResultsFile
    metrics: tuple[DerivedMetric, ...]
    students: StudentFile | None = None
    text: str = ""  # the TOML it was read from
    version: int | None = None  # its version in the warehouse, once recorded

    @property
    def kinds(self) -> tuple[str, ...]:
        return (self.students.kind,) * (self.students is not None) + (self.results.kind,)


# --- reading a profile ---------------------------------------------------------------------


class _Reader:
    """Takes values out of the parsed TOML, noting every problem by its key."""

    def __init__(self):
        self.problems: list[str] = []

    def bad(self, key: str, reason: str) -> None:
        self.problems.append(f"{key}: {reason}")

    def table(self, data: dict, key: str, path: str, required: bool = True) -> dict:
        value = data.get(key)
        if value is None:
            if required:
                self.bad(path, "is missing (a table)")
            return {}
        if not isinstance(value, dict):
            self.bad(path, "must be a table")
            return {}
        return value

    def text(self, data: dict, key: str, path: str, required: bool = True, pattern: re.Pattern | None = None) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.bad(path, "is missing")
            return None
        if not isinstance(value, str) or not value.strip():
            self.bad(path, "must be a non-empty string")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.bad(path, f"{value!r} must match {pattern.pattern}")
            return None
        return value.strip()

    def number(self, data: dict, key: str, path: str, required: bool = False) -> float | None:
        value = data.get(key)
        if value is None:
            if required:
                self.bad(path, "is missing")
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.bad(path, "must be a finite number")
            return None
        return float(value)

    def flag(self, data: dict, key: str, path: str) -> bool:
        value = data.get(key, False)
        if not isinstance(value, bool):
            self.bad(path, "must be true or false")
            return False
        return value

    def unknown(self, data: dict, allowed: set[str], path: str) -> None:
        for key in sorted(set(data) - allowed):
            self.bad(f"{path}.{key}" if path else key, "is not a key of an import profile (misspelt?)")


def parse(text: str, source: str = "the profile") -> ImportProfile:
    """A profile from its TOML text; ProfileInvalid listing every problem by TOML key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ProfileInvalid(source, [f"is not TOML: {error}"]) from None
    read = _Reader()
    read.unknown(data, {"name", "label", "metric_prefix", "instrument", "source", "timing", "students", "results", "metrics"}, "")
    name = read.text(data, "name", "name", pattern=NAME)
    prefix = read.text(data, "metric_prefix", "metric_prefix", pattern=PREFIX)
    if prefix in RESERVED_PREFIXES:
        read.bad("metric_prefix", f"{prefix!r} is a kind of file CI Board has already; choose another")
    texts = {key: read.text(data, key, key) for key in ("label", "instrument", "source", "timing")}
    prefix = prefix or "x"
    students = _students(read, read.table(data, "students", "students", required=False), prefix) if "students" in data else None
    results = _results(read, read.table(data, "results", "results"), prefix)
    metrics = _metrics(read, data.get("metrics"), results)
    used = [c for c in _columns_of(results, metrics)]
    for column in sorted({c for c in used if used.count(c) > 1}):
        read.bad("results", f"column {column!r} is given two roles; each column may hold one thing")
    if read.problems:
        raise ProfileInvalid(source, read.problems)
    return ImportProfile(name=name, metric_prefix=prefix, students=students, results=results, metrics=metrics,
                         text=text, **texts)


STUDENT_FIELDS = ("term", "student_id", "school", "race_ethnicity", "gender", "grade")


def _students(read: _Reader, data: dict, prefix: str) -> StudentFile:
    read.unknown(data, {"label", "recognised_by", "columns", "race_ethnicity", "gender", "grades"}, "students")
    columns_data = read.table(data, "columns", "students.columns")
    read.unknown(columns_data, set(STUDENT_FIELDS), "students.columns")
    columns = {f: read.text(columns_data, f, f"students.columns.{f}", pattern=COLUMN) for f in STUDENT_FIELDS}

    def mapping(key: str, whole: bool = False) -> dict:
        found = read.table(data, key, f"students.{key}")
        if not found and key in data:
            read.bad(f"students.{key}", "lists no spellings")
        for spelling, value in found.items():
            if whole and not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 12):
                read.bad(f"students.{key}.{spelling}", "must be a grade from 0 (K) to 12")
            if not whole and not (isinstance(value, str) and value.strip()):
                read.bad(f"students.{key}.{spelling}", "must be the group's name as the dashboard shows it")
        return dict(found)

    return StudentFile(
        kind=f"{prefix}_students",
        label=read.text(data, "label", "students.label") or "",
        recognised_by=read.text(data, "recognised_by", "students.recognised_by", pattern=COLUMN) or "",
        columns={f: c or "" for f, c in columns.items()},
        race_ethnicity=mapping("race_ethnicity"),
        gender=mapping("gender"),
        grades=mapping("grades", whole=True),
    )


RESULT_FIELDS = ("student_id", "test_date", "term", "window", "subject", "test_id", "preferred")


def _results(read: _Reader, data: dict, prefix: str) -> ResultsFile:
    read.unknown(data, {"label", "recognised_by", "columns", "scores"}, "results")
    columns_data = read.table(data, "columns", "results.columns")
    read.unknown(columns_data, set(RESULT_FIELDS), "results.columns")
    columns = {
        f: read.text(columns_data, f, f"results.columns.{f}", required=f in ("student_id", "test_date"), pattern=COLUMN)
        for f in RESULT_FIELDS
    }
    if columns["term"] and columns["window"]:
        read.bad("results.columns.window", "give term or window, not both: the term says the window")
    scores = {}
    for score_name, spec in read.table(data, "scores", "results.scores").items():
        path = f"results.scores.{score_name}"
        if not SCORE_NAME.fullmatch(score_name):
            read.bad(path, f"a score's name must match {SCORE_NAME.pattern}")
        if not isinstance(spec, dict):
            read.bad(path, "must be a table with column (and whole, min, max)")
            continue
        read.unknown(spec, {"column", "whole", "min", "max"}, path)
        low, high = read.number(spec, "min", f"{path}.min"), read.number(spec, "max", f"{path}.max")
        if low is not None and high is not None and low > high:
            read.bad(f"{path}.max", "is below min")
        scores[score_name] = Score(read.text(spec, "column", f"{path}.column", pattern=COLUMN) or "", read.flag(spec, "whole", f"{path}.whole"),
                                   low, high)
    if not scores and "scores" in data:
        read.bad("results.scores", "names no score")
    return ResultsFile(
        kind=f"{prefix}_results",
        label=read.text(data, "label", "results.label") or "",
        recognised_by=read.text(data, "recognised_by", "results.recognised_by", pattern=COLUMN) or "",
        scores=scores,
        **{f: c for f, c in columns.items()},
    )


def _metrics(read: _Reader, data: object, results: ResultsFile) -> tuple[DerivedMetric, ...]:
    if not isinstance(data, list) or not data or not all(isinstance(m, dict) for m in data):
        read.bad("metrics", "must be one or more [[metrics]] tables")
        return ()
    metrics, suffixes = [], set()
    for number, spec in enumerate(data, start=1):
        path = f"metrics[{number}]"
        read.unknown(spec, {"suffix", "label", "kind", "unit", "derive", "of", "definition", "accuracy", "better",
                            "threshold", "from_window", "target", "target_columns"}, path)
        suffix = read.text(spec, "suffix", f"{path}.suffix", pattern=SUFFIX)
        if suffix in suffixes:
            read.bad(f"{path}.suffix", f"{suffix!r} is the suffix of an earlier metric")
        suffixes.add(suffix)
        label = read.text(spec, "label", f"{path}.label")
        for key in ("label", "definition", "accuracy"):
            value = spec.get(key)
            if isinstance(value, str) and "{subject}" in value and not results.subject:
                read.bad(f"{path}.{key}", "uses {subject}, but results.columns.subject names no column")
            if isinstance(value, str) and re.search(r"\{(?!subject\})", value):
                read.bad(f"{path}.{key}", "may hold {subject} and no other {...}")
        kind = read.text(spec, "kind", f"{path}.kind")
        if kind and kind not in METRIC_KINDS:
            read.bad(f"{path}.kind", "must be one of " + ", ".join(METRIC_KINDS))
        derive = read.text(spec, "derive", f"{path}.derive")
        if derive and derive not in DERIVES:
            read.bad(f"{path}.derive", "must be one of " + ", ".join(DERIVES))
        of = read.text(spec, "of", f"{path}.of")
        if of and of not in results.scores:
            read.bad(f"{path}.of", f"{of!r} is not one of results.scores ({', '.join(results.scores) or 'none'})")
        better = read.text(spec, "better", f"{path}.better", required=False) or "higher"
        if better not in ("higher", "lower"):
            read.bad(f"{path}.better", "must be higher or lower")
        threshold = read.number(spec, "threshold", f"{path}.threshold", required=derive == "at_least")
        from_window = read.text(spec, "from_window", f"{path}.from_window", required=derive == "growth")
        target = read.number(spec, "target", f"{path}.target")
        target_columns = {}
        columns_spec = read.table(spec, "target_columns", f"{path}.target_columns", required=False)
        for window, columns in columns_spec.items():
            names = [columns] if isinstance(columns, str) else columns
            if window not in WINDOWS:
                read.bad(f"{path}.target_columns.{window}", "must be a window: " + ", ".join(WINDOWS))
            elif not isinstance(names, list) or not names or not all(isinstance(c, str) and COLUMN.fullmatch(c.strip()) for c in names):
                read.bad(f"{path}.target_columns.{window}", "must be a column name or a list of them (the first that holds a value counts)")
            else:
                target_columns[window] = tuple(c.strip() for c in names)
        if derive == "growth":
            if from_window and from_window not in WINDOWS:
                read.bad(f"{path}.from_window", "must be a window: " + ", ".join(WINDOWS))
            if (target is None) == (not target_columns):
                read.bad(f"{path}.target", "a growth metric needs target (a fixed gain) or target_columns, one of them")
            later = [w for w in target_columns if from_window in WINDOWS and WINDOWS.index(w) <= WINDOWS.index(from_window)]
            for window in later:
                read.bad(f"{path}.target_columns.{window}", f"must be a window after from_window ({from_window})")
        else:
            for key in ("from_window", "target", "target_columns"):
                if key in spec:
                    read.bad(f"{path}.{key}", "applies to a growth metric only (derive = \"growth\")")
        if derive != "at_least" and "threshold" in spec:
            read.bad(f"{path}.threshold", "applies to derive = \"at_least\" only")
        metrics.append(DerivedMetric(
            suffix=suffix or "", label=label or "", kind=kind or "", unit=read.text(spec, "unit", f"{path}.unit") or "",
            derive=derive or "", of=of or "", definition=read.text(spec, "definition", f"{path}.definition") or "",
            accuracy=read.text(spec, "accuracy", f"{path}.accuracy") or "", better=better, threshold=threshold,
            from_window=from_window, target=target, target_columns=target_columns,
        ))
    return tuple(metrics)


def _columns_of(results: ResultsFile, metrics: tuple[DerivedMetric, ...]) -> list[str]:
    """Every column of the results file the profile reads, once per role (target columns may be
    shared between metrics)."""
    columns = [c for c in (results.student_id, results.test_date, results.term, results.window, results.subject,
                           results.test_id, results.preferred) if c]
    columns += [score.column for score in results.scores.values() if score.column]
    targets = {c for m in metrics for cs in m.target_columns.values() for c in cs}
    return [c.lower() for c in columns + sorted(targets)]


def target_columns(profile: ImportProfile) -> list[str]:
    return sorted({c for m in profile.metrics for cs in m.target_columns.values() for c in cs})


# --- shipped profiles and the warehouse's -----------------------------------------------------


def shipped() -> dict[str, ImportProfile]:
    """The profiles that come with CI Board, by name."""
    found = {}
    for path in sorted(SHIPPED_DIR.glob("*.toml")):
        profile = parse(path.read_text(), path.name)
        found[profile.name] = profile
    return found


def shipped_text() -> str:
    """What a warehouse must be migrated again for when it changes."""
    return "".join(path.read_text() for path in sorted(SHIPPED_DIR.glob("*.toml")))


def record_shipped(con) -> None:
    """Records each shipped profile a warehouse does not have yet, as its version 1. A profile the
    warehouse has is left as it is: an edit someone added is never overwritten."""
    have = {name for (name,) in con.execute("select distinct name from import_profiles").fetchall()}
    for profile in shipped().values():
        if profile.name not in have:
            _insert(con, profile, "ciboard (shipped)", shipped=True)


def add(con, profile: ImportProfile, added_by: str) -> int:
    """Records `profile` as the next version of its name; returns the version. Refused if its
    metric prefix is another profile's (their kinds and metrics would be one)."""
    owner = con.execute(
        """select name from import_profiles where metric_prefix = ? and name <> ?
        qualify row_number() over (partition by name order by version desc) = 1""",
        [profile.metric_prefix, profile.name],
    ).fetchall()
    if owner:
        raise ProfileInvalid(profile.name, [f"metric_prefix: {profile.metric_prefix!r} is the prefix of profile {owner[0][0]}"])
    latest = con.execute("select max(version), arg_max(sha256, version) from import_profiles where name = ?",
                         [profile.name]).fetchall()[0]
    if latest[1] == _sha(profile.text):
        return latest[0]
    return _insert(con, profile, added_by, shipped=False)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _insert(con, profile: ImportProfile, added_by: str, shipped: bool) -> int:
    version = con.execute("select coalesce(max(version), 0) + 1 from import_profiles where name = ?",
                          [profile.name]).fetchall()[0][0]
    con.execute(
        "insert into import_profiles values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [profile.name, version, profile.label, profile.metric_prefix, profile.text, _sha(profile.text), added_by,
         datetime.now(), shipped],
    )
    for kind, description in ((profile.results.kind, f"{profile.label} {profile.results.label} file (import profile {profile.name})"),
                              *(((profile.students.kind, f"{profile.label} {profile.students.label} file (import profile {profile.name})"),)
                                if profile.students else ())):
        if not con.execute("select count(*) from submission_kinds where kind = ?", [kind]).fetchall()[0][0]:
            con.execute("insert into submission_kinds values (?, 'district', 'window', 14, ?)", [kind, description])
    return version


def current(cur, name: str) -> ImportProfile | None:
    """The latest version of a profile the warehouse has, or None."""
    rows = cur.execute(
        "select toml, version from import_profiles where name = ? order by version desc limit 1", [name]
    ).fetchall()
    if not rows:
        return None
    profile = parse(rows[0][0], name)
    return ImportProfile(**{**profile.__dict__, "version": rows[0][1]})


def text_of(cur, name: str, version: int | None = None) -> str | None:
    """A profile's TOML as the warehouse keeps it: the latest version, or `version`."""
    rows = cur.execute(
        "select toml from import_profiles where name = ? and (? is null or version = ?) order by version desc limit 1",
        [name, version, version],
    ).fetchall()
    return rows[0][0] if rows else None


def history(cur) -> list[tuple]:
    """Every version of every profile: name, version, label, metric prefix, added by, added at, shipped."""
    return cur.execute(
        """select name, version, label, metric_prefix, added_by, added_at, shipped
        from import_profiles order by name, version"""
    ).fetchall()


# --- the data map ----------------------------------------------------------------------------


def metric_id(profile: ImportProfile, subject_id: str | None, metric: DerivedMetric) -> str:
    return "_".join(part for part in (profile.metric_prefix, subject_id, metric.suffix) if part)


def metric_rows(profile: ImportProfile, subject: str | None, subject_id: str | None) -> list[tuple]:
    """The data-map rows of one subject, in the column order of the `metrics` table."""
    return [
        (
            metric_id(profile, subject_id, m),
            m.label.format(subject=subject),
            m.kind,
            m.unit,
            m.aggregation,
            m.better,
            "window",
            m.definition.format(subject=subject),
            profile.instrument,
            profile.source,
            profile.timing,
            m.accuracy.format(subject=subject),
            None,
            profile.results.kind,
        )
        for m in profile.metrics
    ]


# --- the SQL that reads an export's terms, subjects and spellings ----------------------------

TERM = re.compile(r"\s*(Fall|Winter|Spring)\s+(\d{4})\s*-\s*(\d{4})\s*", re.IGNORECASE)


def school_year_of_term(term: str) -> str | None:
    """'Fall 2013-2014' -> '2013-14'; None for anything else."""
    match = TERM.fullmatch(term or "")
    if not match or int(match[3]) != int(match[2]) + 1:
        return None
    return f"{match[2]}-{match[3][-2:]}"


def term_sql(column: str) -> tuple[str, str]:
    """SQL for the window ('fall') and the school year ('2013-14') a term names; null if it names none."""
    pattern = "'^\\s*(Fall|Winter|Spring)\\s+(\\d{4})\\s*-\\s*(\\d{4})\\s*$'"
    season = f"regexp_extract({column}, {pattern}, 1, 'i')"
    first = f"try_cast(nullif(regexp_extract({column}, {pattern}, 2, 'i'), '') as integer)"
    second = f"try_cast(nullif(regexp_extract({column}, {pattern}, 3, 'i'), '') as integer)"
    valid = f"{second} = {first} + 1"
    return (
        f"case when {valid} then lower({season}) end",
        f"case when {valid} then {first}::varchar || '-' || right({second}::varchar, 2) end",
    )


def slug_sql(column: str, separator: str = "_") -> str:
    """Lower case, runs of anything but letters and digits as one separator, none at the ends."""
    return f"trim(regexp_replace(lower({column}), '[^a-z0-9]+', '{separator}', 'g'), '{separator}')"


def mapping_sql(column: str, mapping: dict) -> str:
    """A CASE that maps the export's spellings (case and spaces aside) to ours; null if unlisted."""
    def literal(value) -> str:
        return str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"

    whens = " ".join(f"when {literal(k.lower())} then {literal(v)}" for k, v in mapping.items())
    return f"case lower(trim({column})) {whens} end"
