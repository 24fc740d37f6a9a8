"""The `ciboard` command: demo data, ingest, and any view as any scope."""

import csv
import sys
from datetime import datetime
from pathlib import Path

import click

from ciboard import accounts
from ciboard import demo as demo_district
from ciboard.access import ROLES, Scope, ScopeError
from ciboard.appdb import POSTGRES_SCHEMES, AppDB, CopyRefused, copy_sqlite_to_postgres
from ciboard.cli_common import (
    audit_command, command_line_operator, data_dir_option, errors_option, os_user, replace_option, say, settings_for, warehouse_for,
    write_frame,
)
from ciboard.cli_contracts import contracts, payments
from ciboard.ingest import IngestRejected, ReplaceUnconfirmed, Submission, ingest as ingest_files, rederive_profile
from ciboard.submissions import week_lines
from ciboard.kinds import KINDS
from ciboard.privacy import for_export
from ciboard.queries import VIEWS, QueryError, data_map, run
from ciboard.settings import Settings
from ciboard.warehouse import Warehouse, WarehouseMissing


@click.group(help=__doc__)
def main() -> None:
    pass


@main.command(help="Create an empty warehouse with the schema and the data map, and add school years.")
@click.option("--school-year", "school_years", multiple=True, help="e.g. 2025-26; repeat for several.")
@data_dir_option
def init(school_years: tuple[str, ...], data_dir: Path | None) -> None:
    warehouse = warehouse_for(data_dir)
    try:
        added = warehouse.init(list(school_years))
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    click.echo(
        f"warehouse {warehouse.version()} in {warehouse.directory}"
        + (f"; added school year(s) {', '.join(added)}" if added else "")
    )


@main.command(
    "migrate-to-lake",
    help="Move a file warehouse (the storage before the lake) into a DuckLake: its current version and "
    "every version a record pinned, oldest first, each as a snapshot, with the records' pins. The lake is the one "
    "CIBOARD_CATALOG_URL and CIBOARD_LAKE_PATH name (default: a SQLite catalog under DATA_DIR/lake). The file "
    "warehouse is left as it was; the dashboard and the commands read the lake from then on (unless "
    "CIBOARD_STORAGE=files).",
)
@click.option(
    "--from-export",
    "export",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Read the current version from this EXPORT DATABASE folder instead (a file a newer DuckDB wrote).",
)
@data_dir_option
def migrate_to_lake(export: Path | None, data_dir: Path | None) -> None:
    from ciboard.lake_catalog import LakeError

    settings = settings_for(data_dir)
    files = Warehouse(Settings(**{**settings.model_dump(), "storage": "files", "catalog_url": None}))
    lake = Warehouse(Settings(**{**settings.model_dump(), "storage": "lake"}))
    if export is not None:
        sources, pins = [("export", export)], {}
    else:
        if not files.exists():
            raise click.ClickException(f"no file warehouse in {files.directory} to move")
        pins = files.pins()
        kept = sorted({v for v in pins if files.is_kept(v)} | {files.version()})
        sources = [(version, files.path_of(version)) for version in kept]
    try:
        moved = lake.move_in(sources, pins)
    except LakeError as error:
        raise click.ClickException(str(error)) from None
    for version, snapshot in moved.items():
        click.echo(f"{version} -> {snapshot}" + (f" (pinned by {', '.join(pins[version])})" if pins.get(version) else ""))
    click.echo(
        f"the lake holds the warehouse as {lake.version()}: the dashboard and the commands read it from now on"
        + (" once CIBOARD_STORAGE=files is unset" if settings.storage == "files" else "")
        + f"; the file warehouse in {files.directory} is left as it was"
    )


@main.command(
    help="Lake upkeep (run it daily, e.g. from cron): expire snapshots older than CIBOARD_KEEP_DAYS that no "
    "record pinned, merge small Parquet files and delete the files no kept snapshot reads."
)
@data_dir_option
def maintain(data_dir: Path | None) -> None:
    warehouse = warehouse_for(data_dir)
    if not warehouse.settings.on_lake:
        click.echo("nothing to do: the file warehouse deletes old versions after each publish")
        return
    before = warehouse.lake.data_bytes()
    expired = warehouse.maintain()
    click.echo(
        f"expired {len(expired)} snapshot(s); kept {len(warehouse.pins())} pinned;"
        f" data files {before / 1e6:.1f} MB -> {warehouse.lake.data_bytes() / 1e6:.1f} MB"
    )


