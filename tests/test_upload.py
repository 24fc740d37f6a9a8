"""Submit data: a vendor's file goes through ingest under its own vendor id; a rejected file's
problems are shown row by row and nothing lands; a good file lands and is in the log; both
are audited. A vendor is told nothing about other vendors; a file that would remove rows
waits for a yes; no file gets a traceback or a path; an upload goes to disk in blocks. On a
warehouse of its own (the README's samples), so the shared demo is untouched."""

import pytest

from ciboard import accounts
from ciboard.access import ANALYST, Scope
from ciboard.appdb import AppDB
from ciboard.ingest import Submission, ingest
from ciboard.queries import run
from conftest import SAMPLES, downloads, open_page, write_csv

HEADER = SAMPLES.joinpath("roster.csv").read_text().splitlines()[0]


@pytest.fixture
def sample_app(loaded, monkeypatch):
    import streamlit as st

    from ciboard.settings import get_settings

    import streamlit.testing.v1.app_test as app_test
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    from conftest import MEDIA

    class RecordedMedia(MemoryMediaFileStorage):  # so conftest.downloads can read a download button
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            MEDIA.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", RecordedMedia)
    monkeypatch.setenv("CIBOARD_DATA_DIR", str(loaded.settings.data_dir))
    get_settings.cache_clear()
    st.cache_resource.clear()
    db = AppDB.of(loaded.settings)
    accounts.add_user(db, "vendor-v1", role="vendor", vendor_id="V1", password="a long password")
    accounts.add_user(db, "admin", role="admin", password="a long password")
    yield loaded
    get_settings.cache_clear()
    st.cache_resource.clear()


def students(warehouse) -> set[str]:
    with warehouse.cursor() as cur:
        return {s for (s,) in cur.execute("select student_key from students").fetchall()}


def send(app, kind: str, name: str, rows: list[str]):
    app.main.selectbox[0].set_value(kind)
    app.file_uploader[0].set_value((name, ("\n".join([HEADER, *rows]) + "\n").encode(), "text/csv"))
    app.button(key="FormSubmitter:upload-Check and load").click().run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_a_vendor_cannot_load_rows_of_another_vendor(sample_app):
    before = students(sample_app)
    app = open_page("app_pages/upload.py", user="vendor-v1")
    assert [e.label for e in app.main.selectbox] == ["What the file holds"], "a vendor cannot pick who submits"
    send(app, "roster", "roster_fix.csv", [
        "ST0000009,V1,E01,4,Hispanic,Female,1,1,0,below,2025-10-01",
        "ST0000010,V2,E01,4,White,Male,0,0,0,near,2025-10-01",
    ])
    assert "roster_fix.csv was not loaded" in app.error[0].value
    problems = app.dataframe[0].value
    assert problems[["file", "row", "column", "value"]].values.tolist() == [["roster_fix.csv", 3, "vendor_id", "V2"]]
    assert problems["reason"].iloc[0] == "is not the submitting vendor"
    assert students(sample_app) == before, "nothing of a rejected file lands"
    [record] = accounts.audit_log(AppDB.of(sample_app.settings), action="ingest")
    assert (record["username"], record["vendor_id"]) == ("vendor-v1", "V1") and '"status": "rejected"' in record["detail"]


def test_a_vendors_good_file_lands_and_shows_in_the_log(sample_app):
    app = open_page("app_pages/upload.py", user="vendor-v1")
    send(app, "roster", "roster_new.csv", ["ST0000009,V1,E01,4,Hispanic,Female,1,1,0,below,2025-10-01"])
    assert "roster_new.csv" in app.success[0].value and "1 rows" in app.success[0].value
    assert "ST0000009" in students(sample_app)
    log = app.dataframe[-1].value
    assert set(log["vendor_id"]) == {"V1"} and "roster" in set(log["kind"])


def test_an_administrator_loads_district_files(sample_app):
    app = open_page("app_pages/upload.py", user="admin")
    assert {"Contracts and rate cards", "Assessment results"} <= set(app.main.selectbox[0].options)
    assert [e.label for e in app.main.selectbox] == ["What the file holds", "Submitted by (vendor files only)"]


def test_an_administrator_loads_the_districts_student_records(sample_app):
    app = open_page("app_pages/upload.py", user="admin")
    app.main.selectbox[0].set_value("students")
    content = SAMPLES.joinpath("students.csv").read_bytes()
    app.file_uploader[0].set_value(("students.csv", content, "text/csv"))
    app.button(key="FormSubmitter:upload-Check and load").click().run()
    assert not app.exception, [e.value for e in app.exception]
    with sample_app.cursor() as cur:
        [(records,)] = cur.execute("select count(*) from district_students").fetchall()
    assert records == len(content.decode().splitlines()) - 1


