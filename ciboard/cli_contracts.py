"""`ciboard payments` and `ciboard contracts`: statements, closing a month, invoices and
payments, reconciliation, and the rate-card terms of each contract year."""

from datetime import datetime
from pathlib import Path

import click

from ciboard.access import Scope, ScopeError
from ciboard.appdb import AppDB
from ciboard.cli_common import audit_command, command_line_operator, data_dir_option, warehouse_for, write_frame
from ciboard.queries import QueryError, run
from ciboard.warehouse import WarehouseMissing

@click.group(help="Payments under the contracts' rate cards.")
def payments() -> None:
    pass  # click runs the subcommands


@payments.command(
    help="A vendor's payment statement for a month: each student's standing on each rate-card line (served, eligible "
    "or why not, successful), the base and outcome amounts due that month, the caps applied and the total."
)
@click.option("--vendor", required=True, help="The vendor's id, e.g. V3.")
@click.option("--period", required=True, help="The month, YYYY-MM, e.g. 2026-01.")
@click.option("--format", "output_format", type=click.Choice(["csv", "xlsx", "html"]), default="csv", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The file to write (default: CSV to standard output, else statement-<vendor>-<period>.<format> here).")
@click.option("--as", "scope_text", default="admin", show_default=True, help="admin, analyst or vendor:ID")
@data_dir_option
def statement(vendor: str, period: str, output_format: str, output: Path | None, scope_text: str, data_dir: Path | None) -> None:
    from ciboard import payments as rate_cards
    from ciboard import statements

    try:
        scope = Scope.parse(scope_text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--as") from None
    warehouse = warehouse_for(data_dir)
    audited = {"statement": vendor, "period": period, "scope": str(scope), "format": output_format}
    try:
        computed = run(warehouse, "statement", scope, {"vendor_id": vendor, "period": period})
        rows = statements.as_kept(AppDB.of(warehouse.settings), scope, vendor, period, computed)
    except WarehouseMissing as error:
        raise click.ClickException(str(error)) from None
    except (QueryError, ScopeError) as error:
        audit_command(warehouse.settings, "export", {**audited, "error": str(error)}, "refused")
        raise click.ClickException(str(error)) from None
    if rows.empty:
        raise click.ClickException(f"no contract of vendor {vendor} has students up to {period}")
    content = rate_cards.as_file(rows, output_format, vendor)
    if output is None and output_format == "csv":
        click.echo(content.decode(), nl=False)
        audit_command(warehouse.settings, "export", {**audited, "rows": len(rows)})
        return
    path = output or Path(rate_cards.file_name(vendor, rows.attrs["period"], output_format))
    path.write_bytes(content)
    audit_command(warehouse.settings, "export", {**audited, "rows": len(rows), "file": str(path)})
    click.echo(f"wrote the {rows.attrs['period']} statement of {vendor} to {path}")


@payments.command(
    help="Close a vendor's month: freeze its statement with the warehouse version it comes from. The district and "
    "the vendor then sign it off on the Payments page; a closed statement never changes."
)
@click.option("--vendor", required=True, help="The vendor's id, e.g. V3.")
@click.option("--period", required=True, help="The month, YYYY-MM; it must have ended.")
@data_dir_option
def close(vendor: str, period: str, data_dir: Path | None) -> None:
    from ciboard import statements
    from ciboard.payments import PeriodError

    warehouse = warehouse_for(data_dir)
    operator = command_line_operator()
    try:
        computed = run(warehouse, "statement", operator.scope, {"vendor_id": vendor, "period": period})
        closed = statements.close(warehouse, AppDB.of(warehouse.settings), operator, computed)
    except (statements.StatementError, PeriodError, QueryError, WarehouseMissing) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"closed the {closed.period} statement of {vendor}: total {closed.totals['total'].sum():,.2f},"
               f" from warehouse version {closed.warehouse_version}")


@payments.command(
    help="Record invoices received and payments made from a CSV file with the columns kind (invoice or payment), "
    "vendor_id, period (YYYY-MM), reference (the invoice or payment number), amount (dollars), date (YYYY-MM-DD), "
    "and optionally note and corrects (the number of an earlier entry this one supersedes; the note says why). "
    "The file lands whole or not at all."
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@data_dir_option
def record(file: Path, data_dir: Path | None) -> None:
    from ciboard import reconciliation

    warehouse = warehouse_for(data_dir)
    try:
        entries = reconciliation.read_csv(file.read_bytes(), file.name, reconciliation.known_vendors(warehouse))
        ids = reconciliation.record(warehouse, AppDB.of(warehouse.settings), command_line_operator(), entries, file.name)
    except reconciliation.LedgerError as error:
        raise click.ClickException("nothing recorded:\n" + "\n".join(error.problems)) from None
    except WarehouseMissing as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"recorded {len(ids)} entries from {file.name}: {', '.join(map(str, ids))}")


@payments.command(help="Take back an invoice or payment entry: a new entry voids it, with the reason.")
@click.argument("entry_id", type=int)
@click.option("--reason", required=True, help="Why the entry is taken back.")
@data_dir_option
def void(entry_id: int, reason: str, data_dir: Path | None) -> None:
    from ciboard import reconciliation

    warehouse = warehouse_for(data_dir)
    try:
        made = reconciliation.void(warehouse, AppDB.of(warehouse.settings), command_line_operator(), entry_id, reason)
    except reconciliation.LedgerError as error:
        raise click.ClickException("; ".join(error.problems)) from None
    click.echo(f"entry {made} voids entry {entry_id}")


@payments.command(
    help="Per vendor and month: earned (a closed month's statement as frozen, an open month's as computed now with "
    "the adjustments it carries), certified (a closed statement both signed off), invoiced and paid, with every "
    "difference in words. CSV to standard output."
)
@click.option("--vendor", default=None, help="One vendor's id (default: every vendor in scope).")
@click.option("--as", "scope_text", default="admin", show_default=True, help="admin, analyst or vendor:ID")
@data_dir_option
def reconcile(vendor: str | None, scope_text: str, data_dir: Path | None) -> None:
    from ciboard import reconciliation

    try:
        scope = Scope.parse(scope_text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--as") from None
    warehouse = warehouse_for(data_dir)
    try:
        table = reconciliation.reconciliation(warehouse, AppDB.of(warehouse.settings), scope, vendor)
    except (ScopeError, QueryError, WarehouseMissing) as error:
        raise click.ClickException(str(error)) from None
    audit_command(warehouse.settings, "export", {"reconciliation": vendor or "every vendor", "scope": str(scope),
                                                 "rows": len(table)})
    click.echo(table.to_csv(index=False), nl=False)


@click.group(help="Contracts and their rate cards.")
def contracts() -> None:
    pass  # click runs the subcommands


@contracts.group(help="Rate-card terms: show them, their history, or save new terms for a contract year as a new version.")
def terms() -> None:
    pass  # click runs the subcommands


_line_options = [
    click.option("--vendor", required=True, help="The vendor's id, e.g. V3."),
    click.option("--starts-on", required=True, type=click.DateTime(["%Y-%m-%d"]), help="The contract's first day."),
    click.option("--school-year", default=None, help="The school year whose terms (default: the lines for every year)."),
]


def _contract_year(vendor: str, starts_on: datetime, school_year: str | None):
    from ciboard.contract_terms import ContractYear

    return ContractYear(vendor, starts_on.date(), school_year)


@terms.command("show", help="Every rate-card line in force, as a contract file writes it (CSV, or JSON).")
@click.option("--as", "scope_text", default="admin", show_default=True, help="admin, analyst or vendor:ID")
@click.option("--format", "output_format", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@data_dir_option
def terms_show(scope_text: str, output_format: str, data_dir: Path | None) -> None:
    from ciboard import contract_terms

    try:
        frame = contract_terms.lines(warehouse_for(data_dir), Scope.parse(scope_text))
    except (ScopeError, ValueError, WarehouseMissing) as error:
        raise click.ClickException(str(error)) from None
    write_frame(frame, output_format)


@terms.command("history", help="Every version of a contract year's lines, newest first: who saved it, when and why.")
@_line_options[0]
@_line_options[1]
@_line_options[2]
@click.option("--as", "scope_text", default="admin", show_default=True, help="admin, analyst or vendor:ID")
@click.option("--format", "output_format", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@data_dir_option
def terms_history(vendor, starts_on, school_year, scope_text: str, output_format: str, data_dir: Path | None) -> None:
    from ciboard import contract_terms

    try:
        frame = contract_terms.history(warehouse_for(data_dir), Scope.parse(scope_text),
                                       _contract_year(vendor, starts_on, school_year))
    except (ScopeError, ValueError, WarehouseMissing) as error:
        raise click.ClickException(str(error)) from None
    write_frame(frame, output_format)


@terms.command("edit", help="Save new terms for one line of a contract year (and the contract's own terms, which "
               "each of its lines shares, and its dates starts_on and ends_on, which every line of every year shares) as a "
               "new version, checked as a contract file is: --set FIELD=VALUE for each term that changes (an empty value "
               "clears it), and --note saying why. --own-year gives one school year of an every-year contract terms of "
               "its own: the edit applies to that year, and every other year keeps the terms it has.")
@_line_options[0]
@_line_options[1]
@_line_options[2]
@click.option("--metric", required=True, help="The line's payment metric, e.g. sgp.")
@click.option("--set", "settings", multiple=True, required=True, help="FIELD=VALUE, e.g. threshold=55; repeat for several.")
@click.option("--note", required=True, help="Why the terms change.")
@click.option("--own-year", default=None, help="A school year, e.g. 2025-26, of an every-year contract to give these terms.")
@data_dir_option
def terms_edit(vendor, starts_on, school_year, metric: str, settings: tuple[str, ...], note: str, own_year: str | None,
               data_dir: Path | None) -> None:
    from ciboard import contract_terms

    warehouse = warehouse_for(data_dir)
    year = _contract_year(vendor, starts_on, school_year)
    try:
        batch = contract_terms.edit(warehouse, command_line_operator(), year, metric, contract_terms.parse_settings(settings),
                                    note, own_year=own_year)
    except contract_terms.TermsError as error:
        audit_command(warehouse.settings, "rate card edit", {"contract": str(year), "line": metric}, "rejected")
        raise click.ClickException("nothing saved:\n" + "\n".join(error.problems)) from None
    except WarehouseMissing as error:
        raise click.ClickException(str(error)) from None
    audit_command(warehouse.settings, "rate card edit", {"contract": str(year), "line": metric, "batch": batch,
                                                         "fields": sorted(contract_terms.parse_settings(settings)),
                                                         "own_year": own_year})
    saved = f"school year {own_year} of {vendor}'s contract" if own_year else str(year)
    click.echo(f"saved the terms of {saved} as batch {batch}; 'ciboard contracts terms history' lists every version")
