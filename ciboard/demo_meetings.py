"""The demo district's CI records: three workgroups whose meetings, commitments, root-cause
analysis and PDSA cycles follow the demo's planted effects.

The seed sits above the meeting store and the follow-up analysis: it asks `followup` for the
numbers a meeting saw and gives them to the store to keep, as the meetings page does.
"""

from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone

from ciboard import followup, movements, student_lists
from ciboard.access import ANALYST, Scope
from ciboard.appdb import AppDB
from ciboard.calendar import calendar_for
from ciboard.ci_records import (
    Cause, Commitment, Idea, Observation, PdsaCycle, Person, RootCause, Schedule, Slice, Workgroup, draft_meeting,
    draft_pdsa,
)
from ciboard.meetings import (
    add_observation, choose_idea, save_commitment, save_meeting, save_pdsa, save_root_cause,
    save_workgroup, update_status, workgroups,
)
from ciboard.queries import run
from ciboard.warehouse import Warehouse


# The schools whose coordinators sit in the demo's workgroups: the demo's school account reads them.
COORDINATED_SCHOOLS = ("E08", "M07")

def seed(db: AppDB, warehouse: Warehouse) -> bool:
    """Seeds the demo district's CI records; only into a meeting store with no workgroups
    (returns False and writes nothing otherwise), so running it twice is harmless.

    Three workgroups after the CI guide's sample structure: the district's monthly data
    review, a weekly coordination meeting with Keystone Math Corps (V3), and a monthly review
    with Cardinal Tutors (V5) and its schools. Their records follow the demo's planted effects:
    V3's attendance drop after winter break (finalised meeting, commitments of all three
    parties, one overdue by the next meeting, a draft of that next meeting), V5's English
    learners attending less (a finalised meeting with a five-whys analysis, a "How might we",
    ideas in themes, the chosen idea running as a PDSA cycle, and V5's own commitment), and
    V1's January move into the school day (a PDSA cycle adopted on the evidence of the
    winter assessment). Each workgroup has a monthly schedule on the weekday of its meetings,
    from the month of its first one: the two standing groups' schedules run on, the school
    review's ends with the school year. Dates come from the warehouse's school year and every
    saved time from them, so the same warehouse always gets the same records.
    """
    if workgroups(db, ANALYST):
        return False
    choices = run(warehouse, "choices", ANALYST)
    year = choices.query("dimension == 'school_year' and students > 0")["value"].max()
    schools = dict(choices.query("dimension == 'school_id'")[["value", "label"]].itertuples(index=False))
    vendors = dict(choices.query("dimension == 'vendor_id'")[["value", "label"]].itertuples(index=False))
    cal = calendar_for(year)
    back = cal.winter_break[1] + timedelta(days=3)  # the Monday school reopens
    feb_review, school_review = back + timedelta(days=31), back + timedelta(days=38)
    next_review = feb_review + timedelta(days=28)
    pdsa_start = school_review + timedelta(days=11)
    staff = analyst = facilitator = Scope("facilitator")
    analyst = ANALYST

    def monthly(like: date, hour: int, minutes: int, ends_on: date | None = None) -> Schedule:
        """Monthly on the weekday of `like` that it is in its month (the first Thursday, …)."""
        week = (like.day - 1) // 7 + 1
        return Schedule("monthly", like.weekday(), like.replace(day=1), at=time(hour), minutes=minutes,
                        week_of_month=week if week <= 4 else -1, ends_on=ends_on)

    def at(day: date, hour: int = 16) -> datetime:
        return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc)

    dana = Person("Dana Whitfield", "District", "district", role="Director of academics; owns the tutoring contracts")
    marcus = Person("Marcus Lee", "District", "district", role="Data team lead")
    priya = Person("Priya Raman", "District", "district", role="Academics coordinator for tutoring")
    june = Person("June Albright", "District", "district", role="Procurement and contracts")
    sam = Person("Sam Okafor", vendors.get("V3", "V3"), "vendor", "V3", "Program coordinator")
    rosa = Person("Rosa Delgado", schools.get("E08", "E08"), "school", "E08", "School program coordinator")
    lucia = Person("Lucia Mendes", vendors.get("V5", "V5"), "vendor", "V5", "Program coordinator")
    tomas = Person("Tomás Herrera", schools.get("M07", "M07"), "school", "M07", "School program coordinator")
    grace = Person("Grace Kim", schools.get("E16", "E16"), "school", "E16", "School program coordinator")

    setup = at(cal.program_start - timedelta(days=14), 10)
    data_review = save_workgroup(db, staff, Workgroup(
        name="District data review",
        purpose="Go through the month's analysis, find the trends worth a conversation, agree the data story, "
                "and prepare what to share with vendors and schools.",
        members=[marcus, dana, priya],
        cadence="Monthly, 1 hour, the first Tuesday",
        schedule=monthly(next_review - timedelta(days=2), 9, 60),
        format="In person at the district office",
        decisions=["Which analyses to share and which stories to lead with",
                   "Approve the monthly report before it goes out",
                   "Which topics to raise with each vendor"],
    ), by="analyst", at=setup)
    coordination = save_workgroup(db, staff, Workgroup(
        name=f"District–vendor coordination: {vendors.get('V3', 'V3')}",
        purpose="Solve implementation problems as they come up; once a month, review the process data together "
                "and adjust the program in real time.",
        members=[priya, dana, sam],
        cadence="Weekly, 1 hour; data review the first Thursday of each month",
        schedule=monthly(feb_review, 15, 60),  # the data reviews, which are the meetings recorded here
        format="Video call; data review screen-shared from CI Board",
        decisions=["Read the data and agree the story together",
                   "Raise barriers and agree changes at school, vendor and district level"],
        vendor_ids=["V3"],
    ), by="facilitator", at=setup)
    school_group = save_workgroup(db, staff, Workgroup(
        name=f"District–vendor–school review: {vendors.get('V5', 'V5')} schools",
        purpose="Review each school's data and story with its coordinator; share what works, name what gets in "
                "the way, and agree changes.",
        members=[priya, lucia, tomas, grace],
        cadence="Monthly, 15–30 minutes per school",
        schedule=monthly(school_review, 14, 90, ends_on=cal.last_school_day),
        format="In person at each school, rotating",
        decisions=["Raise barriers and agree changes",
                   "What to share with the school's leadership and teachers"],
        vendor_ids=["V5"],
    ), by="facilitator", at=setup)

    # V3's attendance fell after winter break: the coordination meeting in February.
    held = save_meeting(db, staff, replace(draft_meeting(coordination, feb_review), agenda={
        "operations": "Keystone lost two tutors at Hamilton in January; both posts are filled from 9 February. "
                      "The district's late-bus schedule changed on 5 January.",
        "outcomes_data": "Tutoring attendance has run about 8 points lower since mid-December, at every Keystone "
                         "school; school attendance recovered after the break, tutoring attendance did not. "
                         "Sessions logs arrived on time.",
        "partnerships": "Keystone learns of absences only from its own logs; the school office knows the reasons "
                        "first. Agreed that absence lists should flow weekly.",
        "next_steps": "Three commitments below; look again at the March data review.",
    }), by="facilitator", at=at(feb_review - timedelta(days=2), 9))
    calls = save_commitment(db, staff, Commitment(
        party="vendor", party_id="V3", owner=sam.name, made_on=feb_review, meeting_id=held.id,
        action="Call the family of every student who has missed three or more sessions since winter break, "
               "and log the reason each gives",
        due_on=feb_review + timedelta(days=15), metric_id="tutoring_attendance_rate", slice=Slice(vendor_id="V3"),
    ), by="facilitator", at=at(feb_review, 11))
    absences = save_commitment(db, staff, Commitment(
        party="district", owner=priya.name, made_on=feb_review, meeting_id=held.id,
        action="Send Keystone every Monday the list of its students who were absent from school the week before",
        due_on=feb_review + timedelta(days=8), metric_id="tutoring_attendance_rate", slice=Slice(vendor_id="V3"),
    ), by="facilitator", at=at(feb_review, 11))
    save_commitment(db, staff, Commitment(
        party="school", party_id="E08", owner=rosa.name, made_on=feb_review, meeting_id=held.id,
        action="Keep the tutoring block free of assemblies and make-up testing through March",
        due_on=feb_review + timedelta(days=50), metric_id="tutoring_attendance_rate",
        slice=Slice(vendor_id="V3", school_id="E08"),
    ), by="facilitator", at=at(feb_review, 11))
    prefill = followup.outcomes_prefill(warehouse, db, facilitator, coordination.id, feb_review)
    followup.finalise(warehouse, db, facilitator, held.id, followup.snapshot(prefill),
                      by="facilitator", at=at(feb_review, 17))

    # V5's English learners attend less: the school review digs into why.
    reviewed = save_meeting(db, staff, replace(draft_meeting(school_group, school_review), agenda={
        "operations": "All five schools running; Chavez Middle moved its sessions to 3:45 after the bus change.",
        "outcomes_data": "English learners attend about 10 points less than other Cardinal students, all year and "
                         "at every school; nothing on the control chart suggests it is changing by itself.",
        "partnerships": "School offices hold each family's home language; Cardinal does not receive it.",
        "next_steps": "Test bilingual reminders (PDSA below); Cardinal gathers contact languages.",
    }), by="facilitator", at=at(school_review - timedelta(days=2), 9))
    slice_el = Slice(vendor_id="V5", dimension="english_learner", value="true")
    analysis = save_root_cause(db, staff, RootCause(
        metric_id="tutoring_attendance_rate", slice=slice_el, meeting_id=reviewed.id,
        problem="English learners at Cardinal's schools attend about 10 points fewer of their tutoring sessions "
                "than other Cardinal students, and have all year.",
        whys=[
            "They miss more sessions, mostly the first one of the week.",
            "Families often do not know a session is on: schedule changes reach them late or not at all.",
            "Reminders go out only by e-mail and only in English.",
            "Cardinal's messaging holds one contact language per student, and the roster it gets has none.",
            "The roster extract was set when the contract was signed, and no one owns changing it.",
        ],
        causes=[
            Cause("Reminders only in English, only by e-mail", controllable=True, priority=1),
            Cause("The roster sent to vendors has no home language", controllable=True, priority=2),
            Cause("Parents' evening shifts make pick-up after late sessions hard", controllable=False),
        ],
        hmw=["How might we make sure every family knows, in their own language, when their child's next session is?"],
        ideas=[
            Idea("Text families a reminder in their home language the day before each session", "Reaching families"),
            Idea("A bilingual tutor calls after two missed sessions in a row", "Reaching families"),
            Idea("Add home language to the roster extract sent to vendors", "Data sharing"),
            Idea("Move the Monday session into the school day at the middle school", "Scheduling"),
        ],
    ), by="facilitator", at=at(school_review, 15))
    cycle = replace(
        draft_pdsa(analysis, 0, pdsa_start),
        title="Reminders in the home language",
        change="Cardinal texts each English learner's family the day before every session, in the family's "
               "language, starting at Chavez Middle and Parks Elementary.",
        prediction="English learners' tutoring attendance at Cardinal rises by about 5 points within six weeks.",
        ends_on=pdsa_start + timedelta(days=39),
    )
    analysis, cycle = choose_idea(db, staff, analysis.id, 0, cycle, by="facilitator", revision=analysis.revision,
                                  at=at(school_review, 16))
    languages = save_commitment(db, staff, Commitment(
        party="vendor", party_id="V5", owner=lucia.name, made_on=school_review, meeting_id=reviewed.id,
        action="Collect each English learner's family contact language from the school offices for the reminder test",
        due_on=school_review + timedelta(days=29), metric_id="tutoring_attendance_rate", slice=slice_el,
    ), by="facilitator", at=at(school_review, 16))
    save_commitment(db, staff, Commitment(
        party="district", owner=marcus.name, made_on=school_review, meeting_id=reviewed.id,
        action="Add home language to the roster extract sent to Cardinal, after the privacy review",
        due_on=school_review + timedelta(days=77), metric_id="tutoring_attendance_rate", slice=slice_el,
    ), by="facilitator", at=at(school_review, 16))
    prefill = followup.outcomes_prefill(warehouse, db, facilitator, school_group.id, school_review)
    followup.finalise(warehouse, db, facilitator, reviewed.id, followup.snapshot(prefill),
                      by="facilitator", at=at(school_review, 17))

    # What happened next, as the people involved logged it.
    update_status(db, Scope("vendor", "V3"), calls.id, "in_progress", by="vendor-v3", revision=calls.revision,
                          note="Reached 41 families so far; the new late-bus times come up most.",
                          at=at(feb_review + timedelta(days=7)))
    update_status(db, staff, absences.id, "done", by="facilitator", revision=absences.revision,
                  note="Sent on the 9th and the 16th; the data team now sends it automatically.",
                  at=at(feb_review + timedelta(days=11)))
    update_status(db, Scope("vendor", "V5"), languages.id, "in_progress", by="vendor-v5", revision=languages.revision,
                  note="Three of five school offices have sent their lists.", at=at(pdsa_start - timedelta(days=3)))
    add_observation(db, staff, cycle.id, "Reminders went to 118 families in four languages; 9 numbers bounced.",
                    by="facilitator", on=pdsa_start + timedelta(days=7), at=at(pdsa_start + timedelta(days=7)))
    add_observation(db, staff, cycle.id, "Tutors at Chavez say Monday groups are fuller; no change heard at Parks.",
                    by="facilitator", on=pdsa_start + timedelta(days=14), at=at(pdsa_start + timedelta(days=14)))

    # V1's January move into the school day, tested as a PDSA cycle and studied on the assessments.
    v1 = save_pdsa(db, staff, PdsaCycle(
        title="Tutoring inside the school day",
        metric_id="met_growth_target", slice=Slice(vendor_id="V1"), start_on=cal.program_change_v1,
        change="BrightPath moves tutoring from after school into the intervention block and adds a weekly "
               "check-in with each student's teacher.",
        prediction="More BrightPath students meet their growth target at the winter assessment than in the fall.",
        ends_on=cal.windows["winter"] + timedelta(days=20),
        observations=[
            Observation(cal.program_change_v1 + timedelta(days=8), "Every BrightPath school runs the new schedule.",
                        "analyst"),
            Observation(cal.program_change_v1 + timedelta(days=29),
                        "Teacher check-ins logged for about four in five students.", "analyst"),
        ],
    ), by="analyst", at=at(cal.program_change_v1 - timedelta(days=5)))
    study = movements.pdsa_study(warehouse, analyst, v1)
    if study.status == "ok":
        v1 = save_pdsa(db, staff, replace(
            v1,
            study=f"{study.before.value:.0%} met the growth target in the fall window and {study.after.value:.0%} in "
                  f"the winter window ({study.difference * 100:+.0f} points, 95% CI {study.low * 100:+.0f} to "
                  f"{study.high * 100:+.0f}). The prediction held.",
            act="adopt",
            act_note="Keep tutoring in the school day at every BrightPath school and bring the teacher check-in "
                     "to the coordination meetings as a practice to share.",
        ), by="analyst", at=at(date.fromisoformat(study.after.end) + timedelta(days=14)))

    # The meetings coming up: the district's March review and the next coordination meeting.
    save_meeting(db, staff, replace(draft_meeting(data_review, next_review - timedelta(days=2)), agenda={
        "operations": "Spring testing window dates confirmed.",
        "outcomes_data": "", "partnerships": "", "next_steps": "",
    }), by="analyst", at=at(next_review - timedelta(days=9), 9))
    save_meeting(db, staff, replace(draft_meeting(coordination, next_review), agenda={
        "operations": "Both Hamilton tutor posts filled.",
        "outcomes_data": "", "partnerships": "", "next_steps": "",
    }), by="facilitator", at=at(next_review - timedelta(days=7), 9))
    return True


