"""Importing an assessment export through its import profile (ciboard.profiles): which file is
which, in what order they load, and the SQL that reads terms, subjects and spellings.

`import_files` lands the whole import through the ordinary ingest or nothing of it: every
problem names the file, row and column as the export has them.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ciboard import profiles
from ciboard.profiles import ImportProfile

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


# --- the import command --------------------------------------------------------------------


class NotAnExport(ValueError):
    """A file that is none of the profile's files, or a profile the warehouse does not have."""


def profile_for_import(warehouse, name: str) -> ImportProfile:
    """The latest version of a profile in the warehouse (shipped ones are recorded on its
    first migration), made a kind ingest can load."""
    from ciboard.kinds import register

    warehouse.upgrade_if_stale()  # records the shipped profiles in a warehouse made before them
    with warehouse.cursor() as cur:
        profile = profiles.current(cur, name)
        known = sorted({row[0] for row in profiles.history(cur)})
    if profile is None:
        raise NotAnExport(f"no import profile named {name!r}: the warehouse has {', '.join(known) or 'none'}"
                          " (add one with 'ciboard profile add FILE')")
    register(profile)
    return profile


@dataclass(frozen=True)
class ExportFile:
    """One file of an export: which of the profile's files it is, and the terms it holds."""

    path: Path
    kind: str
    terms: frozenset[str]


def look_at(path: Path, profile: ImportProfile) -> ExportFile:
    """Which of the export's files this is, by its header, and the terms its term column holds.
    Read as ingest reads it (CSV, Excel or Parquet), so a file this names is one ingest can load."""
    from ciboard.staging import FileUnreadable, stage  # staging reads kinds, which reads this module

    con = duckdb.connect()
    try:
        try:
            header, _ = stage(con, path, "export")
        except FileUnreadable as unreadable:
            raise NotAnExport(f"{path.name} cannot be read: {unreadable}") from None
        position = {name.strip().lower(): i for i, name in enumerate(header)}
        layouts = [profile.results] + ([profile.students] if profile.students else [])
        layout = next((layout for layout in layouts if layout.recognised_by.lower() in position), None)
        if layout is None:
            raise NotAnExport(f"{path.name} is " + " nor ".join(
                f"{'neither ' if len(layouts) > 1 and i == 0 else 'not ' if len(layouts) == 1 else ''}"
                f"{a_or_an(layout.label)} {layout.label} file (with a {layout.recognised_by} column)"
                for i, layout in enumerate(layouts)
            ) + f" of the import profile {profile.name}")
        term = profile.results.term if layout is profile.results else profile.students.columns["term"]
        column = position.get(term.lower()) if term else None
        terms = frozenset() if column is None else frozenset(
            value for (value,) in con.execute(f"select distinct c{column} from export where c{column} is not null").fetchall()
        )
        return ExportFile(path, layout.kind, terms)
    finally:
        con.close()


def a_or_an(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def import_files(
    warehouse,
    name: str,
    paths: list[Path],
    *,
    progress: Callable[[str], None] | None = None,
    replace: bool = False,
):
    """Loads an export's files through the profile `name` as one ingest: student files first
    (the students the results name), each kind in term order; the terms' school years are
    added in the same publish."""
    from ciboard.ingest import Submission, ingest

    profile = profile_for_import(warehouse, name)
    order = {"fall": 0, "winter": 1, "spring": 2}

    def place(file: ExportFile) -> tuple:
        first = TERM.fullmatch(min(file.terms)) if file.terms else None
        return (file.kind == profile.results.kind, first[2] if first else "", order.get(first[1].lower(), 3) if first else 3)

    files = sorted((look_at(path, profile) for path in paths), key=place)
    years = sorted({year for file in files for term in file.terms if (year := school_year_of_term(term))})
    submissions = [Submission(file.path, file.kind, by_district=True) for file in files]
    return ingest(warehouse, submissions, progress=progress, replace=replace, school_years=years)
