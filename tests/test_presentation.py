"""Presentation mode, as a facilitator screen-shares it in a CI meeting: vendors as Vendor A to F,
the same letter for the same vendor on every page and in every download, the filters in the
header line, no student rows, and small groups hidden wherever they would show.

The letters go by vendor id: V1 is Vendor A, V6 Vendor F.
"""

import json

import pytest

from ciboard import queries
from ciboard.access import Scope
from conftest import VENDOR_LABELS, default_dates, download, downloads, figures, open_page, plotted
from test_vendor_slice import PAGES, VENDORS, shown, traces_of

PRESENTING = {"present": "true", "alias": "true"}
LETTER = {v: f"Vendor {'ABCDEF'[i]}" for i, v in enumerate(VENDORS)}
ATTENDANCE = "tutoring_attendance_rate"
# Each page with vendors on it, where it has a way to show them.
SHOWING_VENDORS = {
    "overview": {},
    "trends": {"split": "vendor"},
    "disparities": {"by": "Vendor"},
    "vendors": {"profile": "Vendor D"},
    "relationships": {"colour": "Vendor"},
    "data_quality": {},
    "data_map": {"q": "vendor"},
}


def chart(app, key: str) -> dict:
    return next(json.loads(c.proto.spec) for c in app.get("plotly_chart") if c.proto.id.endswith(f"-{key}"))


def trace(figure: dict, name: str) -> dict:
    return next(t for t in figure["data"] if t.get("name") == name)


@pytest.mark.parametrize("page", PAGES)
def test_no_vendor_is_named_while_presenting(dashboard, page):
    query = {**PRESENTING, **SHOWING_VENDORS[page]}
    app = open_page(f"app_pages/{page}.py", query=query, user="facilitator")
    texts = shown(app, query)
    assert not traces_of(VENDORS, texts)
    if page != "data_map":
        assert any("Vendor A" in text for where, text in texts if not where.startswith(("Toggle", "address"))), page

    header = app.caption[0].value
    assert header.startswith(":material/co_present: Presenting · all students · Aug 1, 2025 – Jul 31, 2026")
    # No student rows: not on screen, not in a download, not offered as chart points.
    assert all("student_key" not in frame.value.columns for frame in app.dataframe)
    assert all(b"student_key" not in content for content in downloads(app).values())
    assert "Students persistently absent from tutoring" not in [s.value for s in app.subheader]
    assert all(o.content != "Students" for group in app.get("button_group") for o in group.proto.options)


