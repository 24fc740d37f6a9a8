"""The school and evaluator roles below the pages: a school account reads its own schools only,
whatever it asks for; an evaluator reads what an analyst reads with every student id its own
pseudonym, and writes nothing."""

from datetime import date

import pandas as pd
import pytest

from ciboard import accounts, drafts, meetings, privacy, queries, student_lists
from ciboard.access import ANALYST, Scope, ScopeError
from ciboard.appdb import AppDB
from ciboard.ci_records import Commitment, Slice, Workgroup
from ciboard.demo_meetings import COORDINATED_SCHOOLS
from conftest import default_dates, view

SCHOOL = Scope("school", school_ids=COORDINATED_SCHOOLS)
EVALUATOR = Scope("evaluator", evaluator="evaluator")
OTHER_EVALUATOR = Scope("evaluator", evaluator="evaluator-2")
ATTENDANCE = "tutoring_attendance_rate"


@pytest.fixture(scope="module")
def schools(demo_warehouse) -> list[str]:
    return sorted(view(demo_warehouse, "choices").query("dimension == 'school_id'")["value"])


def other_school(schools: list[str]) -> str:
    return next(s for s in schools if s not in COORDINATED_SCHOOLS)


def latest_end(warehouse) -> str:
    return default_dates(warehouse)["end"]


# --- the school role ---------------------------------------------------------------------------


def test_a_school_reads_only_its_schools_in_every_view_it_may_read(demo_warehouse):
    end = latest_end(demo_warehouse)
    asked = {
        "series": {"metric": ATTENDANCE},
        "breakdown": {"metric": ATTENDANCE, "by": "school_id"},
        "vendors": {"metric": ATTENDANCE},
        "panel": {"metric": ATTENDANCE, "by": "school_id", "grain": "month"},
        "peers": {"metric": ATTENDANCE, "vendor_id": "V1"},
        "matched": {"metric": "school_attendance_rate"},
        "choices": {},
        "events": {},
        "coverage": {},
        "follow_up_counts": {"max_rate": 0.9, "end": end},
        "absent_students": {"max_rate": 0.9, "end": end},
        "not_growing": {"end": end},
        "not_yet_served": {"end": end, "weeks": 1},
    }
    assert set(asked) | {"followed_student"} == set(queries.SCHOOL_VIEWS)
    for name, params in asked.items():
        frame = queries.run(demo_warehouse, name, SCHOOL, params)
        if name == "choices":
            frame = frame[frame["dimension"] == "school_id"].rename(columns={"value": "school_id"})
        if "school_id" in frame.columns:
            assert set(frame["school_id"].dropna()) <= set(COORDINATED_SCHOOLS), name
    listed = queries.run(demo_warehouse, "absent_students", SCHOOL, {"max_rate": 0.9, "end": end})
    everyone = queries.run(demo_warehouse, "absent_students", ANALYST, {"max_rate": 0.9, "end": end})
    assert not listed.empty and set(listed["school_id"]) == set(COORDINATED_SCHOOLS)
    assert len(listed) == everyone["school_id"].isin(COORDINATED_SCHOOLS).sum()
    # Across vendors: a school's students come from every vendor that serves it.
    assert listed["vendor_id"].nunique() > 1
    # The benchmark at its schools: another school named there is refused too.
    with pytest.raises(ScopeError):
        queries.run(demo_warehouse, "peers", SCHOOL, {"metric": ATTENDANCE, "vendor_id": "V1", "school_id": "E01"})


def test_a_school_asking_for_another_school_is_refused_without_naming_it(demo_warehouse, schools):
    other = other_school(schools)
    for params in (
        {"metric": ATTENDANCE, "school_id": other},
        {"metric": ATTENDANCE, "school_id": [COORDINATED_SCHOOLS[0], other]},
        {"metric": ATTENDANCE, "school_id": f"{COORDINATED_SCHOOLS[0]},{other}"},
    ):
        with pytest.raises(ScopeError) as refused:
            queries.run(demo_warehouse, "series", SCHOOL, params)
        assert other not in str(refused.value)
    one = queries.run(demo_warehouse, "breakdown", SCHOOL,
                      {"metric": ATTENDANCE, "by": "school_id", "school_id": COORDINATED_SCHOOLS[0]})
    assert set(one["school_id"]) == {COORDINATED_SCHOOLS[0]}


