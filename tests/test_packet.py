"""The meeting packet: the district's holds the whole meeting, a vendor's only its own slice;
a finalised meeting's numbers are its snapshot even after new data lands; the HTML needs
nothing from the internet and shows user text as text; the CLI writes the file."""

import csv
import html as html_text
import re
import shutil
from dataclasses import replace
from datetime import date, datetime, timezone

import pytest
from click.testing import CliRunner
from plotly.offline import get_plotlyjs

from conftest import publish_empty

from ciboard import accounts, ci_records as rec, demo, demo_meetings, meetings as m, packet, packet_files
from ciboard.access import ANALYST, Scope, ScopeError
from ciboard.appdb import AppDB
from ciboard.cli import main
from ciboard.ingest import Submission, ingest
from ciboard.lake import LakeWarehouse
from ciboard.settings import Settings
from ciboard.warehouse import Warehouse

STAFF = Scope("facilitator")
LIBRARY = get_plotlyjs()


@pytest.fixture(scope="module")
def db(demo_warehouse) -> AppDB:
    db = AppDB.of(demo_warehouse.settings)
    if not m.workgroups(db, ANALYST):
        demo_meetings.seed(db, demo_warehouse)
    return db


def meeting_of(db: AppDB, vendor_id: str | None, status: str) -> rec.Meeting:
    """The seeded meeting of the workgroup of this vendor (None: the district's own)."""
    [group] = [g for g in m.workgroups(db, ANALYST) if g.vendor_ids == ([vendor_id] if vendor_id else [])]
    return next(x for x in m.meetings(db, ANALYST, group.id) if x.status == status)


@pytest.fixture(scope="module")
def built(demo_warehouse, db):
    """Packets of the two finalised meetings, built once per scope: (packet, HTML, Markdown)."""
    found = {}

    def get(vendor_id: str, scope: Scope):
        key = (vendor_id, str(scope))
        if key not in found:
            made = packet.build(demo_warehouse, db, scope, meeting_of(db, vendor_id, "final").id)
            found[key] = (made, packet_files.to_html(made), packet_files.to_markdown(made))
        return found[key]

    return get


@pytest.fixture
def copy_of_demo(demo_warehouse, db, tmp_path):
    """A copy of the demo's data folder, to change without touching the shared one."""
    target = tmp_path / "data"
    shutil.copytree(demo_warehouse.settings.data_dir, target)
    warehouse = Warehouse(Settings(data_dir=target))
    yield warehouse
    warehouse.close()


def without_library(page: str) -> str:
    """The HTML without the embedded plotly.js (which names things of its own) and without
    the figures' base64 number arrays (whose letters can spell anything)."""
    assert page.count(LIBRARY) == 1
    return re.sub(r'"bdata":"[^"]*"', '"bdata":""', page.replace(LIBRARY, ""))


def section_of(markdown: str, heading: str) -> str:
    """From a heading to the next heading of its level or above."""
    start = markdown.index(heading)
    level = heading.split(" ")[0]
    ends = [markdown.find("\n" + "#" * n + " ", start + len(heading)) for n in range(1, len(level) + 1)]
    return markdown[start:min([e for e in ends if e > 0] or [len(markdown)])]


def plotly_divs(page: str) -> int:
    return page.count('class="plotly-graph-div"')


def test_the_district_packet_of_v3s_meeting_holds_its_agenda_commitments_and_charts(built, db):
    made, page, markdown = built("V3", STAFF)
    meeting = meeting_of(db, "V3", "final")
    for part in rec.AGENDA:
        assert f"{part.title}</h2>" in page and f". {part.title}\n" in markdown
        assert html_text.escape(meeting.agenda[part.key]) in page
    assert "Tutoring attendance has run about 8 points lower since mid-December" in markdown
    actions = [c.action for c in m.commitments(db, STAFF, meeting_id=meeting.id)]
    assert len(actions) == 3 and [item.commitment.action for item in made.made] == actions
    for action in actions:
        assert html_text.escape(action) in page and action.split(",")[0] in markdown
    # The status log, as each party recorded it.
    assert "Reached 41 families so far" in page and "Reached 41 families so far" in markdown
    assert "Sent on the 9th and the 16th" in page
    assert made.carried == []  # the workgroup's first meeting inherits nothing
    # A chart per metric that signals, for V3, and one for the school commitment's slice.
    drawn = [c for c in made.charts if c.figure is not None]
    assert plotly_divs(page) == len(drawn) >= 5
    signalled = {s["metric_id"] for s in made.prefill.signals}
    assert {c.metric["metric_id"] for c in made.charts if "signals" in c.reasons} == signalled
    assert all(c.filters == {"vendor_id": ["V3"]} for c in made.charts if "signals" in c.reasons)
    school = [c for c in made.charts if c.filters == {"vendor_id": ["V3"], "school_id": ["E08"]}]
    assert len(school) == 1 and school[0].reasons == ["commitment"]
    for chart in made.charts:
        assert html_text.escape(chart.title) in page and chart.title in markdown
    assert markdown.count("- Latest week (") == len(drawn)
    # Every signal of the meeting is listed under a chart.
    assert sum(len(c.signals) for c in made.charts) >= len(made.prefill.signals)
    assert "Disparities" in markdown and made.breakdowns
    assert "Tutoring attendance rate by key group" in markdown


