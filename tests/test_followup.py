"""The prefilled outcomes-data agenda: how a gap between student groups moves, what a prefill
holds and what a vendor's holds, and the snapshot a finalised meeting keeps."""

import json
import re
from datetime import date

import pytest

from ciboard import ci_records as rec, followup, meetings as m, movements
from ciboard.access import ANALYST, Scope
from ciboard.appdb import AppDB
from ciboard.queries import run

STAFF = Scope("facilitator")
ATTENDANCE = "tutoring_attendance_rate"


def test_a_gap_moves_only_when_its_change_is_beyond_chance():
    assert followup.gap_change((-0.10, -0.14, -0.06), (-0.10, -0.14, -0.06)) is None
    widened = followup.gap_change((-0.15, -0.18, -0.12), (-0.05, -0.08, -0.02))
    assert widened["direction"] == "widened" and widened["change_high"] < 0 and not widened["reversed"]
    narrowed = followup.gap_change((0.01, -0.02, 0.04), (-0.12, -0.15, -0.09))
    assert narrowed["direction"] == "narrowed" and narrowed["change_low"] > 0 and narrowed["reversed"]
    assert followup.gap_change((-0.15, float("nan"), float("nan")), (-0.05, -0.08, -0.02)) is None
    # Two intervals that overlap can still leave out a zero change; the joined interval decides.
    assert followup.gap_change((-0.10, -0.13, -0.07), (-0.04, -0.07, -0.01)) is not None