@main.command(help="Build the demo district: write its raw files and load them through ingest.")
@click.option("--students", default=12_000, show_default=True, type=click.IntRange(min=60))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--school-year", default="2025-26", show_default=True)
@data_dir_option
def demo(students: int, seed: int, school_year: str, data_dir: Path | None) -> None:
    warehouse = warehouse_for(data_dir)
    started = datetime.now()
    try:
        result = demo_district.build(warehouse, students=students, seed=seed, school_year=school_year, progress=say)
    except FileExistsError as error:
        raise click.ClickException(str(error)) from None
    seconds = (datetime.now() - started).total_seconds()
    click.echo(
        f"demo district: {result.students:,} students, {result.files} files, {result.facts:,} facts,"
        f" warehouse {result.version} in {warehouse.directory} ({seconds:.0f} s)"
    )
    if result.passwords:
        click.echo("\ndemo accounts (shown once here, and on the demo's sign-in page):")
        width = max(map(len, result.passwords))
        for username, password in result.passwords.items():
            click.echo(f"  {username:<{width}}  {password}")


@main.command(
    help="Check and load submission files; a file lands whole or not at all.\n\n"
    "A file for the same vendor, kind and period as one loaded before replaces it. If that would "
    "remove rows, nothing is loaded and the rows removed and added are shown week by week; "
    "run the command again with --replace to go ahead."
)
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", required=True, type=click.Choice(list(KINDS)), help="What the files hold.")
@click.option("--vendor", default=None, help="The submitting vendor's id (vendor files).")
@replace_option
@click.option(
    "--received-at",
    default=None,
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]),
    help="When the file arrived, if not now (timeliness is judged on it).",
)
@errors_option
@data_dir_option
def ingest(
    files: tuple[Path, ...],
    kind: str,
    vendor: str | None,
    replace: bool,
    received_at: datetime | None,
    errors_file: Path | None,
    data_dir: Path | None,
) -> None:
    warehouse = warehouse_for(data_dir)
    if not warehouse.exists():
        raise click.ClickException(f"no warehouse in {warehouse.directory}: run 'ciboard init' first")
    # The district runs the command line, so it is told about every vendor.
    submissions = [Submission(path, kind, vendor, received_at, by_district=True) for path in files]
    audited = {"files": [path.name for path in files], "kind": kind, "scope": f"vendor:{vendor}" if vendor else "district"}
    load_reported(warehouse, audited, errors_file, lambda: ingest_files(warehouse, submissions, progress=say, replace=replace))


class ImportGroup(click.Group):
    """`ciboard import NAME FILE ...`: NAME is edfi, or any import profile the warehouse has."""

    def list_commands(self, ctx):
        from ciboard.profiles import shipped

        return sorted({*super().list_commands(ctx), *shipped()})

    def get_command(self, ctx, name):
        return super().get_command(ctx, name) or profile_import_command(name)


@main.group(
    "import",
    cls=ImportGroup,
    help="Import an export as it comes: 'ciboard import PROFILE FILE [FILE ...]' through an import profile "
    "(nwea-map is shipped; 'ciboard profile list' shows the warehouse's), or Ed-Fi XML "
    "(see the README's Loading data).",
)
def import_group() -> None:
    pass  # click runs the subcommands


def profile_import_command(name: str) -> click.Command:
    @click.command(
        name,
        help=f"Import files through the import profile {name} ('ciboard profile show {name}' prints it), any number "
        "and any terms, as one submission: it lands whole or not at all. Terms' school years are added if missing.",
    )
    @click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @errors_option
    @replace_option
    @data_dir_option
    def import_through_profile(files: tuple[Path, ...], errors_file: Path | None, replace: bool, data_dir: Path | None) -> None:
        from ciboard import exports

        warehouse = warehouse_for(data_dir)
        if not warehouse.exists():
            raise click.ClickException(f"no warehouse in {warehouse.directory}: run 'ciboard init' first")
        audited = {"files": [path.name for path in files], "kind": name, "scope": "district"}
        try:
            load_reported(warehouse, audited, errors_file,
                          lambda: exports.import_files(warehouse, name, list(files), progress=say, replace=replace))
        except exports.NotAnExport as error:
            raise click.ClickException(str(error)) from None

    return import_through_profile


