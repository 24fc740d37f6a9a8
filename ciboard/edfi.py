"""Ed-Fi Data Standard XML interchanges: what of them this product uses, landed through the
ordinary ingest. docs/edfi.md says element by element what maps to what and what is ignored.

An interchange is read whole with the standard library's ElementTree (expat 2.4 and later
refuse entity expansion bombs, and ElementTree never fetches external entities), checked here
for what only the XML can say (a missing element, a date that is not one, a student the
district's records do not have), each problem named by the element's line and path, and then
written as the rows of an existing kind (`schools`, `students`) and handed to
`ciboard.ingest.ingest` as one command: it lands whole or not at all. A problem the ingest
finds in a written row is told at the element the row came from.

Ed-Fi 5.2's Student interchange carries ids, names and birth data only: a student's school,
grade and groups live in StudentSchoolAssociation and StudentEducationOrganizationAssociation.
So an Ed-Fi import does not create district students; it adds to the records of the students
the district has sent (the `students` kind): a special-education program association makes
effective-dated versions of a student's record, in special education from its BeginDate and
not from its EndDate.
"""

import csv
import tempfile
import xml.etree.ElementTree as ET
from xml.parsers import expat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from ciboard.groups import spellings
from ciboard.ingest import IngestRejected, Outcome, Submission, ingest
from ciboard.kinds import Problem

STUDENT_ID = "StudentReference/StudentIdentity/StudentUniqueId"
PROGRAM_TYPE = "ProgramReference/ProgramIdentity/ProgramType"
RECORD_COLUMNS = (
    "student_id", "school_id", "grade", "race_ethnicity", "gender", "econ_disadvantaged", "english_learner",
    "special_education", "baseline_band", "as_of",
)


class NotAnInterchange(ValueError):
    """A file that is not an Ed-Fi interchange this import reads."""


@dataclass
class Element:
    """An element with where it is: its line in the file and its path from the root."""

    node: ET.Element
    line: int
    path: str

    def text(self, child: str) -> str | None:
        found = self.node.find(_qualified(child, self.node))
        return found.text.strip() if found is not None and found.text and found.text.strip() else None


@dataclass
class Interchange:
    path: Path
    name: str  # the root's local name: InterchangeStudent, ...
    elements: list[Element]

    @property
    def file(self) -> str:
        return self.path.name


@dataclass
class Found:
    """What an import's interchanges hold, and what is wrong with them, per file."""

    schools: list[tuple[str, str, Element]] = field(default_factory=list)  # (school_id, name, element)
    student_ids: set[str] = field(default_factory=set)
    # (student_id, begins, ends or None, element) of each special-education association
    special_education: list[tuple[str, date, date | None, Element, Interchange]] = field(default_factory=list)
    problems: dict[str, list[Problem]] = field(default_factory=dict)

    def problem(self, interchange: Interchange, element: Element, child: str | None, value: str | None, reason: str) -> None:
        where = element.path + (f"/{child}" if child else "")
        self.problems.setdefault(interchange.file, []).append(Problem(interchange.file, element.line, where, value, reason))


# --- reading -------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _qualified(path: str, node: ET.Element) -> str:
    """`a/b` in the namespace of `node` (Ed-Fi's differs by version: http://ed-fi.org/5.2.0)."""
    space = node.tag[: node.tag.index("}") + 1] if node.tag.startswith("{") else ""
    return "/".join(space + part for part in path.split("/"))


def _parse(path: Path) -> tuple[ET.Element, dict[int, int]]:
    """The file's tree, and the line each element starts on (expat's own count; ElementTree's
    parser does not tell it)."""
    builder, lines = ET.TreeBuilder(), {}
    parser = expat.ParserCreate(namespace_separator="}")

    def tag(name: str) -> str:
        return "{" + name if "}" in name else name

    def start(name, attributes):
        lines[id(builder.start(tag(name), attributes))] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda name: builder.end(tag(name))
    parser.CharacterDataHandler = builder.data
    with open(path, "rb") as handle:
        parser.ParseFile(handle)
    return builder.close(), lines


def read(path: Path) -> Interchange:
    """The interchange's top-level elements, each with its line and path."""
    try:
        root, lines = _parse(path)
    except expat.ExpatError as error:
        raise NotAnInterchange(f"{path.name} is not well-formed XML: {expat.ErrorString(error.code)},"
                               f" line {error.lineno}") from None
    name = _local(root.tag)
    if name not in READERS:
        raise NotAnInterchange(
            f"{path.name} is a {name}, not an Ed-Fi interchange this import reads ({', '.join(READERS)})"
        )
    counts: dict[str, int] = {}
    elements = []
    for child in root:
        tag = _local(child.tag)
        counts[tag] = counts.get(tag, 0) + 1
        elements.append(Element(child, lines.get(id(child), 0), f"{name}/{tag}[{counts[tag]}]"))
    return Interchange(path, name, elements)


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text[:10]) if text else None
    except ValueError:
        return None


