"""Every setting of CI Board, in one place: from the environment (CIBOARD_*), `.env`, or defaults."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIBOARD_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        Path("data"),
        description="Holds the versioned warehouse (warehouse/) and what the app writes (app.sqlite3).",
    )
    min_cell_size: int = Field(
        10, ge=1, description="Aggregates over fewer students are suppressed for everyone but analysts."
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
    keep_versions: int = Field(
        3, ge=2, description="Published warehouse versions kept on disk; older ones are deleted after a publish."
    )
    memory_limit: str = Field("4GB", description="DuckDB memory limit per process; larger work spills to disk.")
    auth: Literal["local", "oidc"] = Field(
        "local",
        description="How people sign in: `local` accounts with passwords in the app database, or `oidc` through "
        "the identity provider in .streamlit/secrets.toml (the signed-in e-mail must belong to an account).",
    )
    session_hours: float = Field(8, gt=0, description="A sign-in lasts this long; then the person signs in again.")
    lockout_attempts: int = Field(5, ge=1, description="Failed sign-ins in a row that lock an account.")
    lockout_minutes: float = Field(15, gt=0, description="How long a locked account stays locked.")

    @property
    def warehouse_dir(self) -> Path:
        return self.data_dir / "warehouse"

    @property
    def app_db_path(self) -> Path:
        return self.data_dir / "app.sqlite3"


@lru_cache
def get_settings() -> Settings:
    return Settings()
