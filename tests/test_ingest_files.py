"""Any file at all gets a clear reason, never a traceback or a server path, and is logged as a
rejected submission; numbers beyond what a column holds are row problems; rows are numbered as
a spreadsheet shows them even when the CSV reader rejects some; and a rejected file writes no
warehouse version: it neither copies the warehouse nor waits for its writer."""

import os
import shutil
import zipfile
from datetime import date

import pandas as pd
import pytest

import ciboard.warehouse
from conftest import SAMPLES, snapshot, write_csv
from ciboard.access import ANALYST, Scope
from ciboard.ingest import IngestRejected, Submission, ingest
from ciboard.queries import run

HEADER = "student_id,session_date,tutor_id,group_size,scheduled_minutes,attended_minutes"
GOOD = "ST0000001,2025-09-22,V1-T001,3,40,40"


def empty_workbook(path):
    pd.DataFrame().to_excel(path, index=False)


def zip_without_content_types(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")


UNREADABLE = {
    "random.xlsx": (lambda p: p.write_bytes(os.urandom(4096)), "is not an Excel workbook"),
    "no_content_types.xlsx": (zip_without_content_types, "is not an Excel workbook"),
    "empty_sheet.xlsx": (empty_workbook, "the first sheet is empty"),
    "text.parquet": (lambda p: p.write_text(HEADER + "\n" + GOOD + "\n"), "is not a Parquet file"),
    "random.parquet": (lambda p: p.write_bytes(b"PAR1" + os.urandom(4096)), "is not a Parquet file"),
    "random.csv": (lambda p: p.write_bytes(os.urandom(4096)), "is not text in UTF-8"),
    "latin1.csv": (lambda p: p.write_bytes((HEADER + "\nST0000001,2025-09-22,Müller,3,40,40\n").encode("latin-1")), "UTF-8"),
    "one_long_line.txt": (lambda p: p.write_text("x" * 200_000), "not a header"),
    "sessions.pdf": (lambda p: p.write_bytes(b"%PDF-1.4"), "unsupported file type .pdf"),
}


@pytest.mark.parametrize("name", UNREADABLE)
def test_a_file_that_cannot_be_read_gets_a_reason_without_paths_and_is_logged(loaded, tmp_path, name):
    make, reason = UNREADABLE[name]
    make(tmp_path / name)
    before = snapshot(loaded)
    with pytest.raises(IngestRejected) as caught:
        ingest(loaded, [Submission(tmp_path / name, "sessions", "V1")])
    [problem] = caught.value.problems
    assert reason in problem.reason and problem.row is None
    said = str(problem) + str(caught.value)
    assert str(tmp_path) not in said and "/tmp" not in said and "Traceback" not in said and "Error" not in said, said
    assert snapshot(loaded) == before
    logged = run(loaded, "rejections", Scope("vendor", "V1"), {})
    assert logged[logged["file_name"] == name]["reason"].tolist() == [problem.reason]


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("ST0000001,2025-09-22,V1-T001,3,40,1e308", "attended_minutes"),
        ("ST0000001,2025-09-22,V1-T001,3,-1e308,40", "scheduled_minutes"),
        ("ST0000001,2025-09-22,V1-T001,1e400,40,40", "group_size"),
        ("ST0000001,2025-09-22,V1-T001,3,40,3000000000", "attended_minutes"),
    ],
)
def test_a_number_beyond_its_columns_range_is_a_row_problem(loaded, tmp_path, row, column):
    path = write_csv(tmp_path / "sessions.csv", HEADER, GOOD.replace("22", "23"), row)
    with pytest.raises(IngestRejected) as caught:
        ingest(loaded, [Submission(path, "sessions", "V1")])
    value = row.split(",")[HEADER.split(",").index(column)]
    [problem] = [p for p in caught.value.problems if "out of range" in p.reason]
    assert (problem.row, problem.column, problem.value) == (3, column, value)


@pytest.mark.parametrize(
    ("kind", "row", "column"),
    [
        ("contracts", "V1,proficient,50,1e12,750,,2025-09-15,2026-05-22", "base_per_student"),
        ("contracts", "V1,proficient,50,700,750,1e300,2025-09-15,2026-05-22", "cap"),
        ("assessment", "ST0000004,fall,2025-09-23,1e400,50,0", "scaled_score"),
        ("survey", "ST0000001,2025-09-25,sel_identity,1e308", "score"),
    ],
)
def test_every_kind_of_number_out_of_range_is_a_row_problem(loaded, tmp_path, kind, row, column):
    header = (SAMPLES / f"{kind}.csv").read_text().splitlines()[0]
    path = write_csv(tmp_path / f"{kind}.csv", header, row)
    with pytest.raises(IngestRejected) as caught:
        ingest(loaded, [Submission(path, kind, "V1" if kind == "survey" else None)])
    assert [(p.row, p.column) for p in caught.value.problems if "out of range" in p.reason] == [(2, column)]


def test_an_unterminated_quote_is_one_problem_at_its_own_row(loaded, tmp_path):
    path = write_csv(tmp_path / "sessions.csv", HEADER, GOOD, 'ST0000002,2025-09-23,"V1-T001,3,40,40')
    with pytest.raises(IngestRejected) as caught:
        ingest(loaded, [Submission(path, "sessions", "V1")])
    assert [(p.row, p.column, p.reason) for p in caught.value.problems] == [
        (3, None, 'row cannot be read: a quote (") opened in this row is never closed')
    ]


