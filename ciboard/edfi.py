"""Ed-Fi Data Standard XML interchanges: what of them this product uses, landed through the
ordinary ingest. docs/edfi.md says element by element what maps to what and what is ignored.

An interchange is read whole with the standard library's expat and ElementTree (expat 2.4 and
later refuse entity expansion bombs, and neither fetches external entities), checked here for
what only the XML can say (a missing element, a date that is not one, a descriptor the table
of spellings does not know, a student the district's records do not have), each problem named
by the element's line and path, and then written as the rows of existing kinds (`schools`,
`students`, `assessment`, `annotations`, `school_attendance`) and handed to
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

from ciboard.calendar import school_year_of, window_of
from ciboard.groups import spellings
from ciboard.ingest import IngestRejected, Outcome, Submission, ingest, log_rejected
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
        return _child_text(self.node, child)


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
    # (student_id, begins, ends or None, element, interchange) of each special-education association
    special_education: list[tuple[str, date, date | None, Element, Interchange]] = field(default_factory=list)
    assessments: dict[str, "Assessment"] = field(default_factory=dict)  # by AssessmentIdentifier
    results: list["Result"] = field(default_factory=list)
    not_tested: int = 0  # results with a ReasonNotTested and no score
    sessions: dict[tuple[str, str, str], "Session"] = field(default_factory=dict)  # by (school, year, name)
    # (school, date) -> (has instruction, the events' values, element, interchange)
    calendar_days: dict[tuple[str, date], tuple] = field(default_factory=dict)
    absences: list["Absence"] = field(default_factory=list)
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


def _read_schools(interchange: Interchange, found: Found, table: dict) -> None:
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


def _read_students(interchange: Interchange, found: Found, table: dict) -> None:
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


def _read_programs(interchange: Interchange, found: Found, table: dict) -> None:
    """Special-education associations: any program association whose ProgramType the table of
    spellings maps to special education (so a district's own descriptor can be added)."""
    for element in interchange.elements:
        if not _local(element.node.tag).endswith("ProgramAssociation"):
            continue
        program = element.text(PROGRAM_TYPE)
        if program is None:
            found.problem(interchange, element, PROGRAM_TYPE, None, "is required")
            continue
        if table["special_education"].get(program.lower()) is not True:
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


# The reporting method whose result is the scale score, in order of preference: Ed-Fi's "Scale
# score", else a vertical scale (one scale across grades, as Texas's STAAR reports it).
SCALE_METHODS = ("Scale score", "Vertical score")
ASSESSMENT_ID = "AssessmentReference/AssessmentIdentity/AssessmentIdentifier"


def _descriptor(uri: str | None) -> str | None:
    """The value a descriptor URI names: 'Mathematics' of uri://ed-fi.org/AcademicSubjectDescriptor#Mathematics."""
    return uri.rsplit("#", 1)[-1].strip() if uri else None


@dataclass
class Assessment:
    subject: str | None
    scores: dict[str, tuple[float | None, float | None]]  # reporting method -> (minimum, maximum)


@dataclass
class Result:
    student_id: str
    assessment_id: str
    day: date
    stated_year: str | None
    scores: dict[str, str]  # reporting method -> result as sent
    levels: list[str]
    element: Element
    interchange: Interchange


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _read_metadata(interchange: Interchange, found: Found, table: dict) -> None:
    for element in interchange.elements:
        if _local(element.node.tag) != "Assessment":
            continue  # objective assessments (a test's parts) are not read
        identifier = element.text("AssessmentIdentifier")
        if identifier is None:
            found.problem(interchange, element, "AssessmentIdentifier", None, "is required")
            continue
        scores = {}
        for score in element.node.findall(_qualified("AssessmentScore", element.node)):
            method = _descriptor(_child_text(score, "AssessmentReportingMethod"))
            if method:
                scores[method] = (_number(_child_text(score, "MinimumScore")), _number(_child_text(score, "MaximumScore")))
        found.assessments[identifier] = Assessment(_descriptor(element.text("AcademicSubject")), scores)


def _child_text(node: ET.Element, child: str) -> str | None:
    found = node.find(_qualified(child, node))
    return found.text.strip() if found is not None and found.text and found.text.strip() else None


def _read_results(interchange: Interchange, found: Found, table: dict) -> None:
    for element in interchange.elements:
        if _local(element.node.tag) != "StudentAssessment":
            continue
        node = element.node
        scores = {
            _descriptor(_child_text(score, "AssessmentReportingMethod")) or "": _child_text(score, "Result") or ""
            for score in node.findall(_qualified("ScoreResult", node))
        }
        levels = [_child_text(level, "PerformanceLevel") or "" for level in node.findall(_qualified("PerformanceLevel", node))]
        if element.text("ReasonNotTested") and not scores:
            found.not_tested += 1
            continue
        student_id, assessment_id = element.text(STUDENT_ID), element.text(ASSESSMENT_ID)
        given = element.text("AdministrationDate")
        day = _date(given)
        if student_id is None:
            found.problem(interchange, element, STUDENT_ID, None, "is required")
        if assessment_id is None:
            found.problem(interchange, element, ASSESSMENT_ID, None, "is required")
        if given is None:
            found.problem(interchange, element, "AdministrationDate", None, "is required")
        elif day is None:
            found.problem(interchange, element, "AdministrationDate", given, "is not a date (YYYY-MM-DD)")
        if student_id and assessment_id and day:
            found.results.append(Result(student_id, assessment_id, day, element.text("SchoolYear"), scores, levels,
                                        element, interchange))


def _scored(found: Found, settings, table: dict, subject: str | None) -> list[tuple[tuple, Element]]:
    """The assessment rows (student_id, window, test_date, scaled_score, proficient) of the results
    in the chosen subject, each with its element; what is wrong goes to `found`."""
    subjects = sorted({found.assessments[r.assessment_id].subject or "" for r in found.results
                       if r.assessment_id in found.assessments})
    chosen = subject if subject is not None else (subjects[0] if len(subjects) == 1 else None)
    rows = []
    for result in found.results:
        interchange, element = result.interchange, result.element
        assessment = found.assessments.get(result.assessment_id)
        if assessment is None:
            found.problem(interchange, element, ASSESSMENT_ID, result.assessment_id,
                          "is not an Assessment of the AssessmentMetadata interchanges of this import")
            continue
        if chosen is None:
            found.problem(interchange, element, ASSESSMENT_ID, result.assessment_id,
                          f"the results are in several subjects ({', '.join(subjects)}) and the assessment facts"
                          " hold one test per student and window: choose the contract's with --subject")
            continue
        if (assessment.subject or "").lower() != chosen.lower():
            continue
        method = next((m for m in SCALE_METHODS if m in assessment.scores), None)
        if method is None:
            found.problem(interchange, element, ASSESSMENT_ID, result.assessment_id,
                          f"its AssessmentMetadata states no scale score ({' or '.join(SCALE_METHODS)}) among its"
                          " AssessmentScore reporting methods")
            continue
        where = f"ScoreResult[{method}]/Result"
        given = result.scores.get(method)
        score = _number(given)
        low, high = assessment.scores[method]
        if given is None:
            found.problem(interchange, element, where, None, "is required")
        elif score is None:
            found.problem(interchange, element, where, given, "is not a number")
        elif (low is not None and score < low) or (high is not None and score > high):
            found.problem(interchange, element, where, given,
                          f"is outside the assessment's {method} range ({low:g} to {high:g})")
        mapped = [table["proficient"].get(level.lower()) for level in result.levels]
        if not result.levels:
            found.problem(interchange, element, "PerformanceLevel/PerformanceLevel", None, "is required")
        for level, proficient in zip(result.levels, mapped):
            if proficient is None:
                found.problem(interchange, element, "PerformanceLevel/PerformanceLevel", level,
                              "is not a performance level the table of spellings knows (README: District student"
                              " records); add the state's own with the setting CIBOARD_STUDENT_GROUP_SPELLINGS")
        if len({m for m in mapped if m is not None}) > 1:
            found.problem(interchange, element, "PerformanceLevel/PerformanceLevel", ", ".join(result.levels),
                          "say both proficient and not proficient")
        if score is not None and mapped and None not in mapped and len(set(mapped)) == 1:
            rows.append(((result.student_id, window_of(result.day, settings), result.day.isoformat(), score,
                          "Yes" if mapped[0] else "No"), element))
    return rows


SCHOOL_ID = "SchoolReference/SchoolIdentity/SchoolId"
SESSION = "SessionReference/SessionIdentity"
CLOSURES = ("Weather day", "Emergency day", "Strike")  # a calendar's days off that are closures, not breaks


@dataclass
class Session:
    school_id: str
    name: str
    year: str
    begins: date
    ends: date
    stated_days: int | None
    element: Element
    interchange: Interchange


@dataclass
class Absence:
    student_id: str
    school_id: str
    session: tuple[str, str, str]  # (school, school year, name) as the event names it
    day: date
    absent: bool
    element: Element
    interchange: Interchange


def _read_calendar(interchange: Interchange, found: Found, table: dict) -> None:
    for element in interchange.elements:
        tag = _local(element.node.tag)
        if tag == "Session":
            school_id, name, year = element.text(SCHOOL_ID), element.text("SessionName"), element.text("SchoolYear")
            begins, ends = _date(element.text("BeginDate")), _date(element.text("EndDate"))
            for child, value, ok in ((SCHOOL_ID, school_id, school_id), ("SessionName", name, name),
                                     ("SchoolYear", year, year), ("BeginDate", element.text("BeginDate"), begins),
                                     ("EndDate", element.text("EndDate"), ends)):
                if not ok:
                    found.problem(interchange, element, child, value, "is required" if value is None else "is not a date (YYYY-MM-DD)")
            if begins and ends and ends < begins:
                found.problem(interchange, element, "EndDate", element.text("EndDate"), "is before BeginDate")
            elif school_id and name and year and begins and ends:
                stated = element.text("TotalInstructionalDays")
                found.sessions[(school_id, year, name)] = Session(
                    school_id, name, year, begins, ends, int(stated) if stated and stated.isdigit() else None,
                    element, interchange)
        elif tag == "CalendarDate":
            day = _date(element.text("Date"))
            school_id = element.text("CalendarReference/CalendarIdentity/" + SCHOOL_ID)
            events = [(e.text or "").strip() for e in element.node.findall(_qualified("CalendarEvent", element.node))]
            if day is None:
                found.problem(interchange, element, "Date", element.text("Date"), "is required" if element.text("Date") is None else "is not a date (YYYY-MM-DD)")
            if school_id is None:
                found.problem(interchange, element, "CalendarReference/CalendarIdentity/" + SCHOOL_ID, None, "is required")
            if not events:
                found.problem(interchange, element, "CalendarEvent", None, "is required")
            mapped = [table["instructional"].get(event.lower()) for event in events]
            for event, instructional in zip(events, mapped):
                if instructional is None:
                    found.problem(interchange, element, "CalendarEvent", event, UNKNOWN_DESCRIPTOR.format(what="calendar event"))
            if day and school_id and events and None not in mapped:
                found.calendar_days[(school_id, day)] = (any(mapped), [_descriptor(e) for e in events], element, interchange)


UNKNOWN_DESCRIPTOR = (
    "is not a {what} the table of spellings knows (README: District student records); add the district's own"
    " with the setting CIBOARD_STUDENT_GROUP_SPELLINGS"
)


def _read_attendance(interchange: Interchange, found: Found, table: dict) -> None:
    for element in interchange.elements:
        if _local(element.node.tag) != "StudentSchoolAttendanceEvent":
            continue
        student_id, school_id = element.text(STUDENT_ID), element.text(SCHOOL_ID)
        session = (element.text(SESSION + "/" + SCHOOL_ID), element.text(SESSION + "/SchoolYear"),
                   element.text(SESSION + "/SessionName"))
        given = element.text("AttendanceEvent/EventDate")
        day = _date(given)
        category = element.text("AttendanceEvent/AttendanceEventCategory")
        absent = table["absent"].get(category.lower()) if category else None
        duration = element.text("AttendanceEvent/EventDuration")
        for child, value in ((STUDENT_ID, student_id), (SCHOOL_ID, school_id), (SESSION + "/SessionName", session[2]),
                             (SESSION + "/SchoolYear", session[1]), (SESSION + "/" + SCHOOL_ID, session[0]),
                             ("AttendanceEvent/EventDate", given), ("AttendanceEvent/AttendanceEventCategory", category)):
            if value is None:
                found.problem(interchange, element, child, None, "is required")
        if given is not None and day is None:
            found.problem(interchange, element, "AttendanceEvent/EventDate", given, "is not a date (YYYY-MM-DD)")
        if category is not None and absent is None:
            found.problem(interchange, element, "AttendanceEvent/AttendanceEventCategory", category,
                          UNKNOWN_DESCRIPTOR.format(what="attendance event category"))
        if duration is not None and (_number(duration) is None or not 0 <= _number(duration) <= 1):
            found.problem(interchange, element, "AttendanceEvent/EventDuration", duration, "must be a share of a day from 0 to 1")
        elif student_id and school_id and None not in session and day and absent is not None:
            # A part of a day absent is a day present: the weekly counts are whole days.
            whole_day = duration is None or _number(duration) >= 0.5
            found.absences.append(Absence(student_id, school_id, session, day, absent and whole_day, element, interchange))


def instructional_days(session: Session, calendar_days: dict) -> list[date]:
    """A session's days of instruction: its weekdays, less the calendar's days without
    instruction at its school, and with any weekend day the calendar says has instruction."""
    days, day = [], session.begins
    while day <= session.ends:
        marked = calendar_days.get((session.school_id, day))
        if (marked[0] if marked else day.weekday() < 5):
            days.append(day)
        day += timedelta(days=1)
    return days


def _attendance(found: Found, say) -> list[tuple[tuple, Element]]:
    """school_attendance rows (student_id, week_start, days_enrolled, days_present), each with
    an event element of its student and session. A student is enrolled on every day of
    instruction of each session their events name (Ed-Fi's StudentSchoolAssociation, which
    says when a student is enrolled, is not read); present on those days without an absence."""
    days = {key: instructional_days(session, found.calendar_days) for key, session in found.sessions.items()}
    for key, session in found.sessions.items():
        if session.stated_days is not None and session.stated_days != len(days[key]):
            say(f"{session.interchange.file}: {session.school_id} {session.name} has {len(days[key])} days of"
                f" instruction by its dates and the calendar's events, not the {session.stated_days} it states:"
                " the calendar names no other day without instruction; the days counted are used")
    named: dict[tuple[str, tuple], Element] = {}
    absent: dict[tuple[str, tuple], set[date]] = {}
    off_days = 0
    for event in found.absences:
        if event.session not in found.sessions:
            found.problem(event.interchange, event.element, SESSION + "/SessionName", event.session[2],
                          f"is not a Session of school {event.session[0]} in {event.session[1]} in the"
                          " EducationOrgCalendar interchanges of this import")
            continue
        if event.session[0] != event.school_id:
            found.problem(event.interchange, event.element, SESSION + "/" + SCHOOL_ID, event.session[0],
                          f"is not the school of the event ({event.school_id})")
            continue
        key = (event.student_id, event.session)
        named.setdefault(key, event.element)
        if event.absent:
            if event.day in set(days[event.session]):
                absent.setdefault(key, set()).add(event.day)
            else:
                off_days += 1
    if off_days:
        say(f"{off_days:,} absence(s) on a day the session has no instruction: not counted")
    weeks: dict[tuple[str, date], list] = {}
    for (student_id, session), element in named.items():
        for day in days[session]:
            week = weeks.setdefault((student_id, day - timedelta(days=day.weekday())), [0, 0, element])
            week[0] += 1
            week[1] += day not in absent.get((student_id, session), set())
    return [((student_id, week.isoformat(), enrolled, present), element)
            for (student_id, week), (enrolled, present, element) in sorted(weeks.items())]


def _calendar_annotations(found: Found) -> list[tuple[tuple, Element]]:
    """annotations rows (starts_on, ends_on, kind, title, school_id): the calendar's days
    without instruction, and the time between one session of a school and its next (the
    district's, with no school, where every school of the calendar has it)."""
    rows = []
    for (school_id, day), (instructional, events, element, _) in sorted(found.calendar_days.items()):
        if not instructional:
            kind = "closure" if any(e in CLOSURES for e in events) else "break"
            rows.append(((day.isoformat(), day.isoformat(), kind, ", ".join(events), school_id), element))
    by_school: dict[str, list[Session]] = {}
    for session in found.sessions.values():
        by_school.setdefault(session.school_id, []).append(session)
    gaps: dict[tuple, list[tuple[str, Element]]] = {}
    for school_id, sessions in sorted(by_school.items()):
        sessions.sort(key=lambda s: s.begins)
        for before, after in zip(sessions, sessions[1:]):
            if (after.begins - before.ends).days > 1:
                gap = (str(before.ends + timedelta(days=1)), str(after.begins - timedelta(days=1)), "break",
                       f"Between {before.name} and {after.name}")
                gaps.setdefault(gap, []).append((school_id, after.element))
    for gap, schools in gaps.items():
        # A break every school of the calendar shares is the district's: one annotation, not one a school.
        if len(schools) == len(by_school) > 1:
            rows.append(((*gap, ""), schools[0][1]))
        else:
            rows.extend(((*gap, school_id), element) for school_id, element in schools)
    return rows


# The kind of rows each interchange lands as (or is checked for: a Student's ids, a test's metadata).
KINDS_OF = {
    "InterchangeEducationOrganization": "schools",
    "InterchangeStudent": "students",
    "InterchangeStudentProgram": "students",
    "InterchangeAssessmentMetadata": "assessment",
    "InterchangeStudentAssessment": "assessment",
    "InterchangeEducationOrgCalendar": "annotations",
    "InterchangeStudentAttendance": "school_attendance",
}

READERS = {
    "InterchangeEducationOrganization": _read_schools,
    "InterchangeStudent": _read_students,
    "InterchangeStudentProgram": _read_programs,
    "InterchangeAssessmentMetadata": _read_metadata,
    "InterchangeStudentAssessment": _read_results,
    "InterchangeEducationOrgCalendar": _read_calendar,
    "InterchangeStudentAttendance": _read_attendance,
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
    subject: str | None = None,
) -> list[Outcome]:
    """Reads the interchanges and lands what they hold as one ingest, or raises IngestRejected
    with every problem at its element (NotAnInterchange for a file that is none). `subject`:
    the AcademicSubject whose results become assessment facts, where they are in several."""
    say = progress or (lambda message: None)
    settings = warehouse.settings
    interchanges = [read(path) for path in paths]
    found = Found()
    table = spellings(settings.student_group_spellings)
    for interchange in sorted(interchanges, key=lambda i: list(READERS).index(i.name)):
        READERS[interchange.name](interchange, found, table)
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
    scored = _scored(found, settings, table, subject)
    attended = _attendance(found, say)
    annotated = _calendar_annotations(found)
    if found.problems:
        outcomes = [
            Outcome(i.file, KINDS_OF[i.name], "rejected" if i.file in found.problems else "not loaded",
                    problems=found.problems.get(i.file, []))
            for i in interchanges
        ]
        log_rejected(warehouse, outcomes, [Submission(i.path, KINDS_OF[i.name], by_district=True) for i in interchanges])
        raise IngestRejected(outcomes)
    if found.not_tested:
        say(f"{found.not_tested:,} result(s) with a ReasonNotTested and no score: not a test taken, not loaded")
    start_month = settings.school_year_start_month
    disagreeing = sum(1 for r in found.results if r.stated_year and r.stated_year[:4] != school_year_of(r.day, start_month)[:4])
    if disagreeing:
        say(f"{disagreeing:,} result(s) state a SchoolYear their AdministrationDate is not in: the date decides")

    versions = record_versions(records, spans)
    years = sorted({school_year_of(version[-1], start_month) for version, _ in versions}
                   | {school_year_of(date.fromisoformat(row[2]), start_month) for row, _ in scored}
                   | {school_year_of(date.fromisoformat(row[1]), start_month) for row, _ in attended}
                   | {school_year_of(date.fromisoformat(row[0]), start_month) for row, _ in annotated})
    with tempfile.TemporaryDirectory(prefix="edfi-") as folder:
        submissions, sources = [], {}

        def submit(interchange: Interchange, kind: str, header: tuple[str, ...], rows: list[tuple], elements: list[Element]):
            written = Path(folder) / f"{len(submissions)}.csv"
            _write(written, header, rows)
            submissions.append(Submission(written, kind, by_district=True, file_name=_as_csv(interchange)))
            sources[_as_csv(interchange)] = (kind, elements)

        def of(interchange: Interchange) -> set[int]:
            return {id(e) for e in interchange.elements}

        for interchange in interchanges:
            if interchange.name == "InterchangeEducationOrganization":
                own = [(school_id, name, e) for school_id, name, e in found.schools if id(e) in of(interchange)]
                if own:
                    submit(interchange, "schools", ("school_id", "name"), [r[:2] for r in own], [r[2] for r in own])
        programs = [i for i in interchanges if i.name == "InterchangeStudentProgram"]
        if versions:
            # The versions go in as one students file named after the (first) program interchange.
            submit(programs[0], "students", RECORD_COLUMNS, [
                (*version[:5], _yes_no(version[5]), _yes_no(version[6]), _yes_no(version[7]), version[8] or "",
                 version[9].isoformat())
                for version, _ in versions
            ], [span_elements[index] for _, index in versions])
        for interchange in interchanges:
            mine = of(interchange)
            own = [(row, e) for row, e in scored if id(e) in mine]
            if interchange.name == "InterchangeStudentAssessment" and own:
                submit(interchange, "assessment", ASSESSMENT_COLUMNS, [r for r, _ in own], [e for _, e in own])
        for interchange in interchanges:
            mine = of(interchange)
            own = [(row, e) for row, e in annotated if id(e) in mine]
            if interchange.name == "InterchangeEducationOrgCalendar" and own:
                submit(interchange, "annotations", ANNOTATION_COLUMNS, [r for r, _ in own], [e for _, e in own])
        for interchange in interchanges:
            mine = of(interchange)
            own = [(row, e) for row, e in attended if id(e) in mine]
            if interchange.name == "InterchangeStudentAttendance" and own:
                submit(interchange, "school_attendance", ATTENDANCE_COLUMNS, [r for r, _ in own], [e for _, e in own])
        if not submissions:
            say("nothing to load: the interchanges hold no schools, no test results and no special-education"
                " associations that change a student's record")
            return [Outcome(i.file, i.name, "unchanged") for i in interchanges]
        def locate(outcome: Outcome) -> None:
            kind, elements = sources.get(outcome.file, (None, []))
            outcome.file = outcome.file.removesuffix(".csv")
            outcome.problems = [_at_element(problem, kind, elements, outcome.file) for problem in outcome.problems]

        return ingest(warehouse, submissions, progress=progress, replace=replace, school_years=years, locate=locate)


ASSESSMENT_COLUMNS = ("student_id", "window", "test_date", "scaled_score", "proficient")
ATTENDANCE_COLUMNS = ("student_id", "week_start", "days_enrolled", "days_present")
ANNOTATION_COLUMNS = ("starts_on", "ends_on", "kind", "title", "school_id")
# Where each written column comes from, by kind.
FIELD_ELEMENTS = {
    "schools": {"school_id": "SchoolId", "name": "NameOfInstitution"},
    "students": {"student_id": STUDENT_ID, "as_of": "BeginDate or EndDate", "special_education": PROGRAM_TYPE},
    "school_attendance": {"student_id": STUDENT_ID, "week_start": "AttendanceEvent/EventDate",
                          "days_enrolled": SESSION, "days_present": "AttendanceEvent/EventDate"},
    "annotations": {"starts_on": "Date", "ends_on": "Date", "school_id": "CalendarReference/CalendarIdentity/" + SCHOOL_ID},
    "assessment": {"student_id": STUDENT_ID, "window": "AdministrationDate", "test_date": "AdministrationDate",
                   "scaled_score": "ScoreResult/Result", "proficient": "PerformanceLevel/PerformanceLevel"},
}


def _as_csv(interchange: Interchange) -> str:
    """The name an interchange's rows are logged under: the ingest reads them as CSV."""
    return interchange.file + ".csv"


def _at_element(problem: Problem, kind: str | None, elements: list[Element], file: str) -> Problem:
    """A problem of a written row told at the element the row came from (header = row 1)."""
    if problem.row is None or not 2 <= problem.row < len(elements) + 2:
        return Problem(file, problem.row, problem.column, problem.value, problem.reason,
                       problem.for_vendor, problem.rows_with_problems)
    element = elements[problem.row - 2]
    child = FIELD_ELEMENTS.get(kind, {}).get(problem.column or "")
    where = element.path + (f"/{child}" if child else "")
    return Problem(file, element.line, where, problem.value, problem.reason,
                   problem.for_vendor, problem.rows_with_problems)
