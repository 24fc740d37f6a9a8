"""The district's spellings of a student's groups, mapped to the dashboard's.

A student information system writes a group its own way: `Y`, `Yes`, `1` or `TRUE`;
`Hispanic/Latino`; an Ed-Fi descriptor URI such as `uri://ed-fi.org/RaceDescriptor#White`.
`SPELLINGS` lists, per field, every spelling this table knows (case and surrounding spaces
aside) and the group it means. A value it does not list is a row problem, never a guess: a
district whose records spell a group another way adds the spelling with the setting
`CIBOARD_STUDENT_GROUP_SPELLINGS` (see `spellings`).

Ed-Fi spellings are those of the Ed-Fi Data Standard's own descriptors (`uri://ed-fi.org/...`);
a district's own descriptor namespace is added through the setting like any other spelling.
"""

BASELINE_BANDS = ("well below", "below", "near", "above")
YES_NO_FIELDS = ("econ_disadvantaged", "english_learner", "special_education")
# The fields a vendor's roster may still state and the district's records now decide.
GROUP_FIELDS = ("school_id", "grade", "race_ethnicity", "gender", *YES_NO_FIELDS, "baseline_band")
# Fields whose spellings map; school ids are the district's own and are looked up as they are.
MAPPED_FIELDS = GROUP_FIELDS[1:]
# Fields whose groups a district may name anew (a race/ethnicity the table lacks is a new group;
# a yes/no, a grade or a band must be one the dashboard has).
OPEN_FIELDS = ("race_ethnicity", "gender")

ED_FI = "uri://ed-fi.org/"

YES_NO = {
    **dict.fromkeys(("y", "yes", "1", "true", "t"), True),
    **dict.fromkeys(("n", "no", "0", "false", "f"), False),
}

GRADE_WORDS = (
    "Kindergarten", "First grade", "Second grade", "Third grade", "Fourth grade", "Fifth grade", "Sixth grade",
    "Seventh grade", "Eighth grade", "Ninth grade", "Tenth grade", "Eleventh grade", "Twelfth grade",
)

