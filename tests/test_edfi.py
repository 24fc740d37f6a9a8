"""Ed-Fi XML interchanges: `ciboard import edfi` on the Ed-Fi Alliance's own sample files as they
are (Grand Bend ISD, Data Standard 5.2), checked against counts taken from the XML by hand."""

import csv
import io
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import copy_of, make_warehouse
from ciboard import edfi
from ciboard.cli import main
from ciboard.ingest import IngestRejected, Submission, ingest

REAL = Path("/work/shared/realdata/edfi_samples")
needs_real = pytest.mark.skipif(not (REAL / "Student.xml").exists(), reason="Ed-Fi's sample files are not on this machine")
ED_FI = "{http://ed-fi.org/5.2.0}"


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def student_ids() -> list[str]:
    return [e.text for e in ET.parse(REAL / "Student.xml").getroot().iter(ED_FI + "StudentUniqueId")]


def district_records(path: Path, ids: list[str], as_of: str = "2021-08-01") -> Path:
    """The district's own records of the sample's students (Ed-Fi's Student interchange has no
    school, grade or groups): all at the middle school, none in special education."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", "school_id", "grade", "race_ethnicity", "gender", "econ_disadvantaged",
                         "english_learner", "special_education", "as_of"])
        writer.writerows([i, "255901044", 7, "White", "Female", "No", "No", "No", as_of] for i in ids)
    return path


@pytest.fixture(scope="module")
def built_grand_bend(tmp_path_factory):
    """The data folder of a warehouse with 2021-22, the sample's schools and a record of each of
    its 960 students, made once for the module's tests to copy."""
    folder = tmp_path_factory.mktemp("grand-bend")
    warehouse = make_warehouse(folder / "data")
    warehouse.init(["2021-22"])
    edfi.import_files(warehouse, [REAL / "EducationOrganization.xml"])
    ingest(warehouse, [Submission(district_records(folder / "students.csv", student_ids()), "students")])
    warehouse.close()
    return folder / "data"


@pytest.fixture
def grand_bend(tmp_path, built_grand_bend):
    """The Grand Bend warehouse, the test's own."""
    warehouse = copy_of(built_grand_bend, tmp_path / "data")
    yield warehouse
    warehouse.close()


@needs_real
def test_schools_come_from_the_school_elements_only(tmp_path):
    # EducationOrganization.xml has 3 <School> elements (grep -c "<School id" gives 3); the service
    # centre, the district (LocalEducationAgency), community and post-secondary bodies are no schools.
    data = str(tmp_path / "data")
    invoke("init", "--school-year", "2021-22", "--data-dir", data)
    result = invoke("import", "edfi", str(REAL / "EducationOrganization.xml"), "--data-dir", data)
    assert result.exit_code == 0, result.output
    warehouse = make_warehouse(Path(data))
    with warehouse.cursor() as cur:
        assert cur.execute("select school_id, name from schools order by 1").fetchall() == [
            ("255901001", "Grand Bend High School"),
            ("255901044", "Grand Bend Middle School"),
            ("255901107", "Grand Bend Elementary School"),
        ]
    warehouse.close()