def test_the_v5_packet_holds_the_root_cause_analysis_and_the_pdsa_cycle(built, db):
    made, page, markdown = built("V5", STAFF)
    [analysis] = made.root_causes
    assert analysis.problem in markdown and html_text.escape(analysis.problem) in page
    for why in analysis.whys:
        assert html_text.escape(why) in page
    causes = page.split("Causes within reach")[1].split("Set aside")
    assert "Reminders only in English" in causes[0] and "evening shifts" in causes[1]
    assert causes[0].index("Reminders only in English") < causes[0].index("The roster sent to vendors")
    assert "How might we make sure every family knows" in markdown
    for theme in ("Reaching families", "Data sharing", "Scheduling"):
        assert f"Ideas: {theme}" in markdown
    assert "Text families a reminder in their home language the day before each session **(chosen)**" in markdown
    [cycle] = made.pdsa
    assert cycle.cycle.title == "Reminders in the home language" and not cycle.frozen
    assert cycle.study is not None and cycle.study.status == "ok"
    for text in ("Plan: the change", cycle.cycle.prediction, "118 families in four languages", "Before and after"):
        assert text in markdown
    assert cycle.study.sentence(made.metrics[cycle.cycle.metric_id]) in markdown
    # The cycle, the analysis and both commitments share one slice: one chart for them.
    [el] = [c for c in made.charts if "english_learner" in c.filters]
    assert set(el.reasons) == {"commitment", "PDSA cycle", "root-cause analysis"}


def resend_with_nobody_attending(warehouse: Warehouse, week: date) -> None:
    """V3 sends one week's sessions again, every student now absent: a later load that changes
    a number a finalised meeting's charts show."""
    source = warehouse.settings.data_dir / "demo_files" / f"sessions_V3_{week}.csv"
    rows = list(csv.DictReader(source.open()))
    replacement = source.with_name("sessions_V3_resent.csv")
    with replacement.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "attended_minutes": "0"} for r in rows)
    [outcome] = ingest(warehouse, [Submission(replacement, "sessions", "V3")], replace=True)
    assert outcome.status == "accepted" and outcome.replaced_batch_id is not None


def v3_attendance(made: packet.Packet, week: date) -> float:
    [chart] = [c for c in made.charts
               if c.metric["metric_id"] == "tutoring_attendance_rate" and c.filters == {"vendor_id": ["V3"]}]
    return chart.charted.set_index("period_start").loc[week, "value"]


WEEK_SHOWN = date(2026, 1, 26)  # a week the V3 meeting's charts show
PREPARED = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def test_a_finalised_packet_is_the_same_after_later_loads(copy_of_demo):
    warehouse, db = copy_of_demo, AppDB.of(copy_of_demo.settings)
    meeting = meeting_of(db, "V3", "final")
    assert f"meeting-{meeting.id}" in warehouse.pins()[meeting.warehouse_version]
    before = packet.build(warehouse, db, STAFF, meeting.id, now=PREPARED)
    assert before.prefill.to_dict() == meeting.snapshot["prefill"]

    resend_with_nobody_attending(warehouse, WEEK_SHOWN)
    publish_empty(warehouse, warehouse.settings.keep_versions)  # more loads than versions are kept
    assert warehouse.version() != meeting.warehouse_version

    after = packet.build(warehouse, db, STAFF, meeting.id, now=PREPARED)
    assert after.warehouse_version == meeting.warehouse_version and not after.notes
    assert packet_files.to_markdown(after) == packet_files.to_markdown(before)
    assert v3_attendance(after, WEEK_SHOWN) == v3_attendance(before, WEEK_SHOWN) > 0.02


