"""What the `ciboard` command's groups share: the options every command takes, the warehouse a
command reads, and how a command says what it did (stderr, the audit log, a table on stdout)."""

import getpass
import json
import os
import sys
from pathlib import Path

import click

from ciboard import accounts, charts
from ciboard.appdb import AppDB
from ciboard.settings import Settings, get_settings
from ciboard.warehouse import Warehouse

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the warehouse and app data (default: the CIBOARD_DATA_DIR setting, data/).",
)
errors_option = click.option(
    "--errors",
    "errors_file",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write every problem to this CSV file.",
)
replace_option = click.option(
    "--replace", is_flag=True, help="Let the files replace earlier ones even where that removes rows."
)


def warehouse_for(data_dir: Path | None) -> Warehouse:
    return Warehouse(settings_for(data_dir))


def settings_for(data_dir: Path | None) -> Settings:
    settings = get_settings()
    if data_dir is not None:
        settings = Settings(**{**settings.model_dump(), "data_dir": data_dir})
    return settings


def say(message: str) -> None:
    click.echo(message, err=True)


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name, e.g. a container's numeric user
        return f"uid {os.getuid()}"


def command_line_operator() -> accounts.Account:
    """Who a command acts as: the district's own operator, an administrator by the operating
    system's user name (no account signs in to the command line)."""
    return accounts.Account(f"{os_user()} (command line)", "the command line", "admin")


def audit_command(settings: Settings, action: str, detail: dict, outcome: str = "ok") -> None:
    """A command in the app's audit log. No account signs in to the command line, so it names
    the operating-system user who ran it."""
    accounts.audit(AppDB.of(settings), None, action, {**detail, "by": "the command line", "os_user": os_user()}, outcome)


def write_frame(frame, output_format: str) -> None:
    # CSV is read by people, in a spreadsheet, as the dashboard's downloads are; JSON by
    # programs, which have true and false of their own.
    if output_format == "csv":
        charts.yes_no(frame).to_csv(sys.stdout, index=False)
    else:
        records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        click.echo(json.dumps(records, indent=2, default=str))