@needs_real
def test_special_education_associations_add_effective_dated_records(grand_bend):
    # By hand from StudentProgram.xml: 97 <StudentSpecialEducationProgramAssociation> elements, one
    # per student, all with BeginDate 2021-08-30; 10 have EndDate 2021-10-03, 22 EndDate 2021-12-17
    # and 65 none. The other program associations (bilingual, gifted, CTE, migrant, ESL, food
    # service...) have ProgramTypes the table does not map to special education. Every student's
    # record says "No" as of 2021-08-01, so each association adds a "Yes" version on 2021-08-30
    # and each with an EndDate a "No" version on that date: 97 + 32 = 129 versions.
    outcomes = edfi.import_files(grand_bend, [REAL / "Student.xml", REAL / "StudentProgram.xml"])
    assert [(o.file, o.kind, o.status, o.rows) for o in outcomes] == [("StudentProgram.xml.csv", "students", "accepted", 129)]
    with grand_bend.cursor() as cur:
        added = cur.execute(
            """select as_of, special_education, count(*) from district_students where as_of > '2021-08-01'
            group by all order by 1"""
        ).fetchall()
        assert added == [(date(2021, 8, 30), True, 97), (date(2021, 10, 3), False, 10), (date(2021, 12, 17), False, 22)]
        # Line 3226: student 604956, in from 2021-08-30 and out from 2021-12-17; the version keeps
        # the rest of the record in force (school 255901044, grade 7).
        assert cur.execute(
            "select as_of, school_id, grade, special_education from district_students where student_key = '604956' order by 1"
        ).fetchall() == [
            (date(2021, 8, 1), "255901044", 7, False),
            (date(2021, 8, 30), "255901044", 7, True),
            (date(2021, 12, 17), "255901044", 7, False),
        ]
        # The students' current groups are the latest records: the 65 without an EndDate.
        assert cur.execute("select count(*) from students where special_education").fetchall()[0][0] == 65
    # The same interchanges again change nothing.
    again = edfi.import_files(grand_bend, [REAL / "Student.xml", REAL / "StudentProgram.xml"])
    assert {o.status for o in again} == {"unchanged"}


@needs_real
def test_facts_take_special_education_as_of_their_date(grand_bend):
    # Student 604992 (line 3296) is in special education from 2021-08-30 to 2021-10-03: a week of
    # school attendance in September counts them in it, one in November does not.
    edfi.import_files(grand_bend, [REAL / "StudentProgram.xml"])
    attendance = grand_bend.settings.data_dir / "attendance.csv"
    attendance.write_text("student_id,week_start,days_enrolled,days_present\n"
                          "604992,2021-09-13,5,5\n604992,2021-11-15,5,4\n")
    ingest(grand_bend, [Submission(attendance, "school_attendance")])
    with grand_bend.cursor() as cur:
        assert cur.execute(
            "select period_start, special_education from facts where student_key = '604992' order by 1"
        ).fetchall() == [(date(2021, 9, 13), True), (date(2021, 11, 15), False)]


@needs_real
def test_a_student_the_district_has_no_record_of_is_a_problem_and_nothing_lands(tmp_path):
    # No students loaded: each of the 97 associations names a student without a record. The first
    # (line 3086) is student 604872.
    warehouse = make_warehouse(tmp_path / "data")
    warehouse.init(["2021-22"])
    before = warehouse.version()
    with pytest.raises(IngestRejected) as rejected:
        edfi.import_files(warehouse, [REAL / "EducationOrganization.xml", REAL / "StudentProgram.xml"])
    problems = rejected.value.problems
    assert len(problems) == 97
    first = problems[0]
    assert (first.file, first.row, first.column, first.value) == (
        "StudentProgram.xml", 3086,
        "InterchangeStudentProgram/StudentSpecialEducationProgramAssociation[1]/StudentReference/StudentIdentity/StudentUniqueId",
        "604872",
    )
    assert "has no record in the district's student records" in first.reason
    # Nothing landed, not even the schools of the other file.
    assert warehouse.version() == before
    with warehouse.cursor() as cur:
        assert cur.execute("select count(*) from schools").fetchall()[0][0] == 0
    warehouse.close()


def write_xml(path: Path, root: str, body: str) -> Path:
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="http://ed-fi.org/5.2.0">\n{body}\n</{root}>\n')
    return path


def association(student: str, begins: str, ends: str | None = None, program: str = "Special Education") -> str:
    return f"""<StudentSpecialEducationProgramAssociation>
<StudentReference><StudentIdentity><StudentUniqueId>{student}</StudentUniqueId></StudentIdentity></StudentReference>
<ProgramReference><ProgramIdentity><ProgramType>uri://ed-fi.org/ProgramTypeDescriptor#{program}</ProgramType></ProgramIdentity></ProgramReference>
<BeginDate>{begins}</BeginDate>{f"<EndDate>{ends}</EndDate>" if ends else ""}
</StudentSpecialEducationProgramAssociation>"""