def test_a_finalised_packet_on_the_lake_is_the_same_after_ten_later_ingests(copy_of_demo, tmp_path):
    """The issue's test, on the lake (the demo's storage): ten weekly uploads and a resent week
    after the meeting was finalised, and `maintain` between them."""
    lake = copy_of_demo
    assert isinstance(lake, LakeWarehouse)
    db = AppDB.of(lake.settings)
    meeting = meeting_of(db, "V3", "final")
    pinned = lake.resolve(meeting.warehouse_version)
    assert f"meeting-{meeting.id}" in lake.pins()[pinned]
    before = packet.build(lake, db, STAFF, meeting.id, now=PREPARED)
    assert before.prefill.to_dict() == meeting.snapshot["prefill"]

    for week in range(10):
        folder = tmp_path / f"week-{week}"
        folder.mkdir()
        [outcome] = ingest(lake, [Submission(demo.next_week_of_sessions(lake, "V3", folder), "sessions", "V3")])
        assert outcome.status == "accepted"
    resend_with_nobody_attending(lake, WEEK_SHOWN)
    Warehouse(lake.settings.model_copy(update={"keep_days": 1e-9})).maintain()  # every snapshot no record pinned expires
    assert lake.version() != pinned

    after = packet.build(lake, db, STAFF, meeting.id, now=PREPARED)
    assert after.warehouse_version == before.warehouse_version == pinned and not after.notes
    assert packet_files.to_markdown(after) == packet_files.to_markdown(before)
    assert v3_attendance(after, WEEK_SHOWN) == v3_attendance(before, WEEK_SHOWN) > 0.02


def test_a_finalised_packet_whose_version_is_gone_is_drawn_afresh_and_says_so(copy_of_demo):
    warehouse, db = copy_of_demo, AppDB.of(copy_of_demo.settings)
    meeting = meeting_of(db, "V3", "final")
    before = packet.build(warehouse, db, STAFF, meeting.id)
    for version, records in warehouse.pins().items():  # as if pinned by nothing, then deleted
        for record in records:
            warehouse.release(version, record)
    resend_with_nobody_attending(warehouse, WEEK_SHOWN)
    Warehouse(warehouse.settings.model_copy(update={"keep_days": 1e-9})).maintain()  # expires what no record pinned
    assert not warehouse.is_kept(meeting.warehouse_version)

    after = packet.build(warehouse, db, STAFF, meeting.id)
    assert after.prefill == before.prefill and after.summary == before.summary
    markdown = packet_files.to_markdown(after)
    # The summary and the gaps are frozen; the breakdowns below them are drawn afresh, and say so.
    for section in ("### What the data says", "### Disparities"):
        frozen = [section_of(text, section).split("\n#### ")[0] for text in (markdown, packet_files.to_markdown(before))]
        assert frozen[0] == frozen[1]
    number = int(after.warehouse_version.removeprefix("lake-"))
    assert f"drawn afresh from data version {number})" in section_of(markdown, "### Disparities")
    assert "lake-0" not in markdown
    # Staff read a noisy share: 0% shows as near 0.
    assert v3_attendance(after, WEEK_SHOWN) < 0.02 < v3_attendance(before, WEEK_SHOWN)
    assert f"from data version {int(meeting.warehouse_version.removeprefix('lake-'))}, which is no longer kept" in markdown


@pytest.mark.parametrize("vendor_id", ["V5", "V3"])
def test_a_vendors_packet_holds_its_own_slice_only(built, demo_warehouse, vendor_id):
    made, page, markdown = built(vendor_id, Scope("vendor", vendor_id))
    with demo_warehouse.cursor() as cur:
        names = dict(cur.execute("select vendor_id, name from vendors").fetchall())
    others = [name for vid, name in names.items() if vid != vendor_id]
    for text in (without_library(page), markdown):
        assert set(re.findall(r"\bV[1-6]\b", text)) == {vendor_id}
        assert [name for name in others if name in text] == []
        assert names[vendor_id] in text
    # Its own meeting's numbers, commitments, charts and records are all there.
    district, _, _ = built(vendor_id, STAFF)
    assert made.prefill.signals == district.prefill.signals
    assert [c.commitment.id for c in made.made] == [c.commitment.id for c in district.made]
    assert plotly_divs(page) == len([c for c in made.charts if c.figure is not None]) > 0
    assert [r.id for r in made.root_causes] == [r.id for r in district.root_causes]