def test_a_school_cannot_follow_up_another_schools_student(demo_warehouse, schools):
    students = view(demo_warehouse, "absent_students", max_rate=1)
    theirs = students[~students["school_id"].isin(COORDINATED_SCHOOLS)]["student_key"].iloc[0]
    ours = students[students["school_id"].isin(COORDINATED_SCHOOLS)]["student_key"].iloc[0]
    assert queries.run(demo_warehouse, "followed_student", SCHOOL, {"student_id": theirs}).empty
    assert len(queries.run(demo_warehouse, "followed_student", SCHOOL, {"student_id": ours})) == 1


@pytest.mark.parametrize(
    "name, params",
    [
        ("payments", {}), ("statement", {"vendor_id": "V1", "period": "2026-01"}), ("quality", {}),
        ("rejections", {}), ("submission_log", {}), ("session_checks", {}), ("session_check_counts", {}), ("student_records", {}),
        ("roster_disagreements", {}),
        ("student_values", {"metric": ATTENDANCE, "metric_y": "sgp"}),
    ],
)
def test_a_school_reads_no_vendor_business_and_no_student_rows(demo_warehouse, name, params):
    with pytest.raises(ScopeError):
        queries.run(demo_warehouse, name, SCHOOL, params)


def test_a_school_has_small_cells_hidden_as_a_facilitator_has(demo_warehouse):
    min_cell = demo_warehouse.settings.min_cell_size
    params = {"metric": ATTENDANCE, "by": "grade", "by2": "race_ethnicity"}
    frame = queries.run(demo_warehouse, "breakdown", SCHOOL, params)
    exact = queries.run(demo_warehouse, "breakdown", ANALYST, {**params, "school_id": list(COORDINATED_SCHOOLS)})
    assert (exact["n"] < min_cell).any()  # there are small cells to hide
    assert frame["small_cell"].any()
    assert frame.loc[frame["small_cell"], "n"].isna().all()
    assert (frame["n"].dropna() >= min_cell).all()


def test_a_school_sees_its_workgroups_and_updates_only_its_own_commitments(dashboard):
    db = AppDB.of(dashboard.settings)
    groups = meetings.workgroups(db, SCHOOL)
    assert groups and len(groups) < len(meetings.workgroups(db, ANALYST))
    for group in groups:
        parties = {(p.party, p.party_id) for p in group.members}
        assert parties & {("school", s) for s in COORDINATED_SCHOOLS}
        assert not {pid for party, pid in parties if party == "school"} - set(COORDINATED_SCHOOLS)
    seen = meetings.commitments(db, SCHOOL)
    own = [c for c in seen if c.party == "school"]
    assert own and all(c.party_id in COORDINATED_SCHOOLS for c in own)
    assert all(c.party == "school" or c.slice.school_id in COORDINATED_SCHOOLS for c in seen)
    with pytest.raises(ScopeError):
        meetings.save_workgroup(db, SCHOOL, Workgroup(name="A school's own", purpose="x"), by="school")
    with pytest.raises(ScopeError):
        meetings.save_commitment(db, SCHOOL, Commitment(party="school", party_id=COORDINATED_SCHOOLS[0],
                                 owner="x", made_on=date(2026, 3, 1), action="x"), by="school")
    others = [c for c in meetings.commitments(db, ANALYST) if c not in seen and c.status not in ("done", "dropped")]
    if others:
        with pytest.raises(ScopeError):
            meetings.update_status(db, SCHOOL, others[0].id, "done", by="school", revision=others[0].revision)


# --- the evaluator role ------------------------------------------------------------------------


def test_an_evaluator_reads_the_analysts_students_under_its_own_stable_pseudonyms(demo_warehouse):
    params = {"max_rate": 0.9, "end": latest_end(demo_warehouse)}
    raw = queries.run(demo_warehouse, "absent_students", ANALYST, params)
    mine = queries.run(demo_warehouse, "absent_students", EVALUATOR, params)
    again = queries.run(demo_warehouse, "absent_students", EVALUATOR, params)
    theirs = queries.run(demo_warehouse, "absent_students", OTHER_EVALUATOR, params)
    assert len(mine) == len(raw) > 0
    assert not set(mine["student_key"]) & set(raw["student_key"])
    assert mine["student_key"].str.fullmatch(r"P[0-9a-f]{16}").all()
    assert mine["student_key"].is_unique
    assert list(mine["student_key"]) == list(again["student_key"])
    assert not set(mine["student_key"]) & set(theirs["student_key"])
    # Everything but the student is the analyst's.
    assert mine.drop(columns="student_key").equals(raw.drop(columns="student_key"))
    # The pseudonym is keyed by the district's secret, not a bare hash of the id.
    import hashlib
    first = str(raw["student_key"].iloc[0])
    assert mine["student_key"].iloc[0] not in {
        "P" + hashlib.sha256(f"evaluator\x1f{first}".encode()).hexdigest()[:16],
        "P" + hashlib.sha256(first.encode()).hexdigest()[:16],
    }
    key = privacy.pseudonym_key(AppDB.of(demo_warehouse.settings))
    assert mine["student_key"].iloc[0] == privacy.pseudonym(key, "evaluator", first)