@needs_real
def test_every_problem_is_told_at_its_element(grand_bend, tmp_path):
    schools = write_xml(tmp_path / "EducationOrganization.xml", "InterchangeEducationOrganization",
                        "<School><SchoolId>9</SchoolId></School>")
    students = write_xml(tmp_path / "Student.xml", "InterchangeStudent",
                         "<Student><StudentUniqueId>604821</StudentUniqueId></Student>\n"
                         "<Student><StudentUniqueId>604821</StudentUniqueId></Student>")
    programs = write_xml(tmp_path / "StudentProgram.xml", "InterchangeStudentProgram", "\n".join([
        association("604821", "2021-13-01"),
        association("604822", "2021-09-01", "2021-08-01"),
        association("604823", "2021-09-01", program="Bilingual"),  # not special education: not read
    ]))
    before = grand_bend.version()
    with pytest.raises(IngestRejected) as rejected:
        edfi.import_files(grand_bend, [schools, students, programs])
    found = {(p.file, p.row, p.column, p.value, p.reason) for p in rejected.value.problems}
    assert found == {
        ("EducationOrganization.xml", 3, "InterchangeEducationOrganization/School[1]/NameOfInstitution", None, "is required"),
        ("Student.xml", 4, "InterchangeStudent/Student[2]/StudentUniqueId", "604821",
         "is also the student of InterchangeStudent/Student[1]"),
        ("StudentProgram.xml", 3, "InterchangeStudentProgram/StudentSpecialEducationProgramAssociation[1]/BeginDate",
         "2021-13-01", "is not a date (YYYY-MM-DD)"),
        ("StudentProgram.xml", 8, "InterchangeStudentProgram/StudentSpecialEducationProgramAssociation[2]/EndDate",
         "2021-08-01", "is not after BeginDate"),
    }
    assert grand_bend.version() == before
    with grand_bend.cursor() as cur:
        logged = cur.execute("select kind, file_name, row_number, column_name from rejections() order by 2, 3").fetchall()
    assert logged == [
        ("schools", "EducationOrganization.xml", 3, "InterchangeEducationOrganization/School[1]/NameOfInstitution"),
        ("students", "Student.xml", 4, "InterchangeStudent/Student[2]/StudentUniqueId"),
        ("students", "StudentProgram.xml", 3, "InterchangeStudentProgram/StudentSpecialEducationProgramAssociation[1]/BeginDate"),
        ("students", "StudentProgram.xml", 8, "InterchangeStudentProgram/StudentSpecialEducationProgramAssociation[2]/EndDate"),
    ]


@needs_real
def test_a_problem_the_ingest_finds_is_told_at_the_element_it_came_from(grand_bend, tmp_path):
    # A BeginDate in the future passes the XML's checks; the ingest refuses the record version
    # dated then, and says so at the association.
    programs = write_xml(tmp_path / "StudentProgram.xml", "InterchangeStudentProgram", "\n".join([
        association("604821", "2021-09-01"),
        association("604822", "2099-09-01"),
    ]))
    with pytest.raises(IngestRejected) as rejected:
        edfi.import_files(grand_bend, [programs])
    told = [(p.file, p.row, p.column, p.value, p.reason) for p in rejected.value.problems]
    assert ("StudentProgram.xml", 8,
            "InterchangeStudentProgram/StudentSpecialEducationProgramAssociation[2]/BeginDate or EndDate",
            "2099-09-01", "is in the future") in told
    with grand_bend.cursor() as cur:
        # The rejection log (Data quality) has it where the sender's file has it.
        assert cur.execute("select kind, file_name, row_number, column_name, value, reason from rejections()").fetchall() == [
            ("students", "StudentProgram.xml", 8,
             "InterchangeStudentProgram/StudentSpecialEducationProgramAssociation[2]/BeginDate or EndDate",
             "2099-09-01", "is in the future")]
        assert cur.execute("select count(*) from district_students where as_of > '2021-08-01'").fetchall()[0][0] == 0
        assert cur.execute("select school_year from school_years").fetchall() == [("2021-22",)]


