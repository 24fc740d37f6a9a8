"""Shared fixtures: a warehouse holding the README's sample files, and one demo district per run."""

from pathlib import Path

import pytest

from ciboard import demo
from ciboard.ingest import Submission, ingest
from ciboard.settings import Settings
from ciboard.warehouse import Warehouse

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
# The order a district loads them in: reference data, then rosters, then what refers to students.
SAMPLE_FILES = (
    ("schools", None),
    ("vendors", None),
    ("contracts", None),
    ("annotations", None),
    ("roster", None),
    ("sessions", "V1"),
    ("school_attendance", None),
    ("assessment", None),
    ("survey", "V1"),
)
DEMO_STUDENTS = 3000
DEMO_SEED = 11


def make_warehouse(data_dir: Path, **settings) -> Warehouse:
    return Warehouse(Settings(data_dir=data_dir, **settings))


def sample_submissions() -> list[Submission]:
    return [Submission(SAMPLES / f"{kind}.csv", kind, vendor) for kind, vendor in SAMPLE_FILES]


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    """An empty warehouse with the 2025-26 school year."""
    warehouse = make_warehouse(tmp_path / "data")
    warehouse.init(["2025-26"])
    return warehouse


@pytest.fixture
def loaded(warehouse: Warehouse) -> Warehouse:
    """The empty warehouse with every sample file loaded."""
    ingest(warehouse, sample_submissions())
    return warehouse


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    warehouse = make_warehouse(tmp_path_factory.mktemp("demo") / "data")
    demo.build(warehouse, students=DEMO_STUDENTS, seed=DEMO_SEED)
    return warehouse


def write_csv(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def snapshot(warehouse: Warehouse) -> dict[str, list]:
    """Every data table's rows, to compare before and after something that must change nothing."""
    tables = (
        "facts", "students", "sessions", "school_attendance", "assessments", "survey_responses",
        "schools", "vendors", "contracts", "annotations", "student_dosage",
    )
    with warehouse.cursor() as cur:
        return {t: sorted(map(repr, cur.execute(f"select * from {t}").fetchall())) for t in tables}


SESSIONS_SAMPLE = SAMPLES / "sessions.csv"