SPELLINGS: dict[str, dict[str, object]] = {
    "race_ethnicity": {
        **dict.fromkeys(("Hispanic", "Hispanic or Latino", "Hispanic/Latino", "Hispanic/Latinx", "Latino"), "Hispanic"),
        **dict.fromkeys(
            ("Black", "Black or African American", "African American", "Black/African American",
             ED_FI + "RaceDescriptor#Black - African American"),
            "Black",
        ),
        **dict.fromkeys(("White", ED_FI + "RaceDescriptor#White"), "White"),
        **dict.fromkeys(("Asian", ED_FI + "RaceDescriptor#Asian"), "Asian"),
        **dict.fromkeys(
            ("American Indian", "American Indian or Alaska Native", "American Indian/Alaska Native",
             "Native American", ED_FI + "RaceDescriptor#American Indian - Alaska Native"),
            "American Indian",
        ),
        **dict.fromkeys(
            ("Pacific Islander", "Native Hawaiian or Other Pacific Islander", "Native Hawaiian/Pacific Islander",
             ED_FI + "RaceDescriptor#Native Hawaiian - Pacific Islander"),
            "Pacific Islander",
        ),
        **dict.fromkeys(
            ("Multiracial", "Multi-racial", "Two or more races", "Two or more", "Multiple races", "Multi-ethnic"),
            "Multiracial",
        ),
    },
    "gender": {
        **dict.fromkeys(("F", "Female", ED_FI + "SexDescriptor#Female"), "Female"),
        **dict.fromkeys(("M", "Male", ED_FI + "SexDescriptor#Male"), "Male"),
        **dict.fromkeys(("X", "Nonbinary", "Non-binary"), "Nonbinary"),
    },
    "grade": {
        **{str(g): g for g in range(13)},
        **{f"{g:02d}": g for g in range(10)},
        **dict.fromkeys(("K", "KG"), 0),
        **{word: g for g, word in enumerate(GRADE_WORDS)},
        **{ED_FI + "GradeLevelDescriptor#" + word: g for g, word in enumerate(GRADE_WORDS)},
    },
    "econ_disadvantaged": {
        **YES_NO,
        # Free or reduced-price lunch is the usual measure of poverty in school records.
        **dict.fromkeys(("Free", "Reduced", "Free/Reduced", "FRL"), True),
        "Paid": False,
        ED_FI + "SchoolFoodServiceProgramServiceDescriptor#Free Lunch": True,
        ED_FI + "SchoolFoodServiceProgramServiceDescriptor#Reduced Price Lunch": True,
        ED_FI + "StudentCharacteristicDescriptor#Economic Disadvantaged": True,
    },
    "english_learner": {
        **YES_NO,
        **dict.fromkeys(("EL", "ELL", "LEP"), True),
        # Reclassified and initially fluent students are not English learners now.
        **dict.fromkeys(("RFEP", "IFEP", "EO"), False),
        ED_FI + "LimitedEnglishProficiencyDescriptor#Limited": True,
        ED_FI + "LimitedEnglishProficiencyDescriptor#NotLimited": False,
        ED_FI + "LimitedEnglishProficiencyDescriptor#Formerly Limited": False,
        ED_FI + "ProgramTypeDescriptor#English as a Second Language (ESL)": True,
    },
    "special_education": {
        **YES_NO,
        "IEP": True,
        ED_FI + "ProgramTypeDescriptor#Special Education": True,
    },
    "baseline_band": {
        **{band: band for band in BASELINE_BANDS},
        **{band.replace(" ", "_"): band for band in BASELINE_BANDS if " " in band},
        **{band.replace(" ", "-"): band for band in BASELINE_BANDS if " " in band},
    },
    # Not a group: a test result's performance level, as Ed-Fi's StudentAssessment states it
    # (ciboard/edfi.py), read as proficient or not. A state whose levels are spelled otherwise
    # adds them through the same setting.
    "proficient": {
        **YES_NO,
        **{
            spelling: proficient
            for level, proficient in (
                ("Advanced", True), ("Proficient", True), ("Met Standard", True), ("Pass", True),
                ("Basic", False), ("Below Basic", False), ("Well Below Basic", False),
                ("Did Not Meet Standard", False), ("Fail", False),
            )
            for spelling in (level, ED_FI + "PerformanceLevelDescriptor#" + level)
        },
    },
    # Not groups either: whether an Ed-Fi attendance event is an absence (a tardy or a partial day
    # is not), and whether a calendar event is a day of instruction.
    "absent": {
        **YES_NO,
        **{ED_FI + "AttendanceEventCategoryDescriptor#" + category: absent for category, absent in (
            ("Excused Absence", True), ("Unexcused Absence", True), ("In Attendance", False), ("Tardy", False),
            ("Early departure", False), ("Partial", False),
        )},
    },
    "instructional": {
        **YES_NO,
        **{ED_FI + "CalendarEventDescriptor#" + event: instructional for event, instructional in (
            ("Instructional day", True), ("Make-up day", True), ("Student late arrival/early dismissal", True),
            ("Holiday", False), ("Teacher only day", False), ("Weather day", False), ("Emergency day", False),
            ("Strike", False), ("Non-instructional day", False), ("Other", False),
        )},
    },
}


class BadSpellings(ValueError):
    """The setting's spellings name a field or a group the dashboard does not have."""


def spellings(extra: dict[str, dict[str, str]] | None = None) -> dict[str, dict[str, object]]:
    """The table with a district's own spellings added (the setting student_group_spellings).

    An added spelling names its group as the table spells it: {"english_learner":
    {"uri://district.org/ELStatus#Active": "Yes"}, "race_ethnicity": {"Latinx": "Hispanic"}}.
    A race/ethnicity or gender the table lacks is a new group; a yes/no, grade or band must be
    one the table knows.
    """
    table = {field: {key.lower(): value for key, value in known.items()} for field, known in SPELLINGS.items()}
    for field, added in (extra or {}).items():
        if field not in table:
            raise BadSpellings(f"student_group_spellings: unknown field {field!r}; the fields are {', '.join(table)}")
        for spelling, group in added.items():
            known = table[field].get(str(group).strip().lower())
            if known is None and field not in OPEN_FIELDS:
                raise BadSpellings(
                    f"student_group_spellings: {field} {spelling!r} -> {group!r}: {group!r} is not a {field} the"
                    " table knows (" + ", ".join(sorted({str(v) for v in table[field].values()})) + ")"
                )
            table[field][str(spelling).strip().lower()] = group if known is None else known
    return table


def mapped_sql(column: str, mapping: dict[str, object]) -> str:
    """SQL for the group a spelling means (case and spaces aside); null where the table has none."""

    def literal(value: object) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        return "'" + str(value).replace("'", "''") + "'"

    whens = " ".join(f"when {literal(key)} then {literal(value)}" for key, value in mapping.items())
    return f"case lower(trim({column}::varchar)) {whens} end"


def shown_sql(field: str, value: str) -> str:
    """A group as text the way the dashboard shows it (Yes/No for the yes/no fields)."""
    if field in YES_NO_FIELDS:
        return f"case {value} when true then 'Yes' when false then 'No' end"
    return f"{value}::varchar"