def test_records_gain_a_version_only_where_special_education_changes():
    record = ("S1", "K1", 4, "White", "Female", False, False, False, None, date(2021, 8, 1))
    later = (*record[:9], date(2021, 11, 1))
    spans = [("S1", date(2021, 9, 1), date(2021, 10, 1)), ("S1", date(2021, 10, 1), date(2021, 12, 1))]
    versions = edfi.record_versions({"S1": [record, later]}, spans)
    # 9-1: in force is the record of 8-1 ("No"), the spans say "Yes": a version. 10-1: the second
    # span starts the day the first ends, still "Yes": none. 12-1: the spans say "No" and so does
    # the record in force, the district's own of 11-1 (it stands as sent): none.
    assert [(v[-1], v[7], index) for v, index in versions] == [(date(2021, 9, 1), True, 0)]


def test_school_years_of_dates():
    assert edfi.school_year_of(date(2021, 8, 30), 8) == "2021-22"
    assert edfi.school_year_of(date(2022, 5, 27), 8) == "2021-22"
    assert edfi.school_year_of(date(2021, 7, 31), 8) == "2020-21"


@needs_real
def test_cli_says_every_problem_and_refuses_what_is_no_interchange(tmp_path):
    data = str(tmp_path / "data")
    invoke("init", "--school-year", "2021-22", "--data-dir", data)
    errors = tmp_path / "errors.csv"
    result = invoke("import", "edfi", str(REAL / "StudentProgram.xml"), "--errors", str(errors), "--data-dir", data)
    assert result.exit_code == 1
    assert ("StudentProgram.xml, row 3086: InterchangeStudentProgram/StudentSpecialEducationProgramAssociation[1]"
            "/StudentReference/StudentIdentity/StudentUniqueId = '604872': has no record") in result.output
    rows = list(csv.DictReader(io.StringIO(errors.read_text())))
    assert len(rows) == 97
    other = tmp_path / "roster.csv"
    other.write_text("student_id,vendor_id\nS1,V1\n")
    refused = invoke("import", "edfi", str(other), "--data-dir", data)
    assert refused.exit_code == 1 and "roster.csv is not well-formed XML" in refused.output
    intervention = invoke("import", "edfi", str(REAL / "StudentIntervention.xml"), "--data-dir", data)
    assert intervention.exit_code == 1
    assert "StudentIntervention.xml is a InterchangeStudentIntervention, not an Ed-Fi interchange this import reads" in intervention.output


ASSESSMENTS = [REAL / "AssessmentMetadata-StateAssessment.xml", REAL / "StudentAssessment-StateAssessment.xml"]


@needs_real
def test_state_test_results_become_scale_score_and_proficiency_facts(grand_bend):
    # By hand from StudentAssessment-StateAssessment.xml: 34 results, 17 in Mathematics (8 in
    # grade 8, 9 in grade 5), all given on 2021-04-01 (spring of 2020-21, though each says
    # SchoolYear 2021-2022). Student 604861 was absent (ReasonNotTested, no score): 16 tested.
    # The metadata lists "Vertical score" (no "Scale score") among each test's AssessmentScores.
    # Vertical scores, grade 8: 691 704 798 685 628 822 691 = 5,019; grade 5: 691 738 706 647 578
    # 578 571 621 691 = 5,821; mean 10,840 / 16 = 677.5. "Met Standard" for 604912 604851 604889
    # (grade 8) and 604967 604871 604856 604875 604885 604958 (grade 5): 9 of 16 = 0.5625.
    outcomes = edfi.import_files(grand_bend, ASSESSMENTS, subject="Mathematics")
    assert [(o.file, o.kind, o.rows) for o in outcomes] == [("StudentAssessment-StateAssessment.xml.csv", "assessment", 16)]
    with grand_bend.cursor() as cur:
        assert cur.execute(
            "select school_year, window_name, test_date, count(*), sum(scaled_score), count(*) filter (where proficient)"
            " from assessments group by all"
        ).fetchall() == [("2020-21", "spring", date(2021, 4, 1), 16, 10840.0, 9)]
        # Student 604898's math test (line 3): vertical score 691, Did Not Meet Standard.
        assert cur.execute(
            "select scaled_score, proficient from assessments where student_key = '604898'"
        ).fetchall() == [(691.0, False)]
    from ciboard.access import Scope
    from ciboard.queries import run

    def series(metric):
        return run(grand_bend, "series", Scope.parse("analyst"), {"metric": metric, "grain": "window"})

    assert series("scaled_score")["value"].tolist() == [677.5]
    assert series("proficient")["value"].tolist() == [0.5625]