# --- the prefilled agenda ---------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """V3's coordination meeting a month after the last one, with records of and about V3,
    V5 and the whole district around it."""
    db = AppDB(tmp_path_factory.mktemp("followup") / "app.sqlite3")
    v3 = m.save_workgroup(db, STAFF, rec.Workgroup(
        name="Keystone coordination", vendor_ids=["V3"],
        members=[rec.Person("Priya", "District", "district"), rec.Person("Sam", "Keystone Math Corps", "vendor", "V3")],
    ), by="facilitator")
    v4 = m.save_workgroup(db, STAFF, rec.Workgroup(name="Northstar coordination", vendor_ids=["V4"]), by="facilitator")
    january = m.save_meeting(db, STAFF, rec.draft_meeting(v3, date(2026, 1, 8)), by="facilitator")

    def promise(party, party_id=None, **parts):
        return m.save_commitment(db, STAFF, rec.Commitment(
            party=party, party_id=party_id, owner="Owner", action=f"Action of {party} {party_id or ''}".strip(),
            made_on=date(2026, 1, 8), due_on=date(2026, 1, 29), metric_id=ATTENDANCE, slice=rec.Slice(**parts),
            meeting_id=january.id if parts.get("vendor_id") == "V3" else None,
        ), by="facilitator")

    made = {
        "own": promise("vendor", "V3", vendor_id="V3"),
        "district_about_v3": promise("district", vendor_id="V3"),
        "other_vendor": promise("vendor", "V5", vendor_id="V5", dimension="english_learner", value="true"),
        "district_about_v5": promise("district", vendor_id="V5"),
    }
    for vendor in ("V3", "V5"):
        m.save_pdsa(db, STAFF, rec.PdsaCycle(title=f"Cycle at {vendor}", metric_id=ATTENDANCE, start_on=date(2026, 1, 12),
                                             slice=rec.Slice(vendor_id=vendor)), by="facilitator")
    return {"db": db, "v3": v3, "v4": v4, "january": january, "made": made}


@pytest.fixture(scope="module")
def v3_prefill(world, demo_warehouse):
    return followup.outcomes_prefill(demo_warehouse, world["db"], Scope("vendor", "V3"), world["v3"].id, date(2026, 2, 5))


def strings(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


def test_a_vendors_prefill_holds_no_other_vendor(v3_prefill, demo_warehouse):
    with demo_warehouse.cursor() as cur:
        names = [name for (name,) in cur.execute("select name from vendors where vendor_id <> 'V3'").fetchall()]
    others = re.compile(r"\bV[124-6]\b|" + "|".join(map(re.escape, names)))
    found = json.loads(json.dumps(v3_prefill.to_dict()))
    leaks = [text for text in strings(found) if others.search(text)]
    assert leaks == []
    assert v3_prefill.signals and {s["vendor_id"] for s in v3_prefill.signals} == {"V3"}


def test_the_prefill_reviews_since_the_last_meeting_and_carries_the_commitments(v3_prefill, world):
    assert (v3_prefill.since, v3_prefill.previous_meeting_id) == ("2026-01-08", world["january"].id)
    assert all(s["period_start"] >= "2026-01-08" for s in v3_prefill.signals)
    assert sum(v3_prefill.signal_counts.values()) >= len(v3_prefill.signals)
    items = {c["commitment"]["id"]: c for c in v3_prefill.commitments}
    assert set(items) == {world["made"]["own"].id, world["made"]["district_about_v3"].id}
    own = items[world["made"]["own"].id]
    assert own["overdue"] and own["days_overdue"] == 7 and own["status"] == "open"
    assert own["movement"]["since"] == "2026-01-08" and own["movement"]["status"] == "ok"
    assert own["movement"]["after"]["value"] < own["movement"]["before"]["value"]  # V3's planted drop
    assert [p["cycle"]["title"] for p in v3_prefill.pdsa] == ["Cycle at V3"]
    assert v3_prefill.pdsa[0]["study"]["since"] == "2026-01-12"


def test_late_and_missing_data_of_the_workgroups_vendors(world, demo_warehouse):
    prefill = followup.outcomes_prefill(demo_warehouse, world["db"], STAFF, world["v4"].id, date(2026, 3, 5))
    assert prefill.since == "2026-01-08" and prefill.filters == {"vendor_id": ["V4"]}
    assert prefill.late_or_missing and {r["vendor_id"] for r in prefill.late_or_missing} == {"V4"}
    assert {r["status"] for r in prefill.late_or_missing} <= {"late", "missing", "rejected"}
    quality = run(demo_warehouse, "quality", STAFF, {"start": date(2026, 1, 8), "end": date(2026, 3, 5)}, today=date(2026, 3, 5))
    expected = quality[(quality["vendor_id"] == "V4") & quality["status"].isin(["late", "missing", "rejected"])]
    assert len(prefill.late_or_missing) == len(expected)
    assert {s["vendor_id"] for s in prefill.signals} <= {"V4"}
    lines = followup.summary(prefill, demo_warehouse)
    assert lines[0].startswith("Since 2026-01-08:") and any(line.startswith("Submissions:") for line in lines)


def test_the_snapshot_a_finalised_meeting_keeps_round_trips(v3_prefill, world, demo_warehouse):
    db = world["db"]
    meeting = m.save_meeting(db, STAFF, rec.draft_meeting(world["v3"], date(2026, 2, 5)), by="facilitator")
    on_screen = {"start": date(2025, 8, 1), "end": date(2026, 2, 5), "english_learner": ["true"]}
    snapshot = followup.snapshot(v3_prefill, on_screen)
    final = m.finalise(db, STAFF, meeting.id, snapshot, warehouse_version=v3_prefill.warehouse_version, by="facilitator")
    stored = m.meeting(AppDB(db.path), STAFF, final.id).snapshot
    assert stored == snapshot == json.loads(json.dumps(snapshot))
    assert stored["filters"] == {"start": "2025-08-01", "end": "2026-02-05", "english_learner": ["true"]}
    assert followup.Prefill.from_dict(stored["prefill"]) == v3_prefill
    movement = stored["prefill"]["commitments"][0]["movement"]
    assert movements.Movement.from_dict(movement).to_dict() == movement
    # The vendor reads its own meeting's frozen numbers.
    assert m.meeting(db, Scope("vendor", "V3"), final.id).snapshot == snapshot


def test_an_analysts_prefill_of_one_vendor_lists_each_chart_once(world, demo_warehouse):
    prefill = followup.outcomes_prefill(demo_warehouse, world["db"], ANALYST, world["v3"].id, date(2026, 2, 5))
    charts = [(s["metric_id"], s["dimension"], s["group"]) for s in prefill.signals]
    assert len(charts) == len(set(charts)) and {s["vendor_id"] for s in prefill.signals} == {"V3"}


def test_the_summary_says_yes_and_no_for_yes_no_groups(demo_warehouse):
    # Signals and gaps carry a group's value as stored text: "True" must not reach the meeting.
    signal = {"metric_id": "dosage_minutes", "label": "Tutoring minutes per week", "vendor_id": "V3",
              "dimension": "special_education", "group": "True", "value": 87.0, "period_start": "2026-03-02",
              "rules": "outside the limits", "folded": []}
    gaps = [
        {"metric_id": "dosage_met", "label": "Met high-dosage standard", "dimension": "english_learner",
         "group": "True", "reference": "False", "direction": "widened", "gap_then": 0.016, "gap_now": -0.023},
        {"metric_id": "dosage_met", "label": "Met high-dosage standard", "dimension": "race_ethnicity",
         "group": "Black", "reference": "Hispanic", "direction": "narrowed", "gap_then": -0.05, "gap_now": -0.02},
    ]
    prefill = followup.Prefill(workgroup_id=1, held_on="2026-03-05", since="2026-02-05", previous_meeting_id=None,
                               filters={}, warehouse_version="v", signals=[signal], gaps=gaps)
    lines = followup.summary(prefill, demo_warehouse)
    assert "Tutoring minutes per week (V3, special education: yes): 87 in the week of 2026-03-02, outside the limits." in lines
    assert ("Met high-dosage standard: the gap between english learner: yes and english learner: no widened, "
            "from +1.6 pts to -2.3 pts.") in lines
    assert "Met high-dosage standard: the gap between Black and Hispanic (race ethnicity) narrowed, from -5.0 pts to -2.0 pts." in lines
    assert "True" not in " ".join(lines) and "False" not in " ".join(lines)


def test_the_gaps_are_computed_once_per_data_version_whatever_else_changes(demo_warehouse, monkeypatch):
    """A meeting's prefill is drawn again after every commitment saved; the hundred breakdowns
    behind its gaps are not, until new data is published."""
    calls = []
    monkeypatch.setattr(followup, "gap_changes", lambda *asked: calls.append(asked) or [{"metric_id": "m", "asked": len(calls)}])
    followup._gap_changes_of.cache_clear()
    asked = (demo_warehouse, STAFF, date(2026, 2, 5), date(2026, 3, 5))
    first = followup.remembered_gap_changes(*asked, {"vendor_id": ["V4"]})
    first[0]["metric_id"] = "changed by the caller"
    assert followup.remembered_gap_changes(*asked, {"vendor_id": ["V4"]}) == [{"metric_id": "m", "asked": 1}]
    assert len(calls) == 1
    followup.remembered_gap_changes(*asked, {"vendor_id": ["V5"]})
    assert len(calls) == 2, "another reading is computed"
    followup._gap_changes_of.cache_clear()