# --- a vendor is told nothing about other vendors, for every kind it sends ---------------


HEADERS = {kind: SAMPLES.joinpath(f"{kind}.csv").read_text().splitlines()[0] for kind in ("roster", "sessions", "survey")}
V2_FILE = "sessions_V2_2025-09-22.csv"
ROSTER_ROW = "ST0000009,V2,E02,3,White,Male,0,0,0,near,2025-09-15"
# Per kind: rows about an unknown student (ST0000077) and about V2's student (ST0000009); the
# first V2 row of sessions and survey repeats a row V2 loaded.
ROWS = {
    "sessions": ["{s},2025-09-22,V2-T001,1,45,45", "{s},2025-09-23,V1-T001,1,45,45"],
    "survey": ["{s},2025-09-24,sel_identity,4"],
    "roster": ["{s},V1,E01,4,White,Male,0,0,0,near,2025-09-15"],
}


@pytest.fixture
def two_vendors(sample_app, tmp_path):
    roster = write_csv(tmp_path / "roster_v2.csv", HEADERS["roster"], "ST0000009,V2,E02,3,White,Male,0,0,0,near,2025-09-15")
    ingest(sample_app, [Submission(roster, "roster", by_district=True)])
    ingest(sample_app, [Submission(write_csv(tmp_path / V2_FILE, HEADERS["sessions"], "ST0000009,2025-09-22,V2-T001,1,45,45"), "sessions", "V2")])
    ingest(sample_app, [Submission(write_csv(tmp_path / "survey_v2.csv", HEADERS["survey"], "ST0000009,2025-09-24,sel_identity,4"), "survey", "V2")])
    return sample_app


def upload(app, kind: str, name: str, content: bytes, vendor: str | None = None):
    app.main.selectbox[0].set_value(kind)
    if vendor is not None:
        app.main.selectbox[1].set_value(vendor)
    app.file_uploader[0].set_value((name, content, "text/csv"))
    app.button(key="FormSubmitter:upload-Check and load").click().run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def lines(kind: str, *rows: str) -> bytes:
    return ("\n".join([HEADERS[kind], *rows]) + "\n").encode()


@pytest.mark.parametrize("kind", ["sessions", "survey", "roster"])
def test_the_page_tells_a_vendor_only_not_on_your_roster(two_vendors, kind):
    rows = [row.format(s=s) for s in ("ST0000077", "ST0000009") for row in ROWS[kind]]
    app = upload(open_page("app_pages/upload.py", user="vendor-v1"), kind, f"{kind}_v1.csv", lines(kind, *rows))
    assert f"{kind}_v1.csv was not loaded" in app.error[0].value
    shown = app.dataframe[0].value
    student_rows = shown[shown["column"] == "student_id"]
    assert set(student_rows["reason"]) == {"is not on your roster"}
    # A roster may add a student nobody has; it may not take V2's.
    expected = {"roster": ["ST0000009"]}.get(kind, ["ST0000077", "ST0000009"])
    assert student_rows["value"].drop_duplicates().tolist() == expected
    [problems_csv] = [data for key, data in downloads(app).items()]
    for text in (shown.to_csv(), problems_csv.decode()):
        for word in ("another vendor", "any roster", "batch", V2_FILE):
            assert word not in text, (word, text)
    # What the rejection log keeps, and Data quality shows V1, is what V1 was told.
    kept = run(two_vendors, "rejections", ANALYST, {})
    assert set(kept[kept["file_name"] == f"{kind}_v1.csv"]["reason"]) <= set(shown["reason"])


def test_the_page_tells_the_administrator_whose_student_it_is(two_vendors):
    app = upload(open_page("app_pages/upload.py", user="admin"), "sessions", "sessions_v1.csv",
                 lines("sessions", "ST0000009,2025-09-22,V2-T001,1,45,45"), vendor="V1")
    reasons = set(app.dataframe[0].value["reason"])
    assert "is on another vendor's roster" in reasons
    assert any(f"({V2_FILE})" in r for r in reasons), reasons
    kept = run(two_vendors, "rejections", ANALYST, {})
    assert kept[kept["file_name"] == "sessions_v1.csv"]["reason"].tolist() == ["is not on your roster"], \
        "V1 reads the log: it keeps V1's words"


# --- a file that would remove rows waits for a yes ----------------------------------------

WEEK = [f"ST000000{s},2025-09-2{d},V1-T001,3,40,40" for s in (1, 2, 3) for d in (2, 3, 4)]


def sessions_in_week(warehouse) -> int:
    with warehouse.cursor() as cur:
        return cur.execute("select count(*) from sessions where session_date >= date '2025-09-22'").fetchone()[0]