@needs_real
def test_results_in_several_subjects_need_one_chosen(grand_bend):
    # Reading: 16 tested (604861 absent again); "Met Standard" for all but 604856 604875 604960.
    with pytest.raises(IngestRejected) as rejected:
        edfi.import_files(grand_bend, ASSESSMENTS)
    assert len(rejected.value.problems) == 32
    assert "choose the contract's with --subject" in rejected.value.problems[0].reason
    edfi.import_files(grand_bend, ASSESSMENTS, subject="reading")
    with grand_bend.cursor() as cur:
        assert cur.execute("select count(*), count(*) filter (where proficient) from assessments").fetchall() == [(16, 13)]


@needs_real
def test_bad_results_are_told_at_their_element(grand_bend, tmp_path):
    metadata = REAL / "AssessmentMetadata-StateAssessment.xml"

    def result(student, score, level, assessment="SA-2011-Mathematics-Fifth grade", day="2021-04-01"):
        return f"""<StudentAssessment><AdministrationDate>{day}</AdministrationDate>
<ScoreResult><Result>{score}</Result><AssessmentReportingMethod>uri://ed-fi.org/AssessmentReportingMethodDescriptor#Vertical score</AssessmentReportingMethod></ScoreResult>
<PerformanceLevel><PerformanceLevel>uri://ed-fi.org/PerformanceLevelDescriptor#{level}</PerformanceLevel></PerformanceLevel>
<StudentReference><StudentIdentity><StudentUniqueId>{student}</StudentUniqueId></StudentIdentity></StudentReference>
<AssessmentReference><AssessmentIdentity><AssessmentIdentifier>{assessment}</AssessmentIdentifier></AssessmentIdentity></AssessmentReference>
</StudentAssessment>"""

    results = write_xml(tmp_path / "StudentAssessment.xml", "InterchangeStudentAssessment", "\n".join([
        result("604821", 900, "Met Standard"),  # line 3: above the grade-5 test's 875
        result("604822", 600, "Exemplary"),  # line 9
        result("604823", 600, "Met Standard", assessment="SA-2030-Art"),  # line 15
        result("999999", 600, "Met Standard"),  # line 21: no such student (the ingest finds it)
    ]))
    with pytest.raises(IngestRejected) as rejected:
        edfi.import_files(grand_bend, [metadata, results])
    found = {(p.file, p.row, p.column, p.value) for p in rejected.value.problems}
    assert found == {
        ("StudentAssessment.xml", 3, "InterchangeStudentAssessment/StudentAssessment[1]/ScoreResult[Vertical score]/Result", "900"),
        ("StudentAssessment.xml", 9, "InterchangeStudentAssessment/StudentAssessment[2]/PerformanceLevel/PerformanceLevel",
         "uri://ed-fi.org/PerformanceLevelDescriptor#Exemplary"),
        ("StudentAssessment.xml", 15, "InterchangeStudentAssessment/StudentAssessment[3]/" + edfi.ASSESSMENT_ID, "SA-2030-Art"),
    }
    # Those found, nothing was written; with them mended, the ingest names the unknown student.
    results.write_text(results.read_text().replace(">900<", ">800<").replace("#Exemplary", "#Advanced")
                       .replace("SA-2030-Art", "SA-2011-Mathematics-Fifth grade"))
    with pytest.raises(IngestRejected) as rejected:
        edfi.import_files(grand_bend, [metadata, results])
    assert [(p.file, p.row, p.column, p.value, p.reason) for p in rejected.value.problems] == [
        ("StudentAssessment.xml", 21, "InterchangeStudentAssessment/StudentAssessment[4]/" + edfi.STUDENT_ID, "999999",
         "is not on any roster"),
    ]
    with grand_bend.cursor() as cur:
        assert cur.execute("select count(*) from assessments").fetchall()[0][0] == 0


