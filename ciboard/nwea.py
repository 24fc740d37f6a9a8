"""NWEA MAP Growth: how its export maps to students, terms and metrics, as one declarative profile.

`NWEA_MAP` says which column of which file holds what; ciboard.kinds builds the two file
kinds from it (so every problem names the file's own column), ingest stores the rows and
derives the facts from it, and `metric_rows` writes each scale's data-map entries from its
metric templates. This is the seed of the import profiles of issue 12: a profile for another
export is another `ImportProfile`.

The command `ciboard import nwea-map` goes through `import_files`, which lands the whole
import through the ordinary ingest or nothing of it.
"""

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

WINDOWS_SQL = "('fall', 'winter', 'spring')"


@dataclass(frozen=True)
class FileMap:
    """One file of an export: the submission kind it loads as, a column only this file has
    (so a file is recognised by its header), and, per field, the column that holds it."""

    kind: str
    recognised_by: str
    columns: dict[str, str]


@dataclass(frozen=True)
class DerivedMetric:
    """A metric derived per measurement scale: `nwea_<scale>_<suffix>`. `field` is the stored
    field it summarises; a growth metric compares the later window's score with the fall one."""

    suffix: str
    label: str  # {scale} is the scale as NWEA names it
    kind: str
    unit: str
    aggregation: str
    definition: str
    accuracy: str
    field: str | None = None
    growth: bool = False


@dataclass(frozen=True)
class ImportProfile:
    name: str
    metric_prefix: str
    students: FileMap
    results: FileMap
    # Growth targets: for each later window, the fall row's column holding the growth expected
    # from fall to that window, one per layout (first present wins).
    growth_from: str
    growth_targets: dict[str, tuple[str, ...]]
    metrics: tuple[DerivedMetric, ...]
    instrument: str
    source: str
    timing: str
    # The export's spellings of a student's groups, as the dashboard names them. A value not
    # listed is a row problem, never a guess.
    race_ethnicity: dict[str, str]
    gender: dict[str, str]
    grades: dict[str, int]


NWEA_MAP = ImportProfile(
    name="nwea-map",
    metric_prefix="nwea",
    students=FileMap(
        kind="nwea_students",
        recognised_by="StudentEthnicGroup",
        columns={
            "term": "TermName",
            "student_id": "StudentID",
            "school": "SchoolName",
            "race_ethnicity": "StudentEthnicGroup",
            "gender": "StudentGender",
            "grade": "Grade",
        },
    ),
    results=FileMap(
        kind="nwea_results",
        recognised_by="MeasurementScale",
        columns={
            "term": "TermName",
            "student_id": "StudentID",
            "scale": "MeasurementScale",
            "growth_measure": "GrowthMeasureYN",
            "test_id": "TestID",
            "test_date": "TestStartDate",
            "score": "TestRITScore",
            "percentile": "TestPercentile",
        },
    ),
    growth_from="fall",
    growth_targets={
        # Pre-2015 layout: NWEA's typical growth norms; current layout: projected growth.
        "winter": ("TypicalFallToWinterGrowth", "FallToWinterProjectedGrowth"),
        "spring": ("TypicalFallToSpringGrowth", "FallToSpringProjectedGrowth"),
    },
    metrics=(
        DerivedMetric(
            "rit", "{scale}: mean RIT", "context", "RIT points", "mean",
            "Mean RIT score on the NWEA MAP Growth {scale} test in the window, one test per student"
            " (the growth-measure test where a student took several).",
            "RIT scores are on one scale across grades, so a group's mean moves with its grade mix.",
            field="score",
        ),
        DerivedMetric(
            "percentile", "{scale}: median percentile", "context", "percentile (1-99)", "median",
            "Median of the students' achievement percentiles (TestPercentile, against NWEA's national norms)"
            " on the {scale} test in the window.",
            "Percentiles are not interval data, which is why groups are summarised by the median.",
            field="percentile",
        ),
        DerivedMetric(
            "met_typical_growth", "{scale}: met typical growth", "payment outcome", "share of students", "proportion",
            "Share of students with a growth-measure {scale} test in fall and in this window whose RIT gain since"
            " fall is at least the growth NWEA's norms expect of them for that span, as the fall test states it"
            " (TypicalFallToWinterGrowth or TypicalFallToSpringGrowth; in the current layout"
            " FallToWinterProjectedGrowth or FallToSpringProjectedGrowth).",
            "Students without a fall growth-measure test, or whose fall test states no expected growth, are not"
            " counted. The fall window itself has no value.",
            growth=True,
        ),
    ),
    instrument="NWEA MAP Growth, a computer-adaptive test taken in the fall, winter and spring windows.",
    source="NWEA MAP Growth reporting: the district downloads the export (AssessmentResults and StudentsBySchool files).",
    timing="Three times a year; the export is available once the testing window closes.",
    race_ethnicity={
        "American Indian or Alaska Native": "American Indian",
        "Asian": "Asian",
        "Black or African American": "Black",
        "Hispanic or Latino": "Hispanic",
        "Multi-ethnic": "Multiracial",
        "Multiple Ethnicities": "Multiracial",
        "Native Hawaiian or Other Pacific Islander": "Pacific Islander",
        "White": "White",
    },
    gender={"F": "Female", "M": "Male", "Female": "Female", "Male": "Male"},
    # Client-based MAP codes kindergarten as 13 (as mapvizieR, which published the training
    # files, reads it: their grade-13 students score below grade 1).
    grades={"K": 0, "Kinder": 0, "Kindergarten": 0, "13": 0, **{str(g): g for g in range(0, 13)}},
)

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


