"""The ciboard command, as an analyst or a district data team runs it."""

import csv
import io
import json

from click.testing import CliRunner

from conftest import SAMPLES, write_csv
from ciboard.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_init_then_ingest_the_samples_in_order(tmp_path):
    data = str(tmp_path / "data")
    result = invoke("init", "--school-year", "2025-26", "--data-dir", data)
    assert result.exit_code == 0 and "added school year(s) 2025-26" in result.output
    for kind, vendor in (
        ("schools", None), ("vendors", None), ("contracts", None), ("annotations", None), ("roster", None),
        ("sessions", "V1"), ("school_attendance", None), ("assessment", None), ("survey", "V1"),
    ):
        args = ["ingest", str(SAMPLES / f"{kind}.csv"), "--kind", kind, "--data-dir", data]
        result = invoke(*args, *(["--vendor", vendor] if vendor else []))
        assert result.exit_code == 0, result.output
        assert f"{kind}.csv: accepted as batch" in result.output
    again = invoke("ingest", str(SAMPLES / "sessions.csv"), "--kind", "sessions", "--vendor", "V1", "--data-dir", data)
    assert "sessions.csv: unchanged" in again.output


def test_a_rejected_file_exits_non_zero_and_writes_every_problem(tmp_path):
    data = str(tmp_path / "data")
    invoke("init", "--school-year", "2025-26", "--data-dir", data)
    bad = write_csv(tmp_path / "schools.csv", "school_id,name", "E01,", ",Nameless", "E01,Adams")
    errors = tmp_path / "errors.csv"
    result = invoke("ingest", str(bad), "--kind", "schools", "--errors", str(errors), "--data-dir", data)
    assert result.exit_code == 1
    assert "schools.csv, row 2: name: is required" in result.output
    assert "1 file(s) rejected with 3 problem(s); nothing was loaded" in result.output
    rows = list(csv.DictReader(errors.open()))
    assert [(r["row"], r["column"], r["reason"]) for r in rows] == [
        ("2", "name", "is required"),
        ("3", "school_id", "is required"),
        ("4", "school_id", "repeats the key (school_id) of row 2"),
    ]


def test_query_prints_csv_and_json_for_a_scope(demo_warehouse):
    data = str(demo_warehouse.settings.data_dir)
    as_csv = invoke("query", "vendors", "--as", "vendor:V3", "--param", "metric=dosage_met", "--data-dir", data)
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert [r["vendor_id"] for r in rows] == ["V3"]
    as_json = invoke(
        "query", "breakdown", "--as", "analyst", "--param", "metric=proficient", "--param", "by=grade",
        "--param", "english_learner=true", "--format", "json", "--data-dir", data,
    )
    records = json.loads(as_json.output)
    assert [r["grade"] for r in records] == [3, 4, 5, 6, 7, 8]
    assert set(records[0]) >= {"grade", "value", "n", "suppressed"}


def test_query_errors_list_what_is_valid(demo_warehouse):
    data = str(demo_warehouse.settings.data_dir)
    result = invoke("query", "series", "--as", "analyst", "--param", "metric=growth", "--data-dir", data)
    assert result.exit_code == 1 and "the metrics are dosage_met" in result.output
    result = invoke("query", "series", "--as", "vendor", "--param", "metric=sgp", "--data-dir", data)
    assert result.exit_code == 2 and "vendor:ID" in result.output
    result = invoke("query", "series", "--as", "vendor:V1", "--param", "metric=sgp", "--param", "vendor_id=V2", "--data-dir", data)
    assert result.exit_code == 1 and "V2" not in result.output


def test_datamap_prints_every_definition(demo_warehouse):
    result = invoke("datamap", "--format", "json", "--data-dir", str(demo_warehouse.settings.data_dir))
    metrics = {m["metric_id"]: m for m in json.loads(result.output)}
    assert len(metrics) == 12
    assert metrics["dosage_met"]["definition"].startswith("Share of student-weeks with at least 3 attended sessions")
    assert metrics["sgp"]["aggregation"] == "median"
