"""Presentation mode, as a facilitator screen-shares it in a CI meeting: vendors as Vendor A to F,
the same letter for the same vendor on every page and in every download, the filters in the
header line, no student rows, and small groups hidden wherever they would show.

The letters are a shuffle each meeting draws (ciboard.letters); with no meeting on the day, the
day's. These tests read today's letters the way the screen draws them.
"""

import json
from datetime import date

import pytest

from ciboard import letters, queries
from ciboard.access import Scope
from ciboard.appdb import AppDB
from conftest import VENDOR_LABELS, default_dates, download, downloads, figures, open_page, plotted
from test_vendor_slice import NAMES, PAGES, VENDORS, shown, traces_of

PRESENTING = {"present": "true", "alias": "true"}
ATTENDANCE = "tutoring_attendance_rate"
# Each page with vendors on it, where it has a way to show them (V4's letter stands for "V4").
SHOWING_VENDORS = {
    "overview": {},
    "trends": {"split": "vendor"},
    "disparities": {"by": "Vendor"},
    "vendors": {"profile": "V4"},
    "relationships": {"colour": "Vendor"},
    "data_quality": {},
    "data_map": {"q": "vendor"},
}


def todays_letters(warehouse, meeting: str | None = None) -> letters.Letters:
    """The letters a presenter's screen shows today (no demo meeting is held today), or `meeting`'s."""
    return letters.for_meeting(AppDB.of(warehouse.settings), meeting or letters.day_key(date.today()), NAMES)


@pytest.fixture
def LETTER(dashboard) -> dict[str, str]:
    return todays_letters(dashboard).aliases


def chart(app, key: str) -> dict:
    return next(json.loads(c.proto.spec) for c in app.get("plotly_chart") if c.proto.id.endswith(f"-{key}"))


def trace(figure: dict, name: str) -> dict:
    return next(t for t in figure["data"] if t.get("name") == name)


@pytest.mark.parametrize("page", PAGES)
def test_no_vendor_is_named_while_presenting(dashboard, LETTER, page):
    query = {**PRESENTING, **{k: LETTER.get(v, v) for k, v in SHOWING_VENDORS[page].items()}}
    app = open_page(f"app_pages/{page}.py", query=query, user="facilitator")
    texts = shown(app, query)
    assert not traces_of(VENDORS, texts)
    if page != "data_map":
        assert any(LETTER["V1"] in text for where, text in texts if not where.startswith(("Toggle", "address"))), page

    header = app.caption[0].value
    assert header.startswith(":material/co_present: Presenting · all students · Aug 1, 2025 – Jul 31, 2026")
    # No student rows: not on screen, not in a download, not offered as chart points.
    assert all("student_key" not in frame.value.columns for frame in app.dataframe)
    assert all(b"student_key" not in content for content in downloads(app).values())
    assert "Students persistently absent from tutoring" not in [s.value for s in app.subheader]
    assert all(o.content != "Students" for group in app.get("button_group") for o in group.proto.options)