@main.group(help="Import profiles: how an assessment export maps to students, terms and metrics (docs/profiles.md).")
def profile() -> None:
    pass  # click runs the subcommands


@profile.command("add", help="Check a profile (TOML) and add it to the warehouse: a new profile, or the next version of one.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@data_dir_option
def profile_add(file: Path, data_dir: Path | None) -> None:
    from ciboard import profiles

    warehouse = warehouse_for(data_dir)
    if not warehouse.exists():
        raise click.ClickException(f"no warehouse in {warehouse.directory}: run 'ciboard init' first")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{file.name} is not text in UTF-8") from None
    try:
        found = profiles.parse(text, file.name)
        with warehouse.publish() as con:
            version = profiles.add(con, found, f"{os_user()} (command line)")
            # Facts follow the latest definition: what was loaded through the profile is derived again.
            rederive_profile(con, warehouse.settings, profiles.current(con, found.name))
    except profiles.ProfileInvalid as invalid:
        audit_command(warehouse.settings, "profile add", {"file": file.name}, "rejected")
        raise click.ClickException(str(invalid)) from None
    audit_command(warehouse.settings, "profile add", {"file": file.name, "profile": found.name, "version": version})
    click.echo(f"profile {found.name}: version {version}; import with 'ciboard import {found.name} FILE ...'")


@profile.command("list", help="Every import profile the warehouse has, each version with who added it and when.")
@click.option("--format", "output_format", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@data_dir_option
def profile_list(output_format: str, data_dir: Path | None) -> None:
    import pandas as pd

    from ciboard import profiles

    warehouse = warehouse_for(data_dir)
    if not warehouse.exists():
        raise click.ClickException(f"no warehouse in {warehouse.directory}: run 'ciboard init' first")
    warehouse.upgrade_if_stale()
    with warehouse.cursor() as cur:
        rows = profiles.history(cur)
    columns = ["name", "version", "label", "metric_prefix", "added_by", "added_at", "shipped"]
    write_frame(pd.DataFrame(rows, columns=columns), output_format)


@profile.command("show", help="Print a profile's TOML as the warehouse has it (the latest version, or --version N).")
@click.argument("name")
@click.option("--version", "version", type=int, default=None)
@data_dir_option
def profile_show(name: str, version: int | None, data_dir: Path | None) -> None:
    warehouse = warehouse_for(data_dir)
    if not warehouse.exists():
        raise click.ClickException(f"no warehouse in {warehouse.directory}: run 'ciboard init' first")
    warehouse.upgrade_if_stale()
    from ciboard import profiles

    with warehouse.cursor() as cur:
        text = profiles.text_of(cur, name, version)
    if text is None:
        raise click.ClickException(f"no import profile {name}" + (f" version {version}" if version else ""))
    click.echo(text, nl=False)


@import_group.command(
    "edfi",
    help="Import Ed-Fi Data Standard XML interchanges (EducationOrganization, Student, StudentProgram, "
    "AssessmentMetadata, StudentAssessment, EducationOrgCalendar, StudentAttendance), any number, as one submission: it lands whole or not at all. "
    "docs/edfi.md says what maps to what.",
)
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@errors_option
@replace_option
@click.option("--subject", default=None,
              help="The AcademicSubject (e.g. Mathematics) whose results become the assessment facts, where there are several.")
@data_dir_option
def import_edfi(
    files: tuple[Path, ...], errors_file: Path | None, replace: bool, subject: str | None, data_dir: Path | None
) -> None:
    from ciboard import edfi

    warehouse = warehouse_for(data_dir)
    if not warehouse.exists():
        raise click.ClickException(f"no warehouse in {warehouse.directory}: run 'ciboard init' first")
    audited = {"files": [path.name for path in files], "kind": "edfi", "scope": "district"}
    try:
        load_reported(warehouse, audited, errors_file,
                      lambda: edfi.import_files(warehouse, list(files), progress=say, replace=replace, subject=subject))
    except edfi.NotAnInterchange as error:
        raise click.ClickException(str(error)) from None


def load_reported(warehouse, audited: dict, errors_file: Path | None, load) -> None:
    """Runs an ingest (`load` returns its outcomes) for a command: every problem reported (and
    written to `errors_file`), each file's outcome said, and the whole of it audited."""
    try:
        outcomes = load()
    except IngestRejected as rejected:
        report_rejected(rejected, errors_file)
        audit_command(warehouse.settings, "ingest", {**audited, "problems": len(rejected.problems)}, "rejected")
        raise click.ClickException(str(rejected)) from None
    except ReplaceUnconfirmed as unconfirmed:
        report_unconfirmed(unconfirmed)
        audit_command(warehouse.settings, "ingest", {**audited, "replacing": True}, "refused")
        raise click.ClickException(REPLACE_REFUSED) from None
    for outcome in outcomes:
        removed = sum(c.removed for c in outcome.changes)
        click.echo(
            f"{outcome.file}: {outcome.status}"
            + (f" as batch {outcome.batch_id}" if outcome.batch_id else "")
            + (f", {outcome.rows:,} rows" if outcome.status == "accepted" else "")
            + (f", replacing batch {outcome.replaced_batch_id}" if outcome.replaced_batch_id else "")
            + (f" ({removed:,} rows removed)" if removed else "")
        )
    say_outside_contract(warehouse, {o.batch_id for o in outcomes if o.status == "accepted"})
    audit_command(
        warehouse.settings, "ingest",
        {**audited, "status": sorted({o.status for o in outcomes}), "rows": sum(o.rows for o in outcomes if o.status == "accepted"),
         "batches": [o.batch_id for o in outcomes if o.status == "accepted"]},
    )


def say_outside_contract(warehouse, batches: set[int]) -> None:
    """A vendor's file that landed for dates no contract of the vendor reaches: its rows count
    toward no payment, and no schedule expects it (the submission log marks it too)."""
    if not batches:
        return
    log = run(warehouse, "submission_log", Scope("analyst"), {})
    for row in log[log["batch_id"].isin(batches) & log["outside_contract"]].itertuples():
        click.echo(
            f"{row.file_name}: note: no contract of {row.vendor_id} reaches {str(row.period_start)[:10]} to "
            f"{str(row.period_end)[:10]}; its rows are kept but count toward no payment"
        )


REPLACE_REFUSED = (
    "nothing was loaded: the file(s) above would remove rows of the submission(s) they replace."
    " If that is what you mean, run the same command again with --replace."
)


def report_unconfirmed(unconfirmed: ReplaceUnconfirmed) -> None:
    """Week by week, what each replacing file would remove and add."""
    for outcome in unconfirmed.outcomes:
        if outcome.removes_rows:
            click.echo(f"{outcome.file} would replace submission {outcome.replaced_batch_id}"
                       f" ({outcome.kind}, {outcome.period[0]} to {outcome.period[1]}):", err=True)
            for line in week_lines(outcome):
                click.echo(f"  {line}", err=True)


def report_rejected(rejected: IngestRejected, errors_file: Path | None) -> None:
    """Every problem on stderr, and in `errors_file` as CSV if asked."""
    for problem in rejected.problems:
        click.echo(str(problem), err=True)
    if errors_file:
        with open(errors_file, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file", "row", "column", "value", "reason"])
            writer.writerows([p.file, p.row, p.column, p.value, p.reason] for p in rejected.problems)


def parse_params(pairs: tuple[str, ...]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not name=value", param_hint="--param")
        params[name.strip()] = value.strip()
    return params


VIEW_HELP = "\n".join(f"{v.name}: {v.description}; parameters {', '.join(v.params)}" for v in VIEWS.values())


@main.command(
    help="Run a view as a scope and print it (CSV or JSON).\n\n"
    + VIEW_HELP.replace("\n", "\n\n")
    + "\n\nFilters take comma-separated values, e.g. --param grade=3,4 --param english_learner=true."
)
@click.argument("view")
@click.option("--as", "scope_text", required=True, help="analyst, facilitator, admin, vendor:ID, school:ID[,ID...] or evaluator:ACCOUNT")
@click.option("--param", "params", multiple=True, help="name=value; repeat for several.")
@click.option("--format", "output_format", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@data_dir_option
def query(view: str, scope_text: str, params: tuple[str, ...], output_format: str, data_dir: Path | None) -> None:
    try:
        scope = Scope.parse(scope_text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--as") from None
    warehouse = warehouse_for(data_dir)
    given = parse_params(params)
    audited = {"view": view, "params": given, "scope": str(scope)}
    try:
        frame = run(warehouse, view, scope, given)
    except WarehouseMissing as error:
        raise click.ClickException(str(error)) from None
    except (QueryError, ScopeError) as error:
        audit_command(warehouse.settings, "query", {**audited, "error": str(error)}, "refused")
        raise click.ClickException(str(error)) from None
    audit_command(warehouse.settings, "query", {**audited, "rows": len(frame)})
    if view == "statement":
        from ciboard import statements
        from ciboard.payments import statement_table

        frame = statements.as_kept(AppDB.of(warehouse.settings), scope, given.get("vendor_id") or scope.vendor_id,
                                   given["period"], frame)
        # Its adjustment lines and totals too, as the statement's own file has them.
        frame = statement_table(frame)
    # A hidden cell says why it is blank, as in the dashboard's downloads.
    write_frame(for_export(frame, warehouse.settings.min_cell_size), output_format)


@main.command(help="Print the data map: every metric's definition, source, timing and accuracy.")
@click.option("--format", "output_format", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@data_dir_option
def datamap(output_format: str, data_dir: Path | None) -> None:
    try:
        frame = data_map(warehouse_for(data_dir))
    except WarehouseMissing as error:
        raise click.ClickException(str(error)) from None
    write_frame(frame, output_format)


@main.group(
    help="The data map, edited without code: add and edit metrics from TOML files, list them, read each one's "
    "history, retire one nothing uses. Every save is a version with who and when; the command line saves as the "
    "district's operator (an administrator), named by the operating-system user."
)
def metrics() -> None:
    pass  # click runs the subcommands


def _metric_file(path: Path):
    from ciboard import metric_edits

    return metric_edits.read_toml(path.read_bytes(), path.name)


def _save_metric(action: str, name: str | None, file: Path, data_dir: Path | None) -> None:
    from ciboard import metric_edits

    warehouse = warehouse_for(data_dir)
    try:
        given = _metric_file(file)
        name = name or given.fields.get("id")
        if action == "add":
            saved = metric_edits.add(warehouse, command_line_operator(), given)
        else:
            saved = metric_edits.edit(warehouse, command_line_operator(), name, given)
    except metric_edits.MetricError as error:
        audit_command(warehouse.settings, f"metric {action}", {"metric": name, "file": file.name, "error": str(error)},
                      "refused")
        raise click.ClickException("nothing saved:\n" + "\n".join(error.problems)) from None
    except WarehouseMissing as error:
        raise click.ClickException(str(error)) from None
    audit_command(warehouse.settings, f"metric {action}", {"metric": name, "file": file.name, "version": saved})
    click.echo(f"saved {name} version {saved} from {file.name}, as {warehouse.version()}")


@metrics.command("add", help="Add a metric to the data map from a TOML file ([metric] with its id and every field; "
                 "optional [[targets]] and [[gap_targets]]). See the README's 'Metrics without code'.")
@click.option("--from", "file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@data_dir_option
def metrics_add(file: Path, data_dir: Path | None) -> None:
    _save_metric("add", None, file, data_dir)


@metrics.command("edit", help="Save a new version of a metric from a TOML file: the fields given replace the current "
                 "ones, the others are kept; [[targets]] or [[gap_targets]], when given, replace those in force.")
@click.argument("name")
@click.option("--from", "file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@data_dir_option
def metrics_edit(name: str, file: Path, data_dir: Path | None) -> None:
    _save_metric("edit", name, file, data_dir)


@metrics.command("show", help="Print a metric's current definition as a TOML file 'metrics edit' takes back.")
@click.argument("name")
@data_dir_option
def metrics_show(name: str, data_dir: Path | None) -> None:
    from ciboard import metric_edits

    try:
        click.echo(metric_edits.as_toml(warehouse_for(data_dir), name), nl=False)
    except (metric_edits.MetricError, WarehouseMissing) as error:
        raise click.ClickException(str(error)) from None


@metrics.command("list", help="Every metric in the data map: id, label, kind, unit, aggregation, better, target.")
@click.option("--format", "output_format", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@data_dir_option
def metrics_list(output_format: str, data_dir: Path | None) -> None:
    try:
        frame = data_map(warehouse_for(data_dir))
    except WarehouseMissing as error:
        raise click.ClickException(str(error)) from None
    write_frame(frame[["metric_id", "label", "kind", "unit", "aggregation", "better", "frequency", "target"]],
                output_format)


@metrics.command("history", help="Every version of a metric, newest first: who saved it, when, why, and its targets.")
@click.argument("name")
@click.option("--format", "output_format", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@data_dir_option
def metrics_history(name: str, output_format: str, data_dir: Path | None) -> None:
    from ciboard import metric_edits

    try:
        frame = metric_edits.history(warehouse_for(data_dir), name)
    except (metric_edits.MetricError, WarehouseMissing) as error:
        raise click.ClickException(str(error)) from None
    first = ["version", "saved_by", "saved_at", "note", "retired"]
    write_frame(frame[first + [c for c in frame.columns if c not in first]], output_format)


@metrics.command("retire", help="Take a metric out of the data map. Refused while it is in use: a contract line "
                 "(today's or an earlier one) pays on it, or values of it are loaded. Its history stays.")
@click.argument("name")
@click.option("--note", required=True, help="Why it is retired.")
@data_dir_option
def metrics_retire(name: str, note: str, data_dir: Path | None) -> None:
    from ciboard import metric_edits

    warehouse = warehouse_for(data_dir)
    try:
        saved = metric_edits.retire(warehouse, command_line_operator(), name, note)
    except metric_edits.MetricError as error:
        audit_command(warehouse.settings, "metric retire", {"metric": name, "error": str(error)}, "refused")
        raise click.ClickException(str(error)) from None
    audit_command(warehouse.settings, "metric retire", {"metric": name, "version": saved, "note": note})
    click.echo(f"retired {name} (version {saved}); its history stays readable with 'ciboard metrics history {name}'")


@main.group(help="Accounts: who may sign in, and as what (analyst, facilitator, admin, vendor).")
def users() -> None:
    pass  # click runs the subcommands


def app_db_for(data_dir: Path | None) -> AppDB:
    return AppDB.of(warehouse_for(data_dir).settings)


def new_password(generate: bool, from_stdin: bool) -> str:
    if generate:
        return accounts.generate_password()
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


password_options = [
    click.option("--generate", is_flag=True, help="Make a random password and print it once."),
    click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin."),
]


def with_password_options(command):
    for option in reversed(password_options):
        command = option(command)
    return command


@users.command(
    "add",
    help="Add an account. A vendor account needs --vendor, a school account one --school per school; an OIDC-only"
    " account --no-password.",
)
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(list(ROLES)))
@click.option("--vendor", default=None, help="The vendor's id, for a vendor account.")
@click.option("--school", "schools", multiple=True, help="A school's id, for a school account; repeat for each school.")
@click.option("--name", "display_name", default=None, help="The name shown in the app.")
@click.option("--email", default=None, help="The e-mail an identity provider signs this person in with.")
@click.option("--no-password", is_flag=True, help="No local password: the account signs in through OIDC only.")
@with_password_options
@data_dir_option
def users_add(username, role, vendor, schools, display_name, email, no_password, generate, password_stdin, data_dir) -> None:
    warehouse = warehouse_for(data_dir)
    if vendor is not None:
        with warehouse.cursor() as cur:
            if not cur.execute("select count(*) from vendors where vendor_id = ?", [vendor]).fetchall()[0][0]:
                raise click.ClickException(f"unknown vendor {vendor!r}: load it with 'ciboard ingest --kind vendors'")
    if schools:
        with warehouse.cursor() as cur:
            known = {s for (s,) in cur.execute("select school_id from schools").fetchall()}
        unknown = [s for s in schools if s not in known]
        if unknown:
            raise click.ClickException(
                f"unknown school(s) {', '.join(unknown)}: load them with 'ciboard ingest --kind schools'"
            )
    password = None if no_password else new_password(generate, password_stdin)
    db = AppDB.of(warehouse.settings)
    try:
        account = accounts.add_user(
            db, username, role=role, display_name=display_name, vendor_id=vendor, school_ids=schools, email=email,
            password=password,
        )
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from None
    accounts.audit(db, None, "account added", f"{account.username} as {account.scope} by the command line")
    click.echo(f"added {account.username} ({account.scope})")
    if generate:
        click.echo(f"password: {password}")


@users.command("list", help="Every account: role, vendor, e-mail, and whether it is disabled or locked.")
@data_dir_option
def users_list(data_dir: Path | None) -> None:
    rows = accounts.users(app_db_for(data_dir))
    columns = (
        "username", "role", "vendor_id", "school_ids", "display_name", "email", "disabled_at", "failed_sign_ins",
        "throttled_until",
    )
    writer = csv.writer(sys.stdout)
    writer.writerow(columns)
    writer.writerows([row[c] or "" for c in columns] for row in rows)


@users.command("disable", help="Stop an account signing in (its history stays).")
@click.argument("username")
@click.option("--enable", is_flag=True, help="Let a disabled account sign in again.")
@data_dir_option
def users_disable(username: str, enable: bool, data_dir: Path | None) -> None:
    db = app_db_for(data_dir)
    try:
        accounts.set_disabled(db, username, not enable)
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from None
    accounts.audit(db, None, "account enabled" if enable else "account disabled", f"{username} by the command line")
    click.echo(f"{username}: {'enabled' if enable else 'disabled'}")


@users.command("set-password", help="Give an account a new password; this also lifts a lockout.")
@click.argument("username")
@with_password_options
@data_dir_option
def users_set_password(username: str, generate: bool, password_stdin: bool, data_dir: Path | None) -> None:
    db = app_db_for(data_dir)
    password = new_password(generate, password_stdin)
    try:
        accounts.set_password(db, username, password)
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from None
    accounts.audit(db, None, "password set", f"{username} by the command line")
    click.echo(f"{username}: password changed" + (f"; new password: {password}" if generate else ""))


@users.command("unlock", help="Lift a sign-in lock: forget the account's failed sign-ins; its password stays.")
@click.argument("username")
@data_dir_option
def users_unlock(username: str, data_dir: Path | None) -> None:
    try:
        accounts.unlock(app_db_for(data_dir), username)  # audited there
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{username}: unlocked; every address may try to sign in again")


@main.command(
    "migrate-app-db",
    help="Copy the data folder's SQLite app database (app.sqlite3), whole, into an empty PostgreSQL database in one"
    " transaction; then set CIBOARD_APP_DB_URL to that database. The SQLite file is left as it was.",
)
@click.option("--to", "url", required=True, help="The PostgreSQL database: postgresql://user:password@host:port/name.")
@data_dir_option
def migrate_app_db(url: str, data_dir: Path | None) -> None:
    import psycopg

    if not url.startswith(POSTGRES_SCHEMES):
        raise click.ClickException("--to takes a postgresql:// URL")
    source, target = AppDB(warehouse_for(data_dir).settings.app_db_path), AppDB(url)
    try:
        copied = copy_sqlite_to_postgres(source, target)
    except CopyRefused as error:
        raise click.ClickException(str(error)) from None
    except psycopg.Error as error:
        raise click.ClickException(f"PostgreSQL at {target.location}: {error}") from None
    for table, rows in copied.items():
        click.echo(f"{table}: {rows} rows")
    accounts.audit(target, None, "app database copied", {
        "from": str(source.path), "rows": sum(copied.values()), "by": "the command line", "os_user": os_user()})
    click.echo(f"copied {sum(copied.values())} rows from {source.path} into {target.location}; "
               "set CIBOARD_APP_DB_URL to it")


@main.command(help="Write a meeting's packet, as the scope may see it: one self-contained HTML file, or Markdown.")
@click.argument("meeting_id", type=int)
@click.option("--as", "scope_text", required=True, help="analyst, facilitator, admin or vendor:ID")
@click.option("--format", "output_format", type=click.Choice(["html", "md"]), default="html", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The file to write (default: meeting-<date>-<workgroup>.html or .md here).")
@click.option("--letters", "lettered", is_flag=True,
              help="Vendors as the meeting's letters (Vendor A, B, C, as its presenter's screen shows them), their people as their staff.")
@data_dir_option
def packet(meeting_id: int, scope_text: str, output_format: str, output: Path | None, lettered: bool, data_dir: Path | None) -> None:
    from ciboard import packet as meeting_packet
    from ciboard import packet_files
    from ciboard.meetings import NotFound

    try:
        scope = Scope.parse(scope_text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--as") from None
    warehouse = warehouse_for(data_dir)
    db = AppDB.of(warehouse.settings)
    try:
        built = meeting_packet.build(warehouse, db, scope, meeting_id, lettered=lettered)
    except ScopeError as error:
        audit_command(warehouse.settings, "export", {"meeting": meeting_id, "scope": str(scope), "error": str(error)}, "refused")
        raise click.ClickException(str(error)) from None
    except (NotFound, WarehouseMissing) as error:
        raise click.ClickException(str(error)) from None
    path = output or Path(packet_files.filename(built, output_format))
    path.write_text(packet_files.to_html(built) if output_format == "html" else packet_files.to_markdown(built),
                    encoding="utf-8")
    audit_command(warehouse.settings, "export", {"file": str(path), "meeting": meeting_id, "scope": str(scope), "lettered": lettered})
    click.echo(f"wrote the packet of meeting {meeting_id} for {scope} to {path}")


@main.group("report", help="Contract reports: list them, export one's frozen numbers, or build a preview from the data now.")
def report_group() -> None:
    pass  # click runs the subcommands


REPORT_FORMATS = ("html", "md", "xlsx")


def write_report(report, content: dict, output_format: str, output: Path | None) -> Path:
    from ciboard import reports

    path = output or Path(reports.filename(report, content, output_format))
    if output_format == "xlsx":
        path.write_bytes(reports.to_xlsx(report, content))
    else:
        writer = reports.to_html if output_format == "html" else reports.to_markdown
        path.write_text(writer(report, content), encoding="utf-8")
    return path


@report_group.command("list", help="Every report: id, period, version, state, audiences, reviewer and data version.")
@data_dir_option
def report_list(data_dir: Path | None) -> None:
    from ciboard import reports

    warehouse = warehouse_for(data_dir)
    writer = csv.writer(sys.stdout)
    writer.writerow(["report_id", "period", "version", "state", "audiences", "author", "reviewer", "warehouse_version"])
    for r in reports.listing(AppDB.of(warehouse.settings), Scope("admin")):
        writer.writerow([r.report_id, r.period, r.version, r.state, " ".join(r.audiences), r.created_by, r.reviewer or "",
                         r.snapshot["warehouse_version"] if r.snapshot else ""])


@report_group.command("export", help="Write a reviewed, approved or released report's frozen numbers and text.")
@click.argument("report_id", type=int)
@click.option("--copy", "copy", type=click.Choice(["district", "public"]), default="district", show_default=True,
              help="district: the board's and schools' copy; public: the copy for vendors and the public.")
@click.option("--format", "output_format", type=click.Choice(REPORT_FORMATS), default="html", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The file to write (default: contract-report-<period>-v<version>-<copy>.<format> here).")
@data_dir_option
def report_export(report_id: int, copy: str, output_format: str, output: Path | None, data_dir: Path | None) -> None:
    from ciboard import reports

    warehouse = warehouse_for(data_dir)
    try:
        found = reports.read(AppDB.of(warehouse.settings), Scope("admin"), report_id)
        content = reports.copy_for(found, Scope("admin"), "public" if copy == "public" else "board")
    except reports.ReportError as error:
        raise click.ClickException(str(error)) from None
    path = write_report(found, content, output_format, output)
    audit_command(warehouse.settings, "export", {"file": str(path), "report": report_id, "copy": copy})
    click.echo(f"wrote report {report_id} ({found.state}, {copy} copy) to {path}")


@report_group.command("build", help="A report for a period from the data as it stands, stored nowhere: a preview "
                      "of a draft's numbers. The workflow (review, approval, release) is on the Contract reports page.")
@click.option("--school-year", required=True, help="e.g. 2025-26")
@click.option("--period", default="year", show_default=True, help="year, Q1 to Q4, or a month YYYY-MM")
@click.option("--public", "public", is_flag=True, help="The copy for vendors and the public (public_min_cell_size).")
@click.option("--format", "output_format", type=click.Choice(REPORT_FORMATS), default="html", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@data_dir_option
def report_build(school_year: str, period: str, public: bool, output_format: str, output: Path | None,
                 data_dir: Path | None) -> None:
    from ciboard import reports

    warehouse = warehouse_for(data_dir)
    try:
        built, content = reports.preview(warehouse, AppDB.of(warehouse.settings), school_year, period, public=public)
    except (reports.ReportError, WarehouseMissing) as error:
        raise click.ClickException(str(error)) from None
    path = write_report(built, content, output_format, output)
    audit_command(warehouse.settings, "export", {"file": str(path), "report": "preview", "period": built.period,
                                                 "copy": content["copy"]})
    click.echo(f"wrote a preview of the {built.period} report ({content['copy']} copy) to {path}")


main.add_command(payments)
main.add_command(contracts)