def test_a_replacement_that_removes_rows_shows_the_weeks_and_waits_for_a_yes(sample_app):
    app = upload(open_page("app_pages/upload.py", user="vendor-v1"), "sessions", "week.csv", lines("sessions", *WEEK))
    first = int(app.success[0].value.split("submission ")[1].split(".")[0])
    version = sample_app.version()
    upload(app, "sessions", "oops.csv", lines("sessions", WEEK[0]))
    assert f"oops.csv would replace submission {first}" in app.warning[0].value
    assert "remove 8 of its 9 rows" in app.warning[0].value and "Nothing has landed yet" in app.warning[0].value
    assert app.dataframe[0].value[["rows_before", "rows_after", "removed", "added"]].values.tolist() == [[9, 1, 8, 0]]
    assert sample_app.version() == version and sessions_in_week(sample_app) == 9

    app.button(key="replace-no").click().run()
    assert "oops.csv was not loaded" in app.info[0].value and not app.warning
    assert sessions_in_week(sample_app) == 9

    upload(app, "sessions", "oops.csv", lines("sessions", WEEK[0]))
    app.button(key="replace-yes").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert f"replacing submission {first} (8 rows removed)" in app.success[0].value
    assert sessions_in_week(sample_app) == 1
    statuses = [r["detail"] for r in accounts.audit_log(AppDB.of(sample_app.settings), action="ingest")]
    assert sum("asked to confirm a replacement" in d for d in statuses) == 2 and "replacement declined" in statuses[2]
    assert not list((sample_app.settings.data_dir / "uploads").iterdir()), "every upload's folder is gone"


def test_a_file_for_weeks_after_the_contract_is_in_the_log_marked_and_the_sender_is_told(sample_app):
    """V1's contract ends Friday 2026-05-22 (data/samples/contracts.csv); the school year runs on.
    No schedule expects the week after it, so the log of what was due had no row for it."""
    after = [f"ST000000{s},2026-05-2{d},V1-T001,3,40,40" for s in (1, 2) for d in (6, 7)]
    app = upload(open_page("app_pages/upload.py", user="vendor-v1"), "sessions", "late_may.csv", lines("sessions", *after))
    assert "late_may.csv** landed: 4 rows" in app.success[0].value
    [warning] = [w.value for w in app.warning]
    assert "1 landed file(s) cover dates no contract of V1 reaches" in warning and "count toward no payment" in warning
    log = app.dataframe[-1].value
    [row] = log[log["file_name"] == "late_may.csv"].to_dict("records")
    assert (row["status"], row["outside_contract"], row["rows_accepted"]) == ("landed", "none", 4)
    assert row["timeliness"] == "", "no schedule expects the file, so it is neither on time nor late"
    assert str(row["period_start"])[:10] == "2026-05-25" and str(row["period_end"])[:10] == "2026-05-31"
    inside = log[log["file_name"] != "late_may.csv"]
    assert not inside.empty and set(inside["outside_contract"]) == {""}, "files within the contract are not marked"

    upload(app, "sessions", "week.csv", lines("sessions", *WEEK))
    [warning] = [w.value for w in app.warning]
    assert "1 landed file(s)" in warning, "a file inside the contract adds nothing to the warning"
    quality = open_page("app_pages/data_quality.py", user="vendor-v1")
    [line] = [m.value for m in quality.markdown if "BrightPath" in m.value]
    assert "1 file(s) for dates no contract covers, counted toward no payment" in line and ":orange[" in line


def test_the_submission_log_says_what_replaced_a_file_and_a_vendor_reads_only_its_own(sample_app):
    app = upload(open_page("app_pages/upload.py", user="vendor-v1"), "sessions", "week.csv", lines("sessions", *WEEK))
    upload(app, "sessions", "again.csv", lines("sessions", *WEEK[:-1], WEEK[-1][:-2] + "30"))
    log = run(sample_app, "submission_log", ANALYST, {})
    first = log[log["file_name"] == "week.csv"].iloc[0]
    second = log[log["file_name"] == "again.csv"].iloc[0]
    assert (first["status"], first["replaced_by"]) == ("replaced", second["batch_id"])
    assert (second["status"], second["replaces_batch_id"]) == ("accepted", first["batch_id"])
    assert log["received_at"].is_monotonic_decreasing
    assert log["vendor_id"].isna().any(), "the district reads its own files too"
    own = run(sample_app, "submission_log", Scope("vendor", vendor_id="V1"), {})
    assert set(own["vendor_id"]) == {"V1"} and set(own["batch_id"]) == set(log[log["vendor_id"] == "V1"]["batch_id"])