def test_the_same_vendor_has_the_same_letter_everywhere(dashboard, LETTER):
    span = default_dates(dashboard)
    facilitator = Scope("facilitator")

    # The filter bar: letters for options, a letter in the address chooses that vendor.
    app = open_page("app_pages/trends.py", query={**PRESENTING, "vendor": LETTER["V3"], "el": "Yes"}, user="facilitator")
    assert app.session_state["vendor"] == ["V3"]
    assert app.caption[0].value.startswith(
        f":material/co_present: Presenting · Vendor: {LETTER['V3']}; English learner: yes · Aug 1, 2025 – Jul 31, 2026"
    )
    v3 = queries.run(dashboard, "series", facilitator, {"metric": ATTENDANCE, "grain": "week", "vendor_id": ["V3"],
                                                        "english_learner": ["true"], **span})
    line = trace(figures(app)[0], "Tutoring attendance rate")
    assert plotted(line) == pytest.approx(v3["value"].tolist(), nan_ok=True)
    assert download(app, f"trend-{ATTENDANCE}-week")["value"].notna().sum() == v3["value"].notna().sum()

    # Overview: what each contract earned, by letter, in the chart.
    app = open_page("app_pages/overview.py", query=PRESENTING, user="facilitator")
    payments = queries.run(dashboard, "payments", facilitator, {"end": span["end"]})
    earned = payments.drop_duplicates(["vendor_id", "contract_starts_on"]).set_index("vendor_id")["amount_earned"]
    bars = trace(chart(app, "payments"), "Earned")
    assert dict(zip(bars["y"], plotted(bars, "x"))) == pytest.approx({LETTER[v]: e for v, e in earned.items()})
    freshness = next(f.value for f in app.dataframe if "vendor" in f.value.columns)
    assert freshness["vendor"].tolist() == sorted(LETTER.values())

    # Vendors: each vendor's value by letter, on screen and in the download; the cap binds for V2.
    app = open_page("app_pages/vendors.py", query=PRESENTING, user="facilitator")
    values = queries.run(dashboard, "vendors", facilitator, {"metric": ATTENDANCE, **span}).set_index("vendor_id")["value"]
    dots = chart(app, "side-by-side")["data"][0]
    assert list(dots["y"]) == sorted(LETTER.values()), "in letter order: the order of the ids would give them away"
    assert dict(zip(dots["y"], plotted(dots, "x"))) == pytest.approx({LETTER[v]: x for v, x in values.items()})
    table = download(app, f"vendors-{ATTENDANCE}").set_index("vendor_id")
    assert table["value"].to_dict() == pytest.approx({LETTER[v]: x for v, x in values.items()})
    assert f"the cap binds for **{LETTER['V2']}**" in " ".join(m.value for m in app.markdown)
    assert set(download(app, "payments")["vendor_id"]) == set(LETTER.values())

    # Data quality: V4's letter is the one late with its files, as V4 is.
    app = open_page("app_pages/data_quality.py", query=PRESENTING, user="facilitator")
    quality = queries.run(dashboard, "quality", facilitator, span)
    late = quality[(quality["vendor_id"] == "V4") & (quality["kind"] == "sessions") & (quality["status"] == "late")]
    line = next(m.value for m in app.markdown if f"**{LETTER['V4']}**" in m.value)
    assert f"session logs: {len(late)} of" in line and "weeks late" in line
    # A rejected file's name and the tutor ids in its rows carry the vendor's id: they read the letter.
    rejected = download(app, "rejected-rows")
    assert rejected["file_name"].str.contains(LETTER["V2"]).all() and not traces_of(VENDORS, [("csv", rejected.to_csv())])

    # Trends marks V1's program change by its letter.
    app = open_page("app_pages/trends.py", query=PRESENTING, user="facilitator")
    notes = [a.get("text", "") for a in figures(app)[0]["layout"]["annotations"]]
    assert f"{LETTER['V1']} moves sessions into the school day" in notes


def test_a_small_group_reads_fewer_than_10_and_is_not_plotted(dashboard, LETTER):
    query = {**PRESENTING, "vendor": LETTER["V5"], "by": "Race/ethnicity"}
    app = open_page("app_pages/disparities.py", query=query, user="facilitator")
    small = {"Multiracial", "Pacific Islander"}  # 9 and 3 students at V5
    table = app.dataframe[0].value.set_index("Group")
    for group in small:
        assert table.loc[group, "Tutoring attendance rate"] == "fewer than 10 students"
        assert table.loc[group, "Students"] == "fewer than 10"
    exported = download(app, f"gaps-{ATTENDANCE}-by-race_ethnicity").set_index("group")
    for group in small:
        assert exported.loc[group, "value"].startswith("hidden: fewer than 10 students")
        assert exported.loc[group, "n"].startswith("hidden: fewer than 10 students")
    groups = next(f for f in figures(app) if f["layout"]["title"]["text"].endswith("by race/ethnicity"))
    assert small.isdisjoint(groups["data"][0]["y"])
    assert {f"{g}: fewer than 10 students" for g in small} <= {a["text"] for a in groups["layout"]["annotations"]}

    # A filter that leaves only a small group: nothing plotted, and it says why.
    app = open_page("app_pages/trends.py", query={**PRESENTING, "vendor": LETTER["V5"], "race": "Pacific Islander"},
                    user="facilitator")
    assert not app.get("plotly_chart")
    assert "Fewer than 10 students in every period with these filters" in " ".join(i.value for i in app.info)


def test_an_analyst_presenting_sees_what_a_facilitator_sees(dashboard):
    query = {"present": "true", "vendor": VENDOR_LABELS["V5"], "by": "Race/ethnicity"}
    app = open_page("app_pages/disparities.py", query=query, user="analyst")
    assert app.caption[0].value.startswith(":material/co_present: Presenting · Vendor: Cardinal Tutors")
    exported = download(app, f"gaps-{ATTENDANCE}-by-race_ethnicity").set_index("group")
    assert exported.loc["Pacific Islander", "n"].startswith("hidden: fewer than 10 students")
    assert "Students persistently absent from tutoring" not in [s.value for s in app.subheader]
    assert not any(key.endswith("download-absent-students") for key in downloads(app))

    # Series hide small periods too: the analyst's own view shows them, flagged.
    small = {**query, "race": "Pacific Islander"}
    app = open_page("app_pages/trends.py", query=small, user="analyst")
    assert not app.get("plotly_chart")
    app = open_page("app_pages/trends.py", query={k: v for k, v in small.items() if k != "present"}, user="analyst")
    line = trace(figures(app)[0], "Tutoring attendance rate")
    assert line["marker"]["symbol"].count("circle-open") == len(plotted(line)) > 0, "every point is a small group, flagged"
    assert "flagged small_cell" in app.caption[-1].value

    app = open_page("app_pages/relationships.py", query={"present": "true"}, user="analyst")
    assert [o.content for o in app.get("button_group")[0].proto.options] == ["Groups"]