def test_an_evaluators_numbers_are_the_analysts_unhidden(demo_warehouse):
    params = {"metric": ATTENDANCE, "by": "grade", "by2": "race_ethnicity"}
    pd.testing.assert_frame_equal(
        queries.run(demo_warehouse, "breakdown", EVALUATOR, params),
        queries.run(demo_warehouse, "breakdown", ANALYST, params),
    )


def test_an_evaluators_statement_names_no_student_by_id(demo_warehouse):
    payments = view(demo_warehouse, "payments")
    vendor = payments["vendor_id"].iloc[0]
    period = "2026-01"
    raw = queries.run(demo_warehouse, "statement", ANALYST, {"vendor_id": vendor, "period": period})
    mine = queries.run(demo_warehouse, "statement", EVALUATOR, {"vendor_id": vendor, "period": period})
    assert len(mine) == len(raw) > 0
    assert not set(mine["student_id"].dropna()) & set(raw["student_id"].dropna())
    text = mine.to_csv() + str(mine.attrs)
    assert not [s for s in raw["student_id"].dropna().unique() if str(s) in text]


def test_an_evaluator_writes_nothing(dashboard):
    db = AppDB.of(dashboard.settings)
    before = accounts.audit_log(db, limit=1)
    group = meetings.workgroups(db, EVALUATOR)[0]
    commitment = meetings.commitments(db, EVALUATOR)[0]
    refused = [
        lambda: meetings.save_workgroup(db, EVALUATOR, group, by="evaluator"),
        lambda: meetings.save_commitment(db, EVALUATOR, commitment, by="evaluator"),
        lambda: meetings.update_status(db, EVALUATOR, commitment.id, "done", by="evaluator", revision=commitment.revision),
        lambda: drafts.keep_draft(db, EVALUATOR, "workgroup", group.id, {"purpose": "x"}, by="evaluator",
                                    revision=group.revision),
        lambda: student_lists.log_status(db, dashboard, EVALUATOR, "anyone", "absent", "contacted", by="evaluator"),
    ]
    for attempt in refused:
        with pytest.raises(ScopeError, match="evaluator"):
            attempt()
    assert accounts.audit_log(db, limit=1) == before


def test_a_school_logs_the_status_of_its_own_commitments_only(tmp_path):
    from ciboard.ci_records import Person

    db = AppDB(tmp_path / "app.sqlite")
    rosa = Person("Rosa", "School", "school", COORDINATED_SCHOOLS[0])
    group = meetings.save_workgroup(db, ANALYST, Workgroup(name="School review", purpose="x", members=[rosa]), by="a")
    ours = meetings.save_commitment(db, ANALYST, Commitment(
        party="school", party_id=COORDINATED_SCHOOLS[0], owner="Rosa", made_on=date(2026, 1, 5), action="Free the block",
        slice=Slice(school_id=COORDINATED_SCHOOLS[0])), by="a")
    theirs = meetings.save_commitment(db, ANALYST, Commitment(
        party="school", party_id="Z99", owner="Someone", made_on=date(2026, 1, 5), action="Elsewhere",
        slice=Slice(school_id="Z99")), by="a")
    assert [g.id for g in meetings.workgroups(db, SCHOOL)] == [group.id]
    assert meetings.workgroups(db, Scope("school", school_ids=("Z99",))) == []
    assert [c.id for c in meetings.commitments(db, SCHOOL)] == [ours.id]
    done = meetings.update_status(db, SCHOOL, ours.id, "done", by="school", revision=ours.revision, on=date(2026, 2, 1))
    assert done.status == "done" and done.log[-1].by == "school"
    with pytest.raises(ScopeError):
        meetings.update_status(db, SCHOOL, theirs.id, "done", by="school", revision=theirs.revision)
    with pytest.raises(ScopeError):
        meetings.commitment(db, SCHOOL, theirs.id)


# --- accounts and the command line ---------------------------------------------------------------