def _read_schools(interchange: Interchange, found: Found) -> None:
    for element in interchange.elements:
        if _local(element.node.tag) != "School":
            continue  # the district, service centre, programs, courses...: see docs/edfi.md
        school_id, name = element.text("SchoolId"), element.text("NameOfInstitution")
        if school_id is None:
            found.problem(interchange, element, "SchoolId", None, "is required")
        if name is None:
            found.problem(interchange, element, "NameOfInstitution", None, "is required")
        if school_id and name:
            found.schools.append((school_id, name, element))


def _read_students(interchange: Interchange, found: Found) -> None:
    seen: dict[str, str] = {}
    for element in interchange.elements:
        if _local(element.node.tag) != "Student":
            continue
        student_id = element.text("StudentUniqueId")
        if student_id is None:
            found.problem(interchange, element, "StudentUniqueId", None, "is required")
        elif student_id in seen:
            found.problem(interchange, element, "StudentUniqueId", student_id, f"is also the student of {seen[student_id]}")
        else:
            seen[student_id] = element.path
            found.student_ids.add(student_id)


def _read_programs(interchange: Interchange, found: Found, in_special_education: dict[str, object]) -> None:
    """Special-education associations: any program association whose ProgramType the table of
    spellings maps to special education (so a district's own descriptor can be added)."""
    for element in interchange.elements:
        if not _local(element.node.tag).endswith("ProgramAssociation"):
            continue
        program = element.text(PROGRAM_TYPE)
        if program is None:
            found.problem(interchange, element, PROGRAM_TYPE, None, "is required")
            continue
        if in_special_education.get(program.lower()) is not True:
            continue  # another program: see docs/edfi.md
        student_id = element.text(STUDENT_ID)
        begins_text, ends_text = element.text("BeginDate"), element.text("EndDate")
        begins, ends = _date(begins_text), _date(ends_text)
        if student_id is None:
            found.problem(interchange, element, STUDENT_ID, None, "is required")
        if begins_text is None:
            found.problem(interchange, element, "BeginDate", None, "is required")
        elif begins is None:
            found.problem(interchange, element, "BeginDate", begins_text, "is not a date (YYYY-MM-DD)")
        if ends_text is not None and ends is None:
            found.problem(interchange, element, "EndDate", ends_text, "is not a date (YYYY-MM-DD)")
        elif begins and ends and ends <= begins:
            found.problem(interchange, element, "EndDate", ends_text, "is not after BeginDate")
        elif student_id and begins:
            found.special_education.append((student_id, begins, ends, element, interchange))


READERS = {
    "InterchangeEducationOrganization": _read_schools,
    "InterchangeStudent": _read_students,
    "InterchangeStudentProgram": _read_programs,
}


# --- records -------------------------------------------------------------------------------


def record_versions(
    records: dict[str, list[tuple]], spans: list[tuple[str, date, date | None]]
) -> list[tuple[tuple, int]]:
    """The versions of the district's records that special-education spans add.

    `records`: each student's records as (student_id, school_id, grade, race_ethnicity, gender,
    econ_disadvantaged, english_learner, special_education, baseline_band, as_of), by as_of.
    A span [begins, ends) puts the student in special education from `begins` and out of it
    from `ends` (Ed-Fi's EndDate: the day the student exited). At each such date a version is
    added: the record in force that day (as facts take them: the latest on or before it, else
    the first) with special_education as the spans say, unless it already says so or a record
    of that date exists. Returns (version, index of the span that set the date).
    """
    by_student: dict[str, list[tuple[int, date, date | None]]] = {}
    for index, (student_id, begins, ends) in enumerate(spans):
        by_student.setdefault(student_id, []).append((index, begins, ends))
    versions = []
    for student_id, own in by_student.items():
        history = sorted(records[student_id], key=lambda r: r[-1])
        changes = sorted({(begins, index) for index, begins, _ in own} | {(ends, index) for index, _, ends in own if ends})
        done: set[date] = {r[-1] for r in history}
        for day, index in changes:
            if day in done:
                continue
            done.add(day)
            covered = any(begins <= day and (ends is None or day < ends) for _, begins, ends in own)
            earlier = [r for r in history if r[-1] <= day]
            in_force = earlier[-1] if earlier else history[0]
            if in_force[7] == covered:
                continue
            version = (*in_force[:7], covered, in_force[8], day)
            history = sorted([*history, version], key=lambda r: r[-1])
            versions.append((version, index))
    return sorted(versions, key=lambda v: (v[0][0], v[0][-1]))


def _records(warehouse, student_ids: set[str]) -> dict[str, list[tuple]]:
    if not student_ids:
        return {}
    with warehouse.cursor() as cur:
        rows = cur.execute(
            """select student_key, school_id, grade, race_ethnicity, gender, econ_disadvantaged, english_learner,
                special_education, baseline_band, as_of
            from district_students where student_key in (select unnest(?)) order by student_key, as_of""",
            [sorted(student_ids)],
        ).fetchall()
    records: dict[str, list[tuple]] = {}
    for row in rows:
        records.setdefault(row[0], []).append(tuple(row))
    return records