def test_switching_aliases_on_keeps_the_choices_and_rewrites_the_address(dashboard, LETTER):
    chosen = {"present": "true", "vendor": [VENDOR_LABELS["V3"], VENDOR_LABELS["V4"]], "profile": VENDOR_LABELS["V4"]}
    app = open_page("app_pages/vendors.py", query=chosen, user="facilitator")
    assert (app.session_state["vendor"], app.session_state["profile"]) == (["V3", "V4"], "V4")

    app.session_state["alias"] = True  # the sidebar toggle, out of AppTest's reach after the first run
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.session_state["vendor"] == ["V3", "V4"]
    assert app.query_params["vendor"] == [LETTER["V3"], LETTER["V4"]] and app.query_params["profile"] == LETTER["V4"]
    assert LETTER["V4"] in [s.value for s in app.subheader]
    assert not traces_of(VENDORS, shown(app))

    app.session_state["alias"] = False
    app.run()
    assert app.query_params["profile"] == VENDOR_LABELS["V4"]
    assert app.query_params["vendor"] == [VENDOR_LABELS["V3"], VENDOR_LABELS["V4"]]


def test_aliases_replace_ids_and_names_wherever_they_stand():
    import pandas as pd

    named = {"V1": ("BrightPath Tutoring", "Vendor A"), "V2": ("Lumen Learning Partners", "Vendor B"),
             "V10": ("Tenth Tutors", "Vendor J")}
    frame = pd.DataFrame({
        "text": ["sessions_V2_2025-10-13.csv", "V2-T0055", "V20 is no vendor", "BrightPath Tutoring moves", "V10, V1", None],
        "vendor_id": ["V1", "V2", "V10", None, "V1", "V2"],
        "n": [1, 2, 3, 4, 5, 6],
    })
    shown = letters.Letters(named, {}).frame(frame)
    assert shown["text"].tolist()[:5] == [
        "sessions_Vendor B_2025-10-13.csv", "Vendor B-T0055", "V20 is no vendor", "Vendor A moves", "Vendor J, Vendor A",
    ]
    assert shown["vendor_id"].tolist()[:3] == ["Vendor A", "Vendor B", "Vendor J"]
    assert shown["n"].tolist() == frame["n"].tolist()
    assert [letters.letter(i) for i in (0, 5, 25, 26, 27)] == ["A", "F", "Z", "AA", "AB"]


def test_each_meeting_draws_its_own_letters():
    key, other_key = b"a secret" * 4, b"another secret" * 2
    vendors = {f"V{i}": f"Vendor number {i}" for i in range(1, 7)}
    drawn = {m: letters.Letters.draw(key, letters.meeting_key(m), vendors).aliases for m in range(1, 41)}
    # A meeting's letters are the same whenever they are drawn, each vendor its own letter.
    assert letters.Letters.draw(key, letters.meeting_key(7), vendors).aliases == drawn[7]
    assert all(sorted(a.values()) == [f"Vendor {c}" for c in "ABCDEF"] for a in drawn.values())
    # Meetings differ, and id order (V1 = A) is no more common than chance (1 in 720).
    assert len({tuple(sorted(a.items())) for a in drawn.values()}) > 30
    in_id_order = {v: f"Vendor {c}" for v, c in zip(sorted(vendors), "ABCDEF")}
    assert sum(a == in_id_order for a in drawn.values()) <= 1
    # Each letter lands on every vendor in some meeting: nothing ties a letter to an id.
    assert all({a[v] for a in drawn.values()} == set(in_id_order.values()) for v in vendors)
    # Without the secret the order is not the same: the ids and the meeting's number do not give it.
    assert sum(letters.Letters.draw(other_key, letters.meeting_key(m), vendors).aliases == drawn[m]
               for m in drawn) <= 2