def test_a_school_account_has_schools_and_no_other_account_has_any(tmp_path):
    db = AppDB(tmp_path / "app.sqlite")
    with pytest.raises(accounts.AccountError, match="--school"):
        accounts.add_user(db, "nowhere", role="school")
    with pytest.raises(accounts.AccountError, match="--school"):
        accounts.add_user(db, "fac", role="facilitator", school_ids=["E01"])
    made = accounts.add_user(db, "adams", role="school", school_ids=["E02", "E01", "E01"], password="a long password")
    assert made.scope == Scope("school", school_ids=("E01", "E02"))
    assert accounts.account(db, "adams").school_ids == ("E01", "E02")
    accounts.set_schools(db, "adams", ["E03"])
    assert accounts.account(db, "adams").scope.school_ids == ("E03",)
    with pytest.raises(accounts.AccountError):
        accounts.set_schools(db, "adams", [])
    assert accounts.account(db, "adams").school_ids == ("E03",)  # a refused change changes nothing
    entry = accounts.audit_log(db, action="account schools changed")[0]
    assert '"after": ["E03"]' in entry["detail"] and '"before": ["E01", "E02"]' in entry["detail"]
    accounts.add_user(db, "fac", role="facilitator")
    with db.transaction() as con, pytest.raises(Exception, match="only a school account"):
        con.execute("insert into user_schools values ('fac', 'E01')")
    evaluator = accounts.add_user(db, "eval", role="evaluator")
    assert evaluator.scope == Scope("evaluator", evaluator="eval") and not evaluator.scope.writes


def test_the_roles_migration_keeps_every_account_and_its_demo_password(tmp_path, monkeypatch):
    from pathlib import Path

    from ciboard import appdb

    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(Path(appdb.MIGRATIONS_DIR).glob("*.sql")):
        if int(path.stem.split("_")[0]) < 11:
            (before / path.name).write_text(path.read_text())
    monkeypatch.setattr(appdb, "MIGRATIONS_DIR", before)
    db = AppDB(tmp_path / "app.sqlite")
    with db.transaction() as con:  # as the demo wrote them before there were school accounts
        for name, role, vendor in (("analyst", "analyst", None), ("vendor-v1", "vendor", "V1")):
            con.execute("insert into users (username, display_name, role, vendor_id, password_hash, created_at)"
                        " values (?, ?, ?, ?, ?, '2026-01-01')", [name, name, role, vendor, accounts.hash_password("p" * 12)])
            con.execute("insert into demo_credentials values (?, ?)", [name, "p" * 12])
    kept = accounts.demo_credentials(db)
    assert len(kept) == 2
    monkeypatch.undo()
    db = AppDB(tmp_path / "app.sqlite")
    assert db.migrate()[0] == 11  # then any later ones
    assert accounts.demo_credentials(db) == kept
    assert accounts.account(db, "vendor-v1").scope == Scope("vendor", "V1")
    assert accounts.add_user(db, "school", role="school", school_ids=["E01"]).school_ids == ("E01",)
    with db.connect() as con:
        assert con.execute("select count(*) from secrets where name = 'pseudonyms'").fetchone()[0] == 1


def test_users_add_a_school_and_an_evaluator_from_the_command_line(loaded):
    from click.testing import CliRunner

    from ciboard.cli import main

    data_dir = str(loaded.settings.data_dir)
    runner = CliRunner()
    added = runner.invoke(main, ["users", "add", "adams", "--role", "school", "--school", "E01", "--school", "E02",
                                 "--generate", "--data-dir", data_dir])
    assert added.exit_code == 0, added.output
    assert "school:E01,E02" in added.output
    unknown = runner.invoke(main, ["users", "add", "x", "--role", "school", "--school", "Q42", "--generate",
                                   "--data-dir", data_dir])
    assert unknown.exit_code != 0 and "unknown school(s) Q42" in unknown.output
    bare = runner.invoke(main, ["users", "add", "y", "--role", "school", "--generate", "--data-dir", data_dir])
    assert bare.exit_code != 0 and "--school" in bare.output
    assert runner.invoke(main, ["users", "add", "eval", "--role", "evaluator", "--generate", "--data-dir", data_dir]).exit_code == 0
    listed = runner.invoke(main, ["users", "list", "--data-dir", data_dir]).output
    assert '"E01, E02"' in listed and "eval,evaluator" in listed
    db = AppDB.of(loaded.settings)
    assert accounts.account(db, "adams").scope == Scope("school", school_ids=("E01", "E02"))


