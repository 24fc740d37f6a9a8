"""Round trips to the app database, SQLite against PostgreSQL: median ms per operation.

    python bench/bench_app_db.py --postgres-url postgresql://user@host:port/postgres [--repeats 50]

(The URL defaults to CIBOARD_TEST_POSTGRES_URL, which scripts/throwaway_postgres.sh prints.) A
fresh database is made on that server for the run and dropped after; the SQLite file is made in
a temporary folder. What a person's clicks cost, through the code the pages call:

- sign-in: `accounts.authenticate`, right password (one scrypt run, the same on both, is most of it);
- account read: `accounts.account`, what every page run does to know who is looking;
- save a note: `meetings.save_meeting` of a meeting's notes from the revision read (a read, the
  version check, the update and its history row, in one transaction);
- sign-in + save a note: the two, one after the other.

Nothing here asserts on time; the tests never run it.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import date
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ciboard import accounts  # noqa: E402
from ciboard import ci_records as rec  # noqa: E402
from ciboard import meetings as m  # noqa: E402
from ciboard.access import Scope  # noqa: E402
from ciboard.appdb import AppDB  # noqa: E402
from ciboard.settings import Settings  # noqa: E402

STAFF = Scope("facilitator")
PASSWORD = "a long bench password"


def timed(operation, repeats: int) -> list[float]:
    operation()  # the first run pays for imports, caches and the migration
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        operation()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def measure(db: AppDB, settings: Settings, repeats: int) -> dict[str, list[float]]:
    accounts.add_user(db, "ana", role="facilitator", password=PASSWORD)
    group = m.save_workgroup(db, STAFF, rec.Workgroup(name="Coordination"), by="ana")
    meeting = m.save_meeting(db, STAFF, rec.draft_meeting(group, date(2026, 3, 10)), by="ana")
    notes = iter(range(10**9))

    def sign_in() -> None:
        accounts.authenticate(db, settings, "ana", PASSWORD, address="127.0.0.1")

    def read_account() -> None:
        accounts.account(db, "ana")

    def save_note() -> None:
        current = m.meeting(db, STAFF, meeting.id)
        m.save_meeting(db, STAFF, replace(current, agenda={**current.agenda, "operations": f"note {next(notes)}"}),
                       by="ana")

    def both() -> None:
        sign_in()
        save_note()

    return {
        "sign-in": timed(sign_in, repeats),
        "account read": timed(read_account, repeats),
        "save a note": timed(save_note, repeats),
        "sign-in + save a note": timed(both, repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres-url", default=os.environ.get("CIBOARD_TEST_POSTGRES_URL"))
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    if not args.postgres_url:
        parser.error("give --postgres-url (or set CIBOARD_TEST_POSTGRES_URL: scripts/throwaway_postgres.sh)")
    name = f"ciboard_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.postgres_url, autocommit=True) as admin:
        admin.execute(f"create database {name}")
    try:
        with tempfile.TemporaryDirectory() as folder:
            sqlite = Settings(data_dir=Path(folder), app_db_url=None)
            postgres = Settings(data_dir=Path(folder), app_db_url=f"{args.postgres_url.rsplit('/', 1)[0]}/{name}")
            results = {
                "SQLite": measure(AppDB.of(sqlite), sqlite, args.repeats),
                "PostgreSQL": measure(AppDB.of(postgres), postgres, args.repeats),
            }
    finally:
        with psycopg.connect(args.postgres_url, autocommit=True) as admin:
            admin.execute(f"drop database {name} with (force)")
    print(f"app database round trips, {args.repeats} runs each after one warm-up; ms: median (p90)")
    print(f"{'operation':<24}{'SQLite':>18}{'PostgreSQL':>18}")
    for operation in results["SQLite"]:
        cells = []
        for backend in ("SQLite", "PostgreSQL"):
            samples = sorted(results[backend][operation])
            cells.append(f"{statistics.median(samples):7.2f} ({samples[int(len(samples) * 0.9) - 1]:6.2f})")
        print(f"{operation:<24}{cells[0]:>18}{cells[1]:>18}")


if __name__ == "__main__":
    main()