def test_a_vendor_outside_the_workgroup_gets_no_packet(demo_warehouse, db):
    with pytest.raises(ScopeError):
        packet.build(demo_warehouse, db, Scope("vendor", "V5"), meeting_of(db, "V3", "final").id)
    with pytest.raises(ScopeError):
        packet.build(demo_warehouse, db, Scope("vendor", "V1"), meeting_of(db, None, "draft").id)


def test_the_html_needs_nothing_from_the_internet(built):
    _, page, _ = built("V5", STAFF)
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=", page, flags=re.I)
    rest = without_library(page)
    assert "http://" not in rest and "https://" not in rest
    assert "//cdn" not in rest and "mathjax" not in rest.lower()


def test_small_cells_a_snapshot_holds_are_hidden_from_all_but_analysts(copy_of_demo):
    # An analyst finalising a meeting freezes numbers over small groups, which only analysts may read.
    warehouse, db = copy_of_demo, AppDB.of(copy_of_demo.settings)
    seen = meeting_of(db, "V5", "final")
    group = m.workgroup(db, ANALYST, seen.workgroup_id)
    draft = m.save_meeting(db, ANALYST, rec.draft_meeting(group, date(2026, 3, 12)), by="analyst")
    snapshot = {**seen.snapshot, "prefill": dict(seen.snapshot["prefill"])}
    small = {**snapshot["prefill"]["signals"][0], "dimension": "grade", "group": "9", "n": 4, "value": 0.123456,
             "period_start": "2026-03-02"}
    snapshot["prefill"]["signals"] = [small, *snapshot["prefill"]["signals"]]
    m.finalise(db, ANALYST, draft.id, snapshot, warehouse_version=warehouse.version(), by="analyst")
    shown = packet_files.to_markdown(packet.build(warehouse, db, ANALYST, draft.id))
    hidden = packet_files.to_markdown(packet.build(warehouse, db, STAFF, draft.id))
    assert "| Cardinal Tutors (V5) · grade: 9 | 2026-03-02 | Concern | 12.3% |" in shown
    assert "| Cardinal Tutors (V5) · grade: 9 | 2026-03-02 | Concern | fewer than 10 | fewer than 10 |" in hidden
    assert "12.3%" not in hidden


def test_user_text_is_shown_as_text(copy_of_demo):
    warehouse, db = copy_of_demo, AppDB.of(copy_of_demo.settings)
    draft = meeting_of(db, "V3", "draft")
    attack = '<script>alert("hi")</script> | **bold** <img src=x onerror=alert(1)>'
    m.save_meeting(db, STAFF, replace(draft, agenda={**draft.agenda, "partnerships": attack}), by="facilitator")
    made = packet.build(warehouse, db, STAFF, draft.id)
    page, markdown = packet_files.to_html(made), packet_files.to_markdown(made)
    assert '<script>alert("hi")' not in page and "<img src=x" not in page
    assert html_text.escape(attack) in page
    assert '> &lt;script&gt;alert("hi")&lt;/script&gt; &#124; \\*\\*bold\\*\\* &lt;img src=x onerror=alert(1)&gt;' in markdown
    # A draft reads its numbers afresh, and carries the open commitments forward with how they moved.
    assert not made.frozen and made.prefill.held_on == draft.held_on.isoformat()
    carried = {item.commitment.action.split(",")[0]: item for item in made.carried}
    calls = carried["Call the family of every student who has missed three or more sessions since winter break"]
    assert calls.overdue and calls.status == "in_progress" and calls.movement.status == "ok"
    assert "Since it was made" in markdown and "**(overdue)**" in markdown
    assert calls.movement.sentence(made.metrics[calls.movement.metric_id]) in page


