"""Importing an assessment export through its import profile (ciboard.profiles): which file is
which, in what order they load, and the SQL that reads terms, subjects and spellings.

`import_files` lands the whole import through the ordinary ingest or nothing of it: every
problem names the file, row and column as the export has them.
"""

import csv
import re
from collections.abc import Callable
from pathlib import Path

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


def file_kind(path: Path, profile: ImportProfile) -> str:
    """Which of the export's files this is, by its header."""
    header = {name.strip().lower() for name in _header(path)}
    layouts = [profile.results] + ([profile.students] if profile.students else [])
    for layout in layouts:
        if layout.recognised_by.lower() in header:
            return layout.kind
    raise NotAnExport(
        f"{path.name} is " + " nor ".join(
            f"{'neither ' if len(layouts) > 1 and i == 0 else 'not ' if len(layouts) == 1 else ''}"
            f"{a_or_an(layout.label)} {layout.label} file (with a {layout.recognised_by} column)"
            for i, layout in enumerate(layouts)
        ) + f" of the import profile {profile.name}"
    )


def a_or_an(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            first = handle.readline(1 << 16)
    except (UnicodeDecodeError, OSError):
        return []
    delimiter = max((",", "\t", ";", "|"), key=first.count)
    try:
        return next(csv.reader([first], delimiter=delimiter), [])
    except csv.Error:
        return []


def _terms(path: Path, column: str | None) -> set[str]:
    """The term names a CSV file holds (the command adds their school years)."""
    if column is None:
        return set()
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            first = handle.readline(1 << 16)
            handle.seek(0)
            reader = csv.DictReader(handle, delimiter=max((",", "\t", ";", "|"), key=first.count))
            key = next((name for name in reader.fieldnames or [] if name.strip().lower() == column.lower()), None)
            return {row[key] for row in reader if key and row.get(key)} if key else set()
    except (UnicodeDecodeError, csv.Error, OSError):
        return set()  # staging says what is wrong with the file


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
    term_of = {profile.results.kind: profile.results.term}
    if profile.students:
        term_of[profile.students.kind] = profile.students.columns["term"]

    def place(path: Path, kind: str) -> tuple:
        terms = sorted(_terms(path, term_of[kind]))
        first = TERM.fullmatch(terms[0]) if terms else None
        return (kind == profile.results.kind, first[2] if first else "", order.get(first[1].lower(), 3) if first else 3)

    kinds = {path: file_kind(path, profile) for path in paths}
    ordered = sorted(paths, key=lambda p: place(p, kinds[p]))
    years = sorted({year for p in paths for t in _terms(p, term_of[kinds[p]]) if (year := school_year_of_term(t))})
    submissions = [Submission(path, kinds[path], by_district=True) for path in ordered]
    return ingest(warehouse, submissions, progress=progress, replace=replace, school_years=years)