# --- no traceback and no path for any file; uploads go to disk -----------------------------


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("sessions.xlsx", bytes(range(256)) * 16, "is not an Excel workbook"),
        ("sessions.parquet", lines("sessions", WEEK[0]), "is not a Parquet file"),
        ("sessions.csv", bytes(range(256)) * 16, "is not text in UTF-8"),
        ("sessions.csv", lines("sessions", "ST0000001,2025-09-22,V1-T001,3,40,1e308"), "out of range"),
    ],
)
def test_any_file_gets_a_reason_without_a_traceback_or_a_path(sample_app, name, content, reason):
    app = upload(open_page("app_pages/upload.py", user="vendor-v1"), "sessions", name, content)
    shown = app.dataframe[0].value
    assert reason in " ".join(shown["reason"])
    page = " ".join(str(e.value) for e in [*app.error, *app.markdown]) + shown.to_csv()
    assert str(sample_app.settings.data_dir) not in page and "Traceback" not in page and "/tmp" not in page
    kept = run(sample_app, "rejections", ANALYST, {})
    assert reason in " ".join(kept[kept["file_name"] == name]["reason"]), "the rejection is logged"


def test_the_upload_is_copied_to_disk_in_blocks_and_never_read_whole(sample_app, monkeypatch):
    from streamlit.runtime.uploaded_file_manager import UploadedFile

    def whole(self):
        raise AssertionError("the page read the whole upload into memory")

    monkeypatch.setattr(UploadedFile, "getvalue", whole)
    monkeypatch.setattr(UploadedFile, "getbuffer", whole)
    app = upload(open_page("app_pages/upload.py", user="vendor-v1"), "sessions", "week.csv", lines("sessions", *WEEK))
    assert "week.csv** landed: 9 rows" in app.success[0].value


def test_the_page_says_how_large_a_file_may_be(sample_app):
    from streamlit import config

    app = open_page("app_pages/upload.py", user="vendor-v1")
    limit = config.get_option("server.maxUploadSize")
    assert f"Files up to {limit} MB" in " ".join(c.value for c in app.caption)
    assert f"up to {limit} MB" in app.file_uploader[0].help


def test_a_file_name_is_shown_as_text_not_as_an_image_or_html(sample_app):
    """The sender chooses the name; a tracking pixel in it must not load on the page."""
    name = "![x](tracker.invalid:p.png)<img src=x>.csv"
    app = upload(open_page("app_pages/upload.py", user="vendor-v1"), "sessions", name, bytes(range(256)) * 16)
    [message] = [e.value for e in app.error]
    assert "was not loaded" in message
    assert "![" not in message and "<img" not in message and "&#33;[x]" in message


# --- an assessment export's files, together, through its import profile ----------------------


def test_an_administrator_sends_an_assessment_exports_files_together_through_its_profile(sample_app):
    """As `ciboard import nwea-map` does (tests/test_nwea.py has the hand computation), from the page."""
    from conftest import view

    current = SAMPLES / "nwea_map_current"
    app = open_page("app_pages/upload.py", user="admin")
    assert any(o.startswith("Assessment export: NWEA") for o in app.main.selectbox[0].options)
    app.main.selectbox[0].set_value("profile:nwea-map")
    app.file_uploader[0].set_value([(p.name, p.read_bytes(), "text/csv") for p in sorted(current.glob("*.csv"))])
    app.button(key="FormSubmitter:upload-Check and load").click().run()
    assert not app.exception, [e.value for e in app.exception]
    landed = [s.value for s in app.success]
    assert [m.split("**")[1] for m in landed] == ["StudentsBySchool.csv", "AssessmentResults.csv"], landed
    growth = view(sample_app, "series", metric="nwea_mathematics_met_typical_growth", grain="window")
    assert list(growth["value"]) == pytest.approx([2 / 3, 1.0])
    [logged] = [r["detail"] for r in accounts.audit_log(AppDB.of(sample_app.settings), action="ingest")]
    assert "AssessmentResults.csv, StudentsBySchool.csv" in logged and "accepted" in logged

    # A file that is none of the export's is turned away by name, and nothing lands.
    version = sample_app.version()
    app.main.selectbox[0].set_value("profile:nwea-map")
    app.file_uploader[0].set_value([("roster.csv", lines("roster", ROSTER_ROW), "text/csv")])
    app.button(key="FormSubmitter:upload-Check and load").click().run()
    assert "roster.csv was not loaded" in app.error[0].value.replace("**", "")
    assert "roster.csv is neither" in " ".join(app.dataframe[0].value["reason"])
    assert sample_app.version() == version

    # Several files of one of the other kinds are refused before anything is read.
    app.main.selectbox[0].set_value("roster")
    app.file_uploader[0].set_value([("a.csv", lines("roster", ROSTER_ROW), "text/csv"),
                                    ("b.csv", lines("roster", ROSTER_ROW), "text/csv")])
    app.button(key="FormSubmitter:upload-Check and load").click().run()
    assert "Several files at once are for an assessment export" in app.warning[0].value
    assert sample_app.version() == version