def seed_follow_ups(db: AppDB, warehouse: Warehouse) -> bool:
    """Seeds the follow-up log of the demo's persistently absent students, as their vendors and
    the district worked them in February: every fourth student on the list five weeks after
    winter break is contacted within the week; of those, some re-engage, a few are substituted
    or dis-enrolled in March. Only into a log with nothing in it (returns False otherwise); the
    same warehouse always gets the same log."""
    if student_lists.latest(db, ANALYST):
        return False
    year = run(warehouse, "choices", ANALYST).query("dimension == 'school_year' and students > 0")["value"].max()
    read_on = calendar_for(year).winter_break[1] + timedelta(days=38)
    absent = student_lists.lists(warehouse, ANALYST, read_on)["absent"]
    for i, row in enumerate(absent.iloc[::4].itertuples()):
        vendor_staff = f"vendor-{row.vendor_id.lower()}"
        contacted = read_on + timedelta(days=1 + i % 5)
        student_lists.log_status(
            db, warehouse, ANALYST, row.student_key, "absent", "contacted", by=vendor_staff,
            note="Called the family; tutoring times checked against the student's schedule.",
            on=contacted, at=datetime(contacted.year, contacted.month, contacted.day, 17, tzinfo=timezone.utc),
        )
        outcome = ("re-engaged", "re-engaged", None, "substituted", "re-engaged", "dis-enrolled", None)[i % 7]
        if outcome is None:
            continue
        later = contacted + timedelta(days=14 + i % 9)
        notes = {
            "re-engaged": "Attending again since the new time slot.",
            "substituted": "Family declined; the seat went to the next student on the school's wait list.",
            "dis-enrolled": "Moved out of the district.",
        }
        student_lists.log_status(
            db, warehouse, ANALYST, row.student_key, "absent", outcome, by="analyst" if outcome == "dis-enrolled" else vendor_staff,
            note=notes[outcome], on=later, at=datetime(later.year, later.month, later.day, 17, tzinfo=timezone.utc),
        )
    return True