ATTENDANCE = [REAL / "EducationOrgCalendar.xml", REAL / "StudentSchoolAttendance.xml"]


@needs_real
def test_absence_events_and_the_calendar_become_weekly_days_enrolled_and_present(grand_bend):
    # By hand from EducationOrgCalendar.xml: each school's fall session runs Mon 2021-08-23 to Fri
    # 2021-12-17 (17 weeks, 85 weekdays) and its spring session Tue 2022-01-04 to Fri 2022-05-27
    # (4 days, then 20 weeks: 104 weekdays, in 21 weeks). The two CalendarDates are both
    # "Instructional day", so no weekday is taken off (the sessions state 81 and 88 days: the
    # calendar does not say which days those leave out).
    # StudentSchoolAttendance.xml: 1,917 events of 227 students, 186 in both sessions and 41 in
    # one (2 fall, 39 spring); 1,850 are Excused or Unexcused Absences of a whole day (duration
    # 1), on 1,850 different student days, all weekdays; 66 Tardy and 1 Partial are present.
    # Weeks: 186 x 38 + 2 x 17 + 39 x 21 = 7,921. Days enrolled: 186 x 189 + 2 x 85 + 39 x 104
    # = 39,380; present: 39,380 - 1,850 = 37,530.
    outcomes = edfi.import_files(grand_bend, ATTENDANCE)
    assert [(o.kind, o.rows) for o in outcomes] == [("annotations", 1), ("school_attendance", 7921)]
    with grand_bend.cursor() as cur:
        assert cur.execute(
            "select count(*), sum(days_enrolled), sum(days_present) from school_attendance"
        ).fetchall() == [(7921, 39380, 37530)]
        # Student 604822 (school 255901001): absent 2021-08-31, 2021-11-09, 2021-12-15 (and a
        # Partial that day) and 2022-05-18: 189 days enrolled, 185 present.
        assert cur.execute(
            "select sum(days_enrolled), sum(days_present) from school_attendance where student_key = '604822'"
        ).fetchall() == [(189, 185)]
        assert cur.execute(
            """select week_start, days_enrolled, days_present from school_attendance where student_key = '604822'
            and week_start in ('2021-08-30', '2022-01-03') order by 1"""
        ).fetchall() == [(date(2021, 8, 30), 5, 4), (date(2022, 1, 3), 4, 4)]
        # Between the sessions every school is on a break: the district's, one annotation.
        assert cur.execute("select starts_on, ends_on, kind, title, school_id from annotations").fetchall() == [
            (date(2021, 12, 18), date(2022, 1, 3), "break",
             "Between 2021-2022 Fall Semester and 2021-2022 Spring Semester", None)]