def test_hostile_free_text_loads_nothing_and_reads_as_typed_in_either_format(copy_of_demo):
    from test_safe_text import HOSTILE_NOTES, loads_something

    warehouse, db = copy_of_demo, AppDB.of(copy_of_demo.settings)
    draft = meeting_of(db, "V3", "draft")
    group = m.workgroup(db, STAFF, draft.workgroup_id)
    m.save_workgroup(db, STAFF, replace(group, purpose=HOSTILE_NOTES, decisions=[HOSTILE_NOTES]), by="facilitator")
    # A written-out URL becomes a link that swallows a backslash escape right after it.
    after_url = " http://e.org/x<img src=http://evil/p.png> http://e.org/y![a](http://evil/p.png)"
    m.save_meeting(db, STAFF, replace(
        draft, agenda={key: HOSTILE_NOTES + after_url + " $40 an hour" for key in rec.AGENDA_KEYS}), by="facilitator")
    m.save_commitment(db, STAFF, rec.Commitment(
        party="district", owner=HOSTILE_NOTES, action=HOSTILE_NOTES, made_on=draft.held_on, meeting_id=draft.id,
        metric_id="tutoring_attendance_rate", slice=rec.Slice(vendor_id="V3")), by="facilitator")
    made = packet.build(warehouse, db, STAFF, draft.id)
    page, markdown = without_library(packet_files.to_html(made)), packet_files.to_markdown(made)

    assert page.count("evil/p.png") >= 6 and markdown.count("evil/p.png") >= 6, "every text is in both"
    assert not re.search(r"<img\b", page, flags=re.I) and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert not re.search(r"<[a-z]+\b[^>]*\b(src|href)\s*=\s*[\"']?http://(evil|e)/", page, flags=re.I)
    assert [line for line in markdown.splitlines() if loads_something(line)] == []
    assert "<" not in markdown and "\\[" not in markdown, "no escape for a link to swallow"
    # An entity or a dollar reads as it was typed, not as the character it names or as math.
    assert "&amp;lt;img src=x&amp;gt;" in markdown and "&#36;40 an hour" in markdown
    assert "&amp;lt;img src=x&amp;gt;" in page


def test_the_cli_writes_the_packet_and_audits_it(copy_of_demo, tmp_path, monkeypatch):
    db = AppDB.of(copy_of_demo.settings)
    meeting = meeting_of(db, "V3", "final")
    data_dir = str(copy_of_demo.settings.data_dir)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["packet", str(meeting.id), "--as", "vendor:V3", "--format", "md",
                                  "--data-dir", data_dir])
    assert result.exit_code == 0, result.output
    [written] = tmp_path.glob("meeting-2026-02-05-*.md")
    assert written.name == "meeting-2026-02-05-district-vendor-coordination-keystone-math-corps.md"
    assert str(written.name) in result.output
    assert "Keystone lost two tutors at Hamilton" in written.read_text(encoding="utf-8")
    output = tmp_path / "packet.html"
    result = runner.invoke(main, ["packet", str(meeting.id), "--as", "facilitator", "--output", str(output),
                                  "--data-dir", data_dir])
    assert result.exit_code == 0 and output.read_text(encoding="utf-8").count(LIBRARY) == 1
    [latest, earlier] = accounts.audit_log(db, action="export", limit=2)
    assert str(output) in latest["detail"] and '"scope": "facilitator"' in latest["detail"]
    assert written.name in earlier["detail"] and "vendor:V3" in earlier["detail"]
    refused = runner.invoke(main, ["packet", str(meeting.id), "--as", "vendor:V5", "--data-dir", data_dir])
    assert refused.exit_code != 0 and "sees only" in refused.output


def test_a_lettered_packet_names_no_vendor_and_no_vendor_person(copy_of_demo, tmp_path, monkeypatch):
    from ciboard import letters

    db = AppDB.of(copy_of_demo.settings)
    meeting = meeting_of(db, "V3", "final")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["packet", str(meeting.id), "--as", "facilitator", "--format", "md", "--letters",
                                       "--data-dir", str(copy_of_demo.settings.data_dir)])
    assert result.exit_code == 0, result.output
    with copy_of_demo.cursor() as cur:
        names = dict(cur.execute("select vendor_id, name from vendors").fetchall())
    shown = letters.for_meeting(db, letters.meeting_key(meeting.id), names)
    v3 = shown.aliases["V3"]
    [written] = tmp_path.glob("meeting-2026-02-05-*.md")
    assert written.name == f"meeting-2026-02-05-district-vendor-coordination-{v3.lower().replace(' ', '-')}.md"
    text = written.read_text(encoding="utf-8")
    assert not re.findall(r"\bV[1-6]\b", text) and [n for n in names.values() if n in text] == []
    assert "Okafor" not in text and f"| {shown.people['Sam Okafor']} | {v3} |" in text
    assert f"{v3} lost two tutors at Hamilton" in text  # the notes, as typed, read with the meeting's letters