def test_rows_after_a_broken_row_keep_their_numbers(loaded, tmp_path):
    path = write_csv(
        tmp_path / "sessions.csv", HEADER,
        GOOD,
        'ST0000002,2025-09-23,"V1-T001" late,3,40,40',  # a quoted value that goes on
        "ST0000002,2025-09-24,V1-T001,3,40",  # a value short
        "",  # a blank line is a row of a spreadsheet too
        'ST0000003,2025-09-22,"V1-T003, room 2",3,40,40',  # quoted, with the delimiter inside: fine
        "ST0000003,2025-09-23,V1-T003,3,40,4x",
    )
    with pytest.raises(IngestRejected) as caught:
        ingest(loaded, [Submission(path, "sessions", "V1")])
    assert [(p.row, p.column, p.reason.split(":")[0]) for p in caught.value.problems] == [
        (3, None, "row cannot be read"),
        (4, None, "row cannot be read"),
        (7, "attended_minutes", "is not a whole number"),
    ]
    assert caught.value.problems[1].reason.endswith("it has 5 values where the header has 6")


def test_a_value_spanning_lines_is_one_spreadsheet_row(loaded, tmp_path):
    header = (SAMPLES / "annotations.csv").read_text().splitlines()[0]
    path = write_csv(
        tmp_path / "annotations.csv", header,
        '2025-10-13,,closure,Flood,"Schools closed.\nNo tutoring.",,,',
        "2025-10-20,,holiday,Fall break,,,,",
    )
    with pytest.raises(IngestRejected) as caught:
        ingest(loaded, [Submission(path, "annotations")])
    assert [(p.row, p.column) for p in caught.value.problems] == [(3, "kind")]


def test_a_tab_separated_file_loads(loaded, tmp_path):
    path = tmp_path / "sessions.tsv"
    path.write_text(HEADER.replace(",", "\t") + "\n" + GOOD.replace(",", "\t") + "\n")
    [outcome] = ingest(loaded, [Submission(path, "sessions", "V1")])
    assert (outcome.status, outcome.rows) == ("accepted", 1)


def test_a_rejected_file_neither_copies_the_warehouse_nor_takes_the_writers_lock(loaded, tmp_path, monkeypatch):
    copies, locks = [], []
    copy, lock = shutil.copyfile, ciboard.warehouse.Warehouse.writer_lock
    monkeypatch.setattr(ciboard.warehouse.shutil, "copyfile", lambda *a, **k: copies.append(a) or copy(*a, **k))
    monkeypatch.setattr(ciboard.warehouse.Warehouse, "writer_lock", lambda self, *a: locks.append(1) or lock(self, *a))
    files = sorted(p.name for p in loaded.directory.glob("wh-*"))
    version = loaded.version()
    for attempt in range(3):
        bad = write_csv(tmp_path / f"bad{attempt}.csv", HEADER, "ST0000001,2025-09-22,V1-T001,3,40,41")
        with pytest.raises(IngestRejected):
            ingest(loaded, [Submission(bad, "sessions", "V1")])
    assert copies == [] and locks == []
    assert loaded.version() == version and sorted(p.name for p in loaded.directory.glob("wh-*")) == files
    assert loaded.read_key() != str(loaded.path_of(version)), "cached answers are keyed on the log too"
    # The rejections are logged all the same, and Data quality counts the week as rejected.
    quality = run(loaded, "quality", ANALYST, {})
    week = quality[(quality["vendor_id"] == "V1") & (quality["kind"] == "sessions") & (quality["period_start"] == date(2025, 9, 22))]
    assert week["status"].tolist() == ["rejected"]
    assert len(run(loaded, "rejections", ANALYST, {})) == 3


def test_the_next_publish_folds_the_logged_rejections_into_its_version(loaded, tmp_path):
    bad = write_csv(tmp_path / "bad.csv", HEADER, "ST0000001,2025-09-22,V1-T001,3,40,41")
    with pytest.raises(IngestRejected):
        ingest(loaded, [Submission(bad, "sessions", "V1")])
    with loaded.cursor() as cur:
        seen = cur.execute("select * from submissions where file_name = 'bad.csv'").fetchall()
        problems = cur.execute("select * from submission_errors where batch_id = ?", [seen[0][0]]).fetchall()
    [good] = ingest(loaded, [Submission(write_csv(tmp_path / "good.csv", HEADER, GOOD), "sessions", "V1")])
    assert good.batch_id == seen[0][0] + 1, "the rejection kept its number"
    with loaded.cursor() as cur:  # the log's folder is still there for a publish: it is not counted twice
        assert cur.execute("select * from submissions where file_name = 'bad.csv'").fetchall() == seen
        assert cur.execute("select * from submission_errors where batch_id = ?", [seen[0][0]]).fetchall() == problems
    ingest(loaded, [Submission(write_csv(tmp_path / "next.csv", HEADER, GOOD.replace("09-22", "09-29")), "sessions", "V1")])
    assert not list((loaded.directory / "rejected").iterdir()), "the folder goes a publish after it was folded in"
    with loaded.cursor() as cur:
        assert cur.execute("select * from submissions where file_name = 'bad.csv'").fetchall() == seen
    # The version itself holds them: a reader of it as it was, which reads no log, sees them too.
    with loaded.at(loaded.version()).cursor() as cur:
        assert cur.execute("select count(*) from submissions where file_name = 'bad.csv'").fetchone()[0] == 1


def test_a_reader_that_saw_the_log_before_a_publish_reads_on_after_it(loaded, tmp_path):
    bad = write_csv(tmp_path / "bad.csv", HEADER, "ST0000001,2025-09-22,V1-T001,3,40,41")
    with pytest.raises(IngestRejected):
        ingest(loaded, [Submission(bad, "sessions", "V1")])
    with loaded.cursor() as reader:  # it lists the log's files now and reads them below
        ingest(loaded, [Submission(write_csv(tmp_path / "good.csv", HEADER, GOOD), "sessions", "V1")])
        assert reader.execute("select count(*) from submissions where file_name = 'bad.csv'").fetchone()[0] == 1