@needs_real
def test_a_day_off_in_the_calendar_is_no_day_enrolled_and_a_closure(grand_bend, tmp_path):
    calendar = write_xml(tmp_path / "EducationOrgCalendar.xml", "InterchangeEducationOrgCalendar", """
<Session><SessionName>Fall</SessionName><SchoolYear>2021-2022</SchoolYear><BeginDate>2021-09-06</BeginDate>
<EndDate>2021-09-17</EndDate><SchoolReference><SchoolIdentity><SchoolId>255901044</SchoolId></SchoolIdentity></SchoolReference></Session>
<CalendarDate><Date>2021-09-07</Date><CalendarEvent>uri://ed-fi.org/CalendarEventDescriptor#Weather day</CalendarEvent>
<CalendarReference><CalendarIdentity><SchoolReference><SchoolIdentity><SchoolId>255901044</SchoolId></SchoolIdentity></SchoolReference></CalendarIdentity></CalendarReference></CalendarDate>""")

    def event(day, category, duration="1"):
        return f"""<StudentSchoolAttendanceEvent><AttendanceEvent><EventDate>{day}</EventDate>
<AttendanceEventCategory>uri://ed-fi.org/AttendanceEventCategoryDescriptor#{category}</AttendanceEventCategory>
<EventDuration>{duration}</EventDuration></AttendanceEvent>
<StudentReference><StudentIdentity><StudentUniqueId>604821</StudentUniqueId></StudentIdentity></StudentReference>
<SchoolReference><SchoolIdentity><SchoolId>255901044</SchoolId></SchoolIdentity></SchoolReference>
<SessionReference><SessionIdentity><SessionName>Fall</SessionName><SchoolYear>2021-2022</SchoolYear>
<SchoolReference><SchoolIdentity><SchoolId>255901044</SchoolId></SchoolIdentity></SchoolReference></SessionIdentity></SessionReference>
</StudentSchoolAttendanceEvent>"""

    attendance = write_xml(tmp_path / "StudentSchoolAttendance.xml", "InterchangeStudentAttendance", "\n".join([
        event("2021-09-07", "Unexcused Absence"),  # the weather day: no school, not counted
        event("2021-09-08", "Unexcused Absence", "0.25"),  # a quarter of a day: present
        event("2021-09-14", "Excused Absence"),
    ]))
    edfi.import_files(grand_bend, [calendar, attendance])
    with grand_bend.cursor() as cur:
        # Week of 09-06: Mon-Fri less the weather day = 4 enrolled, all present; week of 09-13: 5, 4.
        assert cur.execute(
            "select week_start, days_enrolled, days_present from school_attendance order by 1"
        ).fetchall() == [(date(2021, 9, 6), 4, 4), (date(2021, 9, 13), 5, 4)]
        assert cur.execute("select starts_on, kind, title, school_id from annotations").fetchall() == [
            (date(2021, 9, 7), "closure", "Weather day", "255901044")]


@needs_real
def test_bad_attendance_is_told_at_its_event(grand_bend, tmp_path):
    attendance = write_xml(tmp_path / "StudentSchoolAttendance.xml", "InterchangeStudentAttendance", """<StudentSchoolAttendanceEvent>
<AttendanceEvent><EventDate>2021-09-07</EventDate>
<AttendanceEventCategory>uri://ed-fi.org/AttendanceEventCategoryDescriptor#Sleeping</AttendanceEventCategory>
<EventDuration>2</EventDuration></AttendanceEvent>
<StudentReference><StudentIdentity><StudentUniqueId>604821</StudentUniqueId></StudentIdentity></StudentReference>
<SchoolReference><SchoolIdentity><SchoolId>255901044</SchoolId></SchoolIdentity></SchoolReference>
<SessionReference><SessionIdentity><SessionName>Fall</SessionName><SchoolYear>2021-2022</SchoolYear>
<SchoolReference><SchoolIdentity><SchoolId>255901044</SchoolId></SchoolIdentity></SchoolReference></SessionIdentity></SessionReference>
</StudentSchoolAttendanceEvent>
<StudentSchoolAttendanceEvent>
<AttendanceEvent><EventDate>2021-09-08</EventDate>
<AttendanceEventCategory>uri://ed-fi.org/AttendanceEventCategoryDescriptor#Tardy</AttendanceEventCategory></AttendanceEvent>
<StudentReference><StudentIdentity><StudentUniqueId>604821</StudentUniqueId></StudentIdentity></StudentReference>
<SchoolReference><SchoolIdentity><SchoolId>255901044</SchoolId></SchoolIdentity></SchoolReference>
<SessionReference><SessionIdentity><SessionName>Fall</SessionName><SchoolYear>2021-2022</SchoolYear>
<SchoolReference><SchoolIdentity><SchoolId>255901044</SchoolId></SchoolIdentity></SchoolReference></SessionIdentity></SessionReference>
</StudentSchoolAttendanceEvent>""")
    with pytest.raises(IngestRejected) as rejected:
        edfi.import_files(grand_bend, [attendance])
    event = "InterchangeStudentAttendance/StudentSchoolAttendanceEvent"
    assert {(p.row, p.column, p.value) for p in rejected.value.problems} == {
        (3, f"{event}[1]/AttendanceEvent/AttendanceEventCategory", "uri://ed-fi.org/AttendanceEventCategoryDescriptor#Sleeping"),
        (3, f"{event}[1]/AttendanceEvent/EventDuration", "2"),
        # No calendar in the import: the session it names is not known.
        (12, f"{event}[2]/{edfi.SESSION}/SessionName", "Fall"),
    }