def test_people_of_a_vendor_read_as_its_staff():
    vendors = {"V3": "Keystone Math Corps", "V5": "Cardinal Tutors"}
    people = (
        ("V3", ("Sam Okafor",), True), ("V3", ("Keystone Math Corps (vendor)", "vendor-v3"), False),
        ("V5", ("Lucia Mendes",), True), ("V5", ("Lucia Mendes", "lmendes"), False),
        ("", ("Dana Whitfield",), True), ("", ("Marcus Lee",), True), ("V5", ("Ana Lee",), True),
    )
    shown = letters.Letters.draw(b"k" * 32, letters.meeting_key(4), vendors, people)
    c, e = shown.aliases["V3"], shown.aliases["V5"]
    text = shown.text("Attendees: Sam Okafor (Keystone Math Corps), Lucia Mendes (Cardinal Tutors (V5)), Dana Whitfield "
                      "(District). Sam will call Ms. Mendes; lmendes saved; vendor-v3 wrote; Lee and Ana Lee agreed.")
    assert shown.text("Keystone lost two tutors; Cardinal's sites") == f"{c} lost two tutors; {e}'s sites"
    sam, lucia = shown.people["Sam Okafor"], shown.people["Lucia Mendes"]
    assert sam.startswith(f"{c} staff ") and lucia.startswith(f"{e} staff ")
    assert text == (f"Attendees: {sam} ({c}), {lucia} ({e}), Dana Whitfield (District). {sam} will call Ms. {lucia}; "
                    f"{lucia} saved; {shown.people['vendor-v3']} wrote; Lee and {shown.people['Ana Lee']} agreed.")
    # A member's account is that member; Lee is a district name too, so it stands alone unchanged.
    assert shown.people["lmendes"] == lucia and "Lee" not in shown.people
    assert {shown.people["Sam Okafor"], shown.people["vendor-v3"]} == {f"{c} staff 1", f"{c} staff 2"}


def test_the_meeting_being_run_letters_the_screen_and_its_packet_alike(dashboard):
    from ciboard import meetings, packet, packet_files
    from ciboard.access import ANALYST

    db = AppDB.of(dashboard.settings)
    [draft] = [m for m in meetings.meetings(db, ANALYST)
               if m.status == "draft" and meetings.workgroup(db, ANALYST, m.workgroup_id).vendor_ids == ["V3"]]
    app = open_page("app_pages/meetings.py", query=PRESENTING, user="facilitator",
                    state={"workgroup": draft.workgroup_id, "meeting": draft.id})
    assert app.session_state["running_meeting"] == draft.id

    made = packet.build(dashboard, db, Scope("facilitator"), draft.id, lettered=True)
    v3, sam = made.letters.aliases["V3"], made.letters.people["Sam Okafor"]
    assert sam.startswith(f"{v3} staff ")
    attendees = next(c.value for c in app.caption if c.value.startswith("Attendees"))
    assert f"{sam} ({v3})" in attendees and "Okafor" not in attendees
    markdown = packet_files.to_markdown(made)
    assert f"| {sam} | {v3} |" in markdown
    assert not traces_of(VENDORS, [("packet", markdown), ("file", packet_files.filename(made, "md"))])
    assert "Okafor" not in markdown and "Sam " not in markdown

    # Every other page keeps the meeting's letters while it runs: what each contract earned, by the packet's letter.
    app = open_page("app_pages/overview.py", query=PRESENTING, user="facilitator", state={"running_meeting": draft.id})
    payments = queries.run(dashboard, "payments", Scope("facilitator"), {"end": default_dates(dashboard)["end"]})
    earned = payments.drop_duplicates(["vendor_id", "contract_starts_on"]).set_index("vendor_id")["amount_earned"]
    bars = trace(chart(app, "payments"), "Earned")
    assert dict(zip(bars["y"], plotted(bars, "x"))) == pytest.approx({made.letters.aliases[v]: e for v, e in earned.items()})


def test_presenting_trends_folds_its_controls_under_one_line_saying_what_is_charted(dashboard):
    shown = open_page("app_pages/trends.py", query={"present": "true", "compare": "last year", "split": "grade"},
                      user="facilitator")
    assert not shown.exception
    [folded] = [e for e in shown.expander if e.label == "Change what is charted"]
    assert {s.label for s in folded.selectbox} >= {"Metric", "Compare with", "Split by"}
    assert [d.label for d in folded.date_input] == ["Known change: new limits from"]
    said = [m.value for m in shown.markdown if m.value.startswith("**Tutoring attendance rate** · by ")]
    assert said == ["**Tutoring attendance rate** · by week · compared with last year · split by grade"]

    at_desk = open_page("app_pages/trends.py", query={"compare": "last year"}, user="facilitator")
    assert not [e for e in at_desk.expander if e.label == "Change what is charted"]
    assert "Compare with" in [s.label for s in at_desk.main.selectbox]