def test_the_same_vendor_has_the_same_letter_everywhere(dashboard):
    span = default_dates(dashboard)
    facilitator = Scope("facilitator")

    # The filter bar: letters for options, a letter in the address chooses that vendor.
    app = open_page("app_pages/trends.py", query={**PRESENTING, "vendor": "Vendor C", "el": "Yes"}, user="facilitator")
    assert app.session_state["vendor"] == ["V3"]
    assert app.caption[0].value.startswith(
        ":material/co_present: Presenting · Vendor: Vendor C; English learner: yes · Aug 1, 2025 – Jul 31, 2026"
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
    assert freshness["vendor"].tolist() == [LETTER[v] for v in VENDORS]

    # Vendors: each vendor's value by letter, on screen and in the download; the cap binds for V2.
    app = open_page("app_pages/vendors.py", query=PRESENTING, user="facilitator")
    values = queries.run(dashboard, "vendors", facilitator, {"metric": ATTENDANCE, **span}).set_index("vendor_id")["value"]
    dots = chart(app, "side-by-side")["data"][0]
    assert dict(zip(dots["y"], plotted(dots, "x"))) == pytest.approx({LETTER[v]: x for v, x in values.items()})
    table = download(app, f"vendors-{ATTENDANCE}").set_index("vendor_id")
    assert table["value"].to_dict() == pytest.approx({LETTER[v]: x for v, x in values.items()})
    assert "the cap binds for **Vendor B**" in " ".join(m.value for m in app.markdown)
    assert set(download(app, "payments")["vendor_id"]) == set(LETTER.values())

    # Data quality: Vendor D is the one late with its files, as V4 is.
    app = open_page("app_pages/data_quality.py", query=PRESENTING, user="facilitator")
    quality = queries.run(dashboard, "quality", facilitator, span)
    late = quality[(quality["vendor_id"] == "V4") & (quality["kind"] == "sessions") & (quality["status"] == "late")]
    line = next(m.value for m in app.markdown if "**Vendor D**" in m.value)
    assert f"session logs: {len(late)} of" in line and "weeks late" in line
    # A rejected file's name and the tutor ids in its rows carry the vendor's id: they read the letter.
    rejected = download(app, "rejected-rows")
    assert rejected["file_name"].str.contains("Vendor B").all() and not traces_of(VENDORS, [("csv", rejected.to_csv())])

    # Trends marks V1's program change by its letter.
    app = open_page("app_pages/trends.py", query=PRESENTING, user="facilitator")
    notes = [a.get("text", "") for a in figures(app)[0]["layout"]["annotations"]]
    assert "Vendor A moves sessions into the school day" in notes


def test_a_small_group_reads_fewer_than_10_and_is_not_plotted(dashboard):
    query = {**PRESENTING, "vendor": "Vendor E", "by": "Race/ethnicity"}
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
    app = open_page("app_pages/trends.py", query={**PRESENTING, "vendor": "Vendor E", "race": "Pacific Islander"},
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


def test_switching_aliases_on_keeps_the_choices_and_rewrites_the_address(dashboard):
    chosen = {"present": "true", "vendor": [VENDOR_LABELS["V3"], VENDOR_LABELS["V4"]], "profile": VENDOR_LABELS["V4"]}
    app = open_page("app_pages/vendors.py", query=chosen, user="facilitator")
    assert (app.session_state["vendor"], app.session_state["profile"]) == (["V3", "V4"], "V4")

    app.session_state["alias"] = True  # the sidebar toggle, out of AppTest's reach after the first run
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.session_state["vendor"] == ["V3", "V4"]
    assert app.query_params["vendor"] == ["Vendor C", "Vendor D"] and app.query_params["profile"] == "Vendor D"
    assert "Vendor D" in [s.value for s in app.subheader]
    assert not traces_of(VENDORS, shown(app))

    app.session_state["alias"] = False
    app.run()
    assert app.query_params["profile"] == VENDOR_LABELS["V4"]
    assert app.query_params["vendor"] == [VENDOR_LABELS["V3"], VENDOR_LABELS["V4"]]


def test_aliases_replace_ids_and_names_wherever_they_stand():
    import pandas as pd

    from ciboard.dashboard import disguise, letter

    named = {"V1": ("BrightPath Tutoring", "Vendor A"), "V2": ("Lumen Learning Partners", "Vendor B"),
             "V10": ("Tenth Tutors", "Vendor J")}
    frame = pd.DataFrame({
        "text": ["sessions_V2_2025-10-13.csv", "V2-T0055", "V20 is no vendor", "BrightPath Tutoring moves", "V10, V1", None],
        "vendor_id": ["V1", "V2", "V10", None, "V1", "V2"],
        "n": [1, 2, 3, 4, 5, 6],
    })
    shown = disguise(frame, named)
    assert shown["text"].tolist()[:5] == [
        "sessions_Vendor B_2025-10-13.csv", "Vendor B-T0055", "V20 is no vendor", "Vendor A moves", "Vendor J, Vendor A",
    ]
    assert shown["vendor_id"].tolist()[:3] == ["Vendor A", "Vendor B", "Vendor J"]
    assert shown["n"].tolist() == frame["n"].tolist()
    assert [letter(i) for i in (0, 5, 25, 26, 27)] == ["A", "F", "Z", "AA", "AB"]