@needs_real
def test_every_sample_interchange_in_one_command(tmp_path):
    # The Ed-Fi files a district would send together, after its own student records; the
    # numbers are those of the tests above, now through `ciboard import edfi` and `ciboard query`.
    data = str(tmp_path / "data")
    invoke("init", "--school-year", "2021-22", "--data-dir", data)
    assert invoke("import", "edfi", str(REAL / "EducationOrganization.xml"), "--data-dir", data).exit_code == 0
    records = district_records(tmp_path / "students.csv", student_ids())
    assert invoke("ingest", str(records), "--kind", "students", "--data-dir", data).exit_code == 0
    files = [REAL / name for name in ("Student.xml", "StudentProgram.xml", "AssessmentMetadata-StateAssessment.xml",
                                      "StudentAssessment-StateAssessment.xml", "EducationOrgCalendar.xml",
                                      "StudentSchoolAttendance.xml")]
    result = invoke("import", "edfi", *map(str, files), "--subject", "Mathematics", "--data-dir", data)
    assert result.exit_code == 0, result.output
    assert "school year(s) 2020-21 added" in result.output
    assert "StudentSchoolAttendance.xml.csv: accepted" in result.output
    proficient = invoke("query", "series", "--as", "analyst", "--param", "metric=proficient", "--param", "grain=window",
                        "--data-dir", data)
    assert proficient.stdout.splitlines()[1].startswith("2021-03-01,0.5625,16,9.0,16.0")
    # 1,850 absences over 39,380 days enrolled: 37,530 / 39,380 present all year.
    attendance = invoke("query", "series", "--as", "analyst", "--param", "metric=school_attendance_rate",
                        "--param", "grain=month", "--data-dir", data)
    rows = list(csv.DictReader(io.StringIO(attendance.stdout)))
    assert sum(float(r["numerator"]) for r in rows) == 37530
    assert sum(float(r["denominator"]) for r in rows) == 39380


@needs_real
def test_a_break_only_some_schools_have_is_theirs(grand_bend, tmp_path):
    def session(school, name, begins, ends):
        return (f"<Session><SessionName>{name}</SessionName><SchoolYear>2021-2022</SchoolYear><BeginDate>{begins}</BeginDate>"
                f"<EndDate>{ends}</EndDate><SchoolReference><SchoolIdentity><SchoolId>{school}</SchoolId></SchoolIdentity>"
                "</SchoolReference></Session>")

    calendar = write_xml(tmp_path / "EducationOrgCalendar.xml", "InterchangeEducationOrgCalendar", "\n".join([
        session("255901044", "Fall", "2021-08-23", "2021-12-17"),
        session("255901044", "Spring", "2022-01-04", "2022-05-27"),
        session("255901107", "Year", "2021-08-23", "2022-05-27"),
    ]))
    edfi.import_files(grand_bend, [calendar])
    with grand_bend.cursor() as cur:
        assert cur.execute("select starts_on, ends_on, title, school_id from annotations").fetchall() == [
            (date(2021, 12, 18), date(2022, 1, 3), "Between Fall and Spring", "255901044")]