def test_the_demo_has_a_school_account_and_an_evaluator_to_try(demo_warehouse):
    db = AppDB.of(demo_warehouse.settings)
    listed = {row["username"]: row for row in accounts.demo_credentials(db)}
    assert listed["school"]["role"] == "school" and listed["evaluator"]["role"] == "evaluator"
    school = accounts.authenticate(db, accounts.Settings(), "school", listed["school"]["password"])
    assert school.scope == SCHOOL
    evaluator = accounts.authenticate(db, accounts.Settings(), "evaluator", listed["evaluator"]["password"])
    assert evaluator.scope == EVALUATOR


def test_ciboard_query_as_a_school_and_as_an_evaluator(demo_warehouse, schools):
    import io

    from click.testing import CliRunner

    from ciboard.cli import main

    data_dir = str(demo_warehouse.settings.data_dir)
    runner = CliRunner()
    as_school = f"school:{','.join(COORDINATED_SCHOOLS)}"
    refused = runner.invoke(main, ["query", "series", "--as", as_school, "--param", f"metric={ATTENDANCE}",
                                   "--param", f"school_id={other_school(schools)}", "--data-dir", data_dir])
    assert refused.exit_code != 0 and other_school(schools) not in refused.output
    listed = runner.invoke(main, ["query", "absent_students", "--as", as_school, "--param", "max_rate=0.9",
                                  "--data-dir", data_dir])
    assert listed.exit_code == 0, listed.output
    assert set(pd.read_csv(io.StringIO(listed.output))["school_id"]) == set(COORDINATED_SCHOOLS)
    pseudonymous = runner.invoke(main, ["query", "absent_students", "--as", "evaluator:evaluator", "--param",
                                        "max_rate=0.9", "--data-dir", data_dir])
    keys = pd.read_csv(io.StringIO(pseudonymous.output))["student_key"]
    assert keys.str.fullmatch(r"P[0-9a-f]{16}").all()
    assert list(keys) == list(queries.run(demo_warehouse, "absent_students", EVALUATOR, {"max_rate": 0.9})["student_key"])


def test_an_admin_adds_a_school_account_and_changes_its_schools_on_the_accounts_page(dashboard, schools):
    from conftest import open_page

    db = AppDB.of(dashboard.settings)
    app = open_page("app_pages/users.py", user="admin")
    next(t for t in app.text_input if t.label == "User name").input("lincoln-coordinator")
    next(s for s in app.selectbox if s.label == "Role").select("school")
    next(m for m in app.multiselect if m.label.startswith("Schools")).select(schools[0]).select(schools[1])
    next(b for b in app.button if b.label == "Add with a new password").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert accounts.account(db, "lincoln-coordinator").scope == Scope("school", school_ids=tuple(schools[:2]))
    next(s for s in app.selectbox if s.label == "Account").select("lincoln-coordinator").run()
    chooser = next(m for m in app.multiselect if m.label == "Schools this account reads")
    chooser.unselect(schools[0])  # inside the form: it lands when the form is submitted
    next(b for b in app.button if b.label == "Save schools").click().run()
    assert not app.exception
    assert accounts.account(db, "lincoln-coordinator").school_ids == (schools[1],)
    changed = accounts.audit_log(db, action="account schools changed")[0]
    assert changed["username"] == "admin" and "lincoln-coordinator" in changed["detail"]


# --- what the captions say ---------------------------------------------------------------------

@pytest.mark.parametrize("user", ["vendor-v1", "school"])
def test_a_vendors_and_a_schools_captions_name_their_slice_not_all_students(dashboard, user):
    from conftest import open_page

    labels = dict(view(dashboard, "choices").query("dimension in ('school_id', 'vendor_id')")[["value", "label"]].values)
    whose = ("students of V1 · " + labels["V1"] if user == "vendor-v1"
             else "students at " + ", ".join(f"{s} · {labels[s]}" for s in COORDINATED_SCHOOLS))
    said = []
    for page in ("overview", "trends", "disparities", "vendors", "relationships"):
        app = open_page(f"app_pages/{page}.py", user=user)
        text = " ".join(str(e.value) for e in [*app.caption, *app.markdown, *app.subheader, *app.title])
        assert "all students" not in text.lower(), page
        said.append(text)
    assert whose in " ".join(said)
    # The analyst's are all students still.
    app = open_page("app_pages/trends.py")
    assert "all students" in " ".join(str(e.value) for e in [*app.caption, *app.markdown]).lower()
