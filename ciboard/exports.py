"""Importing an assessment export through its import profile (ciboard.profiles): which file is
which, and in what order they load (the SQL that reads terms, subjects and spellings is in
ciboard.profiles, which the file kinds and ingest read too).

`import_files` lands the whole import through the ordinary ingest or nothing of it: every
problem names the file, row and column as the export has them.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ciboard import profiles
from ciboard.profiles import TERM, ImportProfile, school_year_of_term

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
