"""Every setting of CI Board, in one place: from the environment (CIBOARD_*), `.env`, or defaults."""

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIBOARD_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        Path("data"),
        description="Holds the versioned warehouse (warehouse/) and what the app writes (app.sqlite3).",
    )
    app_db_url: str | None = Field(
        None,
        pattern=r"^postgres(ql)?://",
        description="A postgresql:// URL: the app database (accounts, audit, meetings, commitments) lives in that "
        "PostgreSQL database, shared by several app servers, and is migrated on first use. Unset: app.sqlite3 in the "
        "data folder.",
    )
    min_cell_size: int = Field(
        10, ge=1, description="Aggregates over fewer students are suppressed for everyone but analysts."
    )
    public_min_cell_size: int = Field(
        20, ge=1, description="A contract report released to vendors or the public hides aggregates over fewer students."
    )
    school_year_start_month: int = Field(
        8, ge=1, le=12, description="A school year runs from the first day of this month for twelve months."
    )
    fall_window_start_month: int = Field(8, ge=1, le=12, description="First month of the fall assessment window.")
    winter_window_start_month: int = Field(12, ge=1, le=12, description="First month of the winter window.")
    spring_window_start_month: int = Field(3, ge=1, le=12, description="First month of the spring window.")
    growth_target_sgp: float = Field(
        50,
        ge=1,
        le=99,
        description="SGP at or above which a student met the growth target, where the vendor's rate card names no SGP threshold.",
    )
    absent_below_rate: float = Field(
        0.5,
        gt=0,
        le=1,
        description="A student is persistently absent, on the follow-up list, below this share of scheduled "
        "tutoring sessions attended over the last `absent_weeks` weeks.",
    )
    absent_weeks: int = Field(4, ge=1, le=60, description="The weeks the persistently-absent list looks back over.")
    unserved_weeks: int = Field(
        3,
        ge=1,
        le=60,
        description="The follow-up list of students not yet served: on a roster this many weeks, no session attended.",
    )
    max_sessions_per_day: int = Field(
        2, ge=1, description="Service checks: a student's attended sessions with one vendor in a day beyond this are implausible."
    )
    max_session_minutes: int = Field(
        120, ge=1, description="Service checks: a session with more attended minutes than this is implausible."
    )
    session_checks_counted: list[Literal["calendar", "enrollment", "attendance", "plausibility"]] = Field(
        default_factory=list,
        description="Service checks whose flagged sessions count toward payment unless rejected, as JSON: "
        '["attendance"]. A flag of any other check counts only once an analyst or admin accepts it.',
    )
    student_group_spellings: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="A district's own spellings of student groups, added to the table in ciboard/groups.py, as JSON: "
        '{"race_ethnicity": {"Latinx": "Hispanic"}, "english_learner": {"uri://district.org/ELStatus#Active": "Yes"}}.',
    )
    group_count_date: str | None = Field(
        None,
        pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
        description="MM-DD: every fact takes its student's groups from the district's records in force on this day "
        "of its school year (many states count on a day in October). Unset: each fact takes the groups in force on "
        "its own date.",
    )
    time_zone: str = Field(
        "America/New_York",
        description="The district's time zone (an IANA name): meeting times in calendar files (.ics) are in it.",
    )
    keep_versions: int = Field(
        3,
        ge=2,
        description="Published versions whose stored readings are kept (older ones' go, unless a record pinned the "
        "version); a file warehouse also deletes the older versions themselves after a publish.",
    )
    storage: Literal["files", "lake"] | None = Field(
        None,
        description="Where the warehouse keeps its versions: `lake`, DuckLake snapshots (a catalog database and "
        "Parquet files, on one machine or several servers); `files`, a DuckDB file per version under the data "
        "folder (one machine; the storage before the lake). Unset: `lake`, except for a data folder that holds a "
        "file warehouse and no lake, which stays on files until `ciboard migrate-to-lake` moves it.",
    )
    catalog_url: str | None = Field(
        None,
        description="The lake's catalog (and setting it means `storage = lake`): PostgreSQL for several servers "
        "(postgresql://user:password@host:port/database) or a SQLite file (sqlite:/path/catalog.sqlite). "
        "Unset: a SQLite file in the lake's folder.",
    )
    lake_path: Path | None = Field(
        None,
        description="The lake's folder: its Parquet files, the writer's lock, the records' pins and, without a catalog "
        "URL, the catalog; for several servers, storage every server mounts (default: DATA_DIR/lake).",
    )
    keep_days: float = Field(
        30, gt=0, description="`ciboard maintain` expires the lake's snapshots older than this, except those a record pinned."
    )
    memory_limit: str = Field("4GB", description="DuckDB memory limit per process; larger work spills to disk.")
    auth: Literal["local", "oidc"] = Field(
        "local",
        description="How people sign in: `local` accounts with passwords in the app database, or `oidc` through "
        "the identity provider in .streamlit/secrets.toml (the signed-in e-mail must belong to an account).",
    )
    session_hours: float = Field(8, gt=0, description="A sign-in lasts this long; then the person signs in again.")
    # Sign-in throttling: failures are counted per user name (an account or not) and client address, so a
    # stranger's guesses slow down the stranger and never lock the owner out; a day without failing forgets them.
    sign_in_free_failures: int = Field(
        5, ge=1, description="Failed sign-ins one address may make as one user name before it must wait to try again."
    )
    sign_in_delay_seconds: float = Field(
        30, gt=0, description="The first wait; it doubles with every further failure from that address."
    )
    sign_in_max_delay_minutes: float = Field(15, gt=0, description="The longest wait.")
    sign_in_account_failures: int = Field(
        20,
        ge=1,
        description="Failed sign-ins as one user name from all addresses in a day after which every address waits "
        "from its first failure (guessing from many addresses). An address that has not failed is always let try.",
    )

    @field_validator("group_count_date")
    @classmethod
    def _a_day_of_every_year(cls, value: str | None) -> str | None:
        if value:
            date(2001, *map(int, value.split("-")))  # 02-29 is not a day of every year
        return value

    @field_validator("time_zone")
    @classmethod
    def _a_known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: an IANA name such as America/Chicago") from None
        return value

    @property
    def on_lake(self) -> bool:
        if self.catalog_url or self.storage == "lake":
            return True
        if self.storage == "files":
            return False
        # A file warehouse is known by its pointer to its current version.
        return not (self.warehouse_dir / "CURRENT").exists() or self.local_catalog.exists()

    @property
    def local_catalog(self) -> Path:
        """The lake's catalog without a catalog URL: a SQLite file in the lake's folder."""
        return self.lake_dir / "catalog.sqlite"

    @property
    def lake_dir(self) -> Path:
        """The lake's folder, shared by every server: its Parquet files under data/, and beside them
        the writer's lock, the records' pins and, without a catalog URL, the catalog."""
        return Path(self.lake_path or self.data_dir / "lake")

    @property
    def warehouse_dir(self) -> Path:
        return self.data_dir / "warehouse"

    @property
    def app_db_path(self) -> Path:
        return self.data_dir / "app.sqlite3"


@lru_cache
def get_settings() -> Settings:
    return Settings()
