"""Submit data: a vendor's file goes through ingest under its own vendor id; a rejected file's
problems are shown row by row and nothing lands; a good file lands and is in the log; both
are audited. On a warehouse of its own (the README's samples), so the shared demo is untouched."""

import pytest

from ciboard import accounts
from ciboard.appdb import AppDB
from conftest import SAMPLES, open_page

HEADER = SAMPLES.joinpath("roster.csv").read_text().splitlines()[0]


@pytest.fixture
def sample_app(loaded, monkeypatch):
    import streamlit as st

    from ciboard.settings import get_settings

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