def school_year_of(day: date, start_month: int) -> str:
    """The school year a date lies in: '2021-22' for 2021-08-30 with years starting in August."""
    first = day.year if day.month >= start_month else day.year - 1
    return f"{first}-{str(first + 1)[-2:]}"


# --- the import command --------------------------------------------------------------------


def _yes_no(value) -> str:
    return "" if value is None else ("Yes" if value else "No")


def _write(path: Path, header: tuple[str, ...], rows: list[tuple]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def import_files(
    warehouse,
    paths: list[Path],
    *,
    progress: Callable[[str], None] | None = None,
    replace: bool = False,
) -> list[Outcome]:
    """Reads the interchanges and lands what they hold as one ingest, or raises IngestRejected
    with every problem at its element (NotAnInterchange for a file that is none)."""
    say = progress or (lambda message: None)
    interchanges = [read(path) for path in paths]
    found = Found()
    table = spellings(warehouse.settings.student_group_spellings)
    for interchange in sorted(interchanges, key=lambda i: list(READERS).index(i.name)):
        reader = READERS[interchange.name]
        if reader is _read_programs:
            reader(interchange, found, table["special_education"])
        else:
            reader(interchange, found)
        say(f"{interchange.file}: read {len(interchange.elements):,} elements as {interchange.name}")

    records = _records(warehouse, {student_id for student_id, *_ in found.special_education})
    spans, span_elements = [], []
    for student_id, begins, ends, element, interchange in found.special_education:
        if student_id not in records:
            found.problem(
                interchange, element, STUDENT_ID, student_id,
                "has no record in the district's student records: load the student's school, grade and groups"
                " with the students kind first (Ed-Fi's Student interchange carries none)",
            )
        else:
            spans.append((student_id, begins, ends))
            span_elements.append(element)
    if found.problems:
        raise IngestRejected([
            Outcome(i.file, i.name, "rejected" if i.file in found.problems else "not loaded",
                    problems=found.problems.get(i.file, []))
            for i in interchanges
        ])

    versions = record_versions(records, spans)
    start_month = warehouse.settings.school_year_start_month
    years = sorted({school_year_of(version[-1], start_month) for version, _ in versions})
    with tempfile.TemporaryDirectory(prefix="edfi-") as folder:
        submissions, sources = [], {}
        organizations = [i for i in interchanges if i.name == "InterchangeEducationOrganization"]
        for interchange in organizations:
            rows = [(school_id, name) for school_id, name, _ in found.schools]
            if rows:
                written = Path(folder) / f"schools-{len(submissions)}.csv"
                _write(written, ("school_id", "name"), rows)
                submissions.append(Submission(written, "schools", by_district=True, file_name=_as_csv(interchange)))
                sources[_as_csv(interchange)] = [element for *_, element in found.schools]
        programs = [i for i in interchanges if i.name == "InterchangeStudentProgram"]
        if versions and programs:
            # The versions go in as one students file named after the (first) program interchange.
            written = Path(folder) / "students.csv"
            _write(written, RECORD_COLUMNS, [
                (*version[:5], _yes_no(version[5]), _yes_no(version[6]), _yes_no(version[7]), version[8] or "",
                 version[9].isoformat())
                for version, _ in versions
            ])
            submissions.append(Submission(written, "students", by_district=True, file_name=_as_csv(programs[0])))
            sources[_as_csv(programs[0])] = [span_elements[index] for _, index in versions]
        if not submissions:
            say("nothing to load: the interchanges hold no schools and no special-education associations"
                " that change a student's record")
            return [Outcome(i.file, i.name, "unchanged") for i in interchanges]
        try:
            return ingest(warehouse, submissions, progress=progress, replace=replace, school_years=years)
        except IngestRejected as rejected:
            for outcome in rejected.outcomes:
                elements = sources.get(outcome.file, [])
                outcome.file = outcome.file.removesuffix(".csv")
                outcome.problems = [_at_element(problem, elements, outcome.file) for problem in outcome.problems]
            raise IngestRejected(rejected.outcomes) from None


FIELD_ELEMENTS = {
    "school_id": "SchoolId", "name": "NameOfInstitution", "student_id": STUDENT_ID,
    "as_of": "BeginDate or EndDate", "special_education": PROGRAM_TYPE,
}


def _as_csv(interchange: Interchange) -> str:
    """The name an interchange's rows are logged under: the ingest reads them as CSV."""
    return interchange.file + ".csv"


def _at_element(problem: Problem, elements: list[Element], file: str) -> Problem:
    """A problem of a written row told at the element the row came from (header = row 1)."""
    if problem.row is None or not 2 <= problem.row < len(elements) + 2:
        return Problem(file, problem.row, problem.column, problem.value, problem.reason,
                       problem.for_vendor, problem.rows_with_problems)
    element = elements[problem.row - 2]
    child = FIELD_ELEMENTS.get(problem.column or "")
    where = element.path + (f"/{child}" if child else "")
    return Problem(file, element.line, where, problem.value, problem.reason,
                   problem.for_vendor, problem.rows_with_problems)