def metric_rows(profile: ImportProfile, scale: str, scale_id: str) -> list[tuple]:
    """The data-map rows of one scale, in the column order of the `metrics` table."""
    return [
        (
            f"{profile.metric_prefix}_{scale_id}_{m.suffix}",
            m.label.format(scale=scale),
            m.kind,
            m.unit,
            m.aggregation,
            "higher",
            "window",
            m.definition.format(scale=scale),
            profile.instrument,
            profile.source,
            profile.timing,
            m.accuracy,
            None,
            profile.results.kind,
        )
        for m in profile.metrics
    ]


# --- the import command --------------------------------------------------------------------


class NotAnExport(ValueError):
    """A file that is neither of the export's files."""


def file_kind(path: Path, profile: ImportProfile = NWEA_MAP) -> str:
    """Which of the export's files this is, by its header."""
    header = {name.strip().lower() for name in _header(path)}
    for layout in (profile.results, profile.students):
        if layout.recognised_by.lower() in header:
            return layout.kind
    raise NotAnExport(
        f"{path.name} is neither an AssessmentResults file (with a {profile.results.recognised_by} column)"
        f" nor a StudentsBySchool file (with a {profile.students.recognised_by} column)"
    )


def _header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle), [])
    except (UnicodeDecodeError, csv.Error):
        return []


def _terms(path: Path, column: str) -> set[str]:
    """The term names a CSV file holds (the command adds their school years)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            key = next((name for name in reader.fieldnames or [] if name.strip().lower() == column.lower()), None)
            return {row[key] for row in reader if key and row.get(key)} if key else set()
    except (UnicodeDecodeError, csv.Error):
        return set()  # staging says what is wrong with the file


def import_files(
    warehouse,
    paths: list[Path],
    *,
    progress: Callable[[str], None] | None = None,
    replace: bool = False,
    profile: ImportProfile = NWEA_MAP,
):
    """Loads an export's files as one ingest: student files first (the students the results
    name), each kind in term order; the terms' school years are added in the same publish."""
    from ciboard.ingest import Submission, ingest

    order = {"fall": 0, "winter": 1, "spring": 2}

    def place(path: Path, kind: str) -> tuple:
        terms = sorted(_terms(path, profile.results.columns["term"]))
        first = TERM.fullmatch(terms[0]) if terms else None
        return (kind != profile.students.kind, first[2] if first else "", order.get(first[1].lower(), 3) if first else 3)

    kinds = {path: file_kind(path, profile) for path in paths}
    ordered = sorted(paths, key=lambda p: place(p, kinds[p]))
    years = sorted({year for p in paths for t in _terms(p, profile.results.columns["term"])
                    if (year := school_year_of_term(t))})
    submissions = [Submission(path, kinds[path], by_district=True) for path in ordered]
    return ingest(warehouse, submissions, progress=progress, replace=replace, school_years=years)
