"""Reconciliation: per vendor and month, what the contract earned (the month's statement), what
was certified (its closed statement, signed off by the district and the vendor), what the vendor
invoiced and what the district paid, with every difference between them in plain words.

Invoices and payments are the district's ledger in the app database (sql/app/009), only ever
added to: a correction is a new entry that supersedes an earlier one, or voids it, with who,
when and why. An admin records them (as an admin closes a month); a vendor reads its own.
"""

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

import pandas as pd

from ciboard import accounts, payments, queries, statements
from ciboard.access import Scope, ScopeError
from ciboard.accounts import Account
from ciboard.appdb import AppDB
from ciboard.warehouse import Warehouse

KINDS = {"invoice": "invoice received", "payment": "payment made"}
CSV_COLUMNS = ("kind", "vendor_id", "period", "reference", "amount", "date")
CSV_OPTIONAL = ("note", "corrects")
READERS = ("analyst", "admin", "vendor", "evaluator")  # an evaluator reads what an analyst reads
COLUMNS = ["vendor_id", "period", "earned", "adjustments", "status", "certified", "invoiced", "paid", "differences"]


class LedgerError(ValueError):
    """Entries that cannot be recorded; `problems` says where (file, row, field) and why."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Entry:
    kind: str
    vendor_id: str
    period: str
    reference: str
    cents: int | None  # None voids the entry it corrects
    dated_on: date
    note: str = ""
    corrects: int | None = None


def money(amount: float) -> str:
    return f"${amount:,.2f}"


def cents_of(text: str) -> int:
    """'1,200.50' or '$1200.5' as 120050 cents; a negative, zero or unreadable amount is refused."""
    cleaned = str(text).strip().replace(",", "").replace("$", "")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"an amount is a number of dollars, e.g. 1200.50, not {text!r}") from None
    if not amount.is_finite():
        raise ValueError(f"an amount is a number of dollars, e.g. 1200.50, not {text!r}")
    if amount < 0:
        raise ValueError(f"must not be negative ({text}): to take back an entry, void it")
    if amount == 0:
        raise ValueError("must be more than zero: to take back an entry, void it")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"has more than cents ({text})")
    return int(amount * 100)


def entry(fields: dict, where: str, vendors: set[str] | None = None) -> Entry:
    """One entry from its fields as typed (a CSV row or the page's form); every problem names
    `where` and the field. With `vendors`, one of them is the vendor (record checks it anyway)."""
    problems = []

    def field(name: str, read):
        try:
            return read(str(fields.get(name) or "").strip())
        except ValueError as error:
            problems.append(f"{where}, {name}: {error}")

    def kind(text):
        if text not in KINDS:
            raise ValueError(f"is invoice or payment, not {text!r}")
        return text

    def required(text):
        if not text:
            raise ValueError("is empty")
        return text

    def vendor(text):
        if vendors is not None and required(text) not in vendors:
            raise ValueError(f"no vendor {text!r} is loaded")
        return required(text)

    def period(text):
        return payments.label(payments.period_of(text))

    def day(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"a date is written YYYY-MM-DD, e.g. 2026-02-03, not {text!r}") from None

    def corrects(text):
        if not text:
            return None
        if not re.fullmatch(r"\d+", text):
            raise ValueError(f"is the number of the entry this one corrects, not {text!r}")
        return int(text)

    made = dict(
        kind=field("kind", kind), vendor_id=field("vendor_id", vendor), period=field("period", period),
        reference=field("reference", required), cents=field("amount", cents_of), dated_on=field("date", day),
        note=str(fields.get("note") or "").strip(), corrects=field("corrects", corrects),
    )
    if made["corrects"] is not None and not made["note"]:
        problems.append(f"{where}, note: a correction says why")
    if problems:
        raise LedgerError(problems)
    return Entry(**made)


def read_csv(data: bytes, name: str, vendors: set[str] | None = None) -> dict[str, Entry]:
    """The entries of a CSV file by where they are ("file, row 3": rows numbered as a spreadsheet
    shows them, the header being row 1); every bad row is named, and one refuses the whole file.
    `vendors`, the vendors loaded, has an unknown one named with the other problems."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LedgerError([f"{name}: not a UTF-8 text file"]) from None
    records = list(csv.reader(io.StringIO(text)))
    header = [h.strip() for h in (records[0] if records else [])]
    missing = [c for c in CSV_COLUMNS if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS + CSV_OPTIONAL]
    if missing or unknown:
        raise LedgerError([f"{name}, row 1: the columns are {', '.join(CSV_COLUMNS)} (and optionally "
                           f"{', '.join(CSV_OPTIONAL)})" + (f"; missing {', '.join(missing)}" if missing else "")
                           + (f"; unknown {', '.join(unknown)}" if unknown else "")])
    found, problems = {}, []
    for number, values in enumerate(records[1:], start=2):
        where = f"{name}, row {number}"
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            problems.append(f"{where}: {len(values)} values under {len(header)} columns")
            continue
        try:
            found[where] = entry(dict(zip(header, values)), where, vendors)
        except LedgerError as error:
            problems.extend(error.problems)
    if problems:
        raise LedgerError(problems)
    if not found:
        raise LedgerError([f"{name}: no entries under the header"])
    return found


def known_vendors(warehouse: Warehouse) -> set[str]:
    choices = queries.run(warehouse, "choices", Scope("admin"))
    return set(choices.loc[choices["dimension"] == "vendor_id", "value"].astype(str))


def record(warehouse: Warehouse, db: AppDB, who: Account, entries: dict[str, Entry], source: str) -> list[int]:
    """Adds the entries to the ledger, all of them or (on any problem) none; their entry ids.
    Each is keyed by where it comes from ("file, row 3"), which its problems name."""
    if who.role != "admin":
        raise ScopeError("only an admin records invoices and payments")
    vendors = known_vendors(warehouse)
    now = datetime.now().isoformat(timespec="seconds")
    problems, ids = [], []
    with db.transaction() as con:
        for at, new in entries.items():
            if new.vendor_id not in vendors:
                problems.append(f"{at}, vendor_id: no vendor {new.vendor_id!r} is loaded")
                continue
            problem = _checked(con, new, at)
            if problem:
                problems.append(problem)
                continue
            ids.append(con.execute(
                "insert into ledger (kind, vendor_id, period, reference, amount_cents, dated_on, note, corrects,"
                " recorded_at, recorded_by, source) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) returning entry_id",
                [new.kind, new.vendor_id, new.period, new.reference, new.cents, new.dated_on.isoformat(), new.note,
                 new.corrects, now, who.username, source],
            ).fetchone()[0])
        if problems:
            raise LedgerError(problems)  # the transaction rolls back: nothing half-saved
    accounts.audit(db, who, "record invoices and payments",
                   {"source": source, "entries": ids, "corrections": sum(e.corrects is not None for e in entries.values())})
    return ids


def _checked(con, new: Entry, at: str) -> str | None:
    """Why `new` cannot join the ledger as it stands (entries recorded before it in the same
    file included), or None."""
    if new.corrects is not None:
        old = con.execute(
            "select l.*, c.entry_id as corrected_by from ledger l left join ledger c on c.corrects = l.entry_id"
            " where l.entry_id = ?", [new.corrects],
        ).fetchone()
        if old is None:
            return f"{at}, corrects: there is no entry {new.corrects}"
        if old["corrected_by"] is not None:
            return f"{at}, corrects: entry {new.corrects} was corrected already, by entry {old['corrected_by']}; correct that one"
        if old["amount_cents"] is None:
            return f"{at}, corrects: entry {new.corrects} is a void; record the entry anew"
        if old["kind"] != new.kind:
            return f"{at}, kind: entry {new.corrects} is an {old['kind']}: a correction is of the same kind"
    same = con.execute(
        "select l.entry_id, l.period from ledger l where l.kind = ? and l.vendor_id = ? and l.reference = ?"
        " and l.amount_cents is not null and l.entry_id is distinct from ?"
        " and not exists (select 1 from ledger c where c.corrects = l.entry_id)",
        [new.kind, new.vendor_id, new.reference, new.corrects],
    ).fetchone()
    if same is not None:
        return (f"{at}, reference: {new.vendor_id}'s {new.kind} {new.reference} is recorded already (entry "
                f"{same['entry_id']}, {same['period']}); to change it, record a correction of that entry")
    return None


def void(warehouse: Warehouse, db: AppDB, who: Account, entry_id: int, reason: str) -> int:
    """Takes an entry back: a new entry that voids it, with the reason. Its id."""
    with db.connect() as con:
        old = con.execute("select * from ledger where entry_id = ?", [entry_id]).fetchone()
    if old is None:
        raise LedgerError([f"entry {entry_id}: there is no such entry"])
    voiding = Entry(old["kind"], old["vendor_id"], old["period"], old["reference"], None, date.today(),
                    reason.strip(), entry_id)
    if not voiding.note:
        raise LedgerError([f"entry {entry_id}, reason: a void says why"])
    [made] = record(warehouse, db, who, {f"entry {entry_id}": voiding}, "void")
    return made


def _readable(scope: Scope) -> str | None:
    """The vendor the scope is held to, None for the district's; a facilitator reads none."""
    if scope.role not in READERS:
        raise ScopeError("reconciliation is for the district's analysts and admins, and the vendor itself")
    return scope.vendor_id if scope.role == "vendor" else None


def ledger(db: AppDB, scope: Scope, vendor_id: str | None = None) -> pd.DataFrame:
    """Every entry in scope, newest first, with what became of it (current, superseded or voided
    by a later entry): the whole trail. A vendor reads its own."""
    own = _readable(scope)
    if own and vendor_id and vendor_id != own:
        raise ScopeError(f"this account sees only its own vendor, {own}")
    vendor_id = own or vendor_id
    with db.connect() as con:
        rows = con.execute(
            """select l.entry_id, l.kind, l.vendor_id, l.period, l.reference, cast(l.amount_cents as double precision) / 100 as amount,
                      l.dated_on, l.note, l.corrects, l.recorded_at, l.recorded_by, l.source,
                      c.entry_id as corrected_by, c.amount_cents is null as voided
               from ledger l left join ledger c on c.corrects = l.entry_id
               where cast(? as text) is null or l.vendor_id = ?
               order by l.entry_id desc""",
            [vendor_id, vendor_id],
        ).fetchall()
    frame = pd.DataFrame([dict(r) for r in rows], columns=[
        "entry_id", "kind", "vendor_id", "period", "reference", "amount", "dated_on", "note", "corrects",
        "recorded_at", "recorded_by", "source", "corrected_by", "voided",
    ])
    frame["standing"] = pd.Series([_standing(r) for r in frame.to_dict("records")], index=frame.index, dtype=object)
    return frame.drop(columns=["voided"])


def _standing(row: dict) -> str:
    if pd.isna(row["amount"]):
        return f"voids entry {int(row['corrects'])}"
    if not pd.isna(row["corrected_by"]):
        return f"{'voided' if row['voided'] else 'superseded'} by entry {int(row['corrected_by'])}"
    return "current" if pd.isna(row["corrects"]) else f"current, corrects entry {int(row['corrects'])}"


def earned(warehouse: Warehouse, scope: Scope, vendor_id: str, periods: list[str]) -> pd.DataFrame:
    """The total of each open month's statement of the vendor, as computed now, and of it the
    adjustment lines (what later data or terms change in the closed months before it):
    vendor_id, period, earned, adjustments."""
    found = queries.statement_totals(warehouse, scope, vendor_id, periods)
    totals = [(vendor_id, period, round(found[period]["total"].sum(), 2), round(found[period]["adjustments"].sum(), 2))
              for period in periods]
    return pd.DataFrame(totals, columns=["vendor_id", "period", "earned", "adjustments"])


def periods(contracts: pd.DataFrame, recorded: pd.DataFrame, closed: list[str], today: date | None = None) -> list[str]:
    """The open months to reconcile (a closed month is read as it froze): every month of the
    contracts (rows of the payments view) up to this one, the month after each closed one (where
    what changes in it is carried), and any other month something was recorded for (rows with a
    period); none of the `closed` ones."""
    this_month = payments.period_of(today or date.today())
    months = {payments.label(m) for m in payments.months(contracts) if m <= this_month} if len(contracts) else set()
    after_closed = {payments.label(payments.period_end(payments.period_of(m)) + timedelta(days=1)) for m in closed}
    return sorted((months | after_closed | set(recorded["period"])) - set(closed))


def reconcile(earned_frame: pd.DataFrame, closed: pd.DataFrame, entries: pd.DataFrame) -> pd.DataFrame:
    """One row per vendor and month that earned, closed or recorded anything: earned (a closed
    month's statement as it froze, an open month's as computed now), of it the adjustments (lines
    that correct closed months before it), status (open, closed awaiting sign-off, certified),
    certified (the frozen total of a certified month), invoiced and paid (current entries), and
    the differences. Summed over the months, earned is what the vendor is owed in all.

    `earned_frame` is `earned`'s, and names the vendors reconciled; `closed` is
    statements.standing's, `entries` ledger's."""
    vendors = set(earned_frame["vendor_id"])
    closed = closed[closed["vendor_id"].isin(vendors)]
    current = entries[entries["standing"].str.startswith("current") & entries["vendor_id"].isin(vendors)]
    recorded = (current.groupby(["vendor_id", "period", "kind"])["amount"].sum().unstack("kind", fill_value=0.0)
                .reindex(columns=list(KINDS)).rename(columns={"invoice": "invoiced", "payment": "paid"}))
    frozen = (closed.rename(columns={"total": "closed_total", "adjustments": "closed_adjustments"})
              .set_index(["vendor_id", "period"]))
    table = (earned_frame.set_index(["vendor_id", "period"])
             .join(frozen, how="outer").join(recorded, how="outer").reset_index())
    is_closed = table["closed_total"].notna()
    # A closed month earned what it froze. What later data or new terms change in it is an
    # adjustment line of the next open month; counting it here as well would count it twice.
    table["earned"] = table["closed_total"].where(is_closed, table["earned"])
    table["adjustments"] = table["closed_adjustments"].where(is_closed, table["adjustments"])
    money_columns = ["earned", "adjustments", "invoiced", "paid"]
    table[money_columns] = table[money_columns].fillna(0.0).astype(float)
    table["certified"] = table["closed_total"].where(table["certified"].eq(True)).astype(float)
    table["status"] = [
        "open" if pd.isna(total) else "certified" if pd.notna(sure) else "closed, awaiting sign-off"
        for total, sure in zip(table["closed_total"], table["certified"])
    ]
    table = table[(table[["earned", "invoiced", "paid"]] != 0).any(axis=1) | is_closed]
    table["differences"] = [
        "; ".join(differences(r)) for r in table.to_dict("records")
    ]
    return table[COLUMNS].sort_values(["vendor_id", "period"]).reset_index(drop=True)


def differences(row: dict) -> list[str]:
    """Every difference between the figures of one vendor month, in words; none when they agree.
    A certified month is held to what was certified, a month closed awaiting sign-off to what it
    froze, and an open month to what it has earned so far, which is provisional."""
    cents = {k: round((row[k] if pd.notna(row[k]) else 0.0) * 100) for k in ("earned", "invoiced", "paid", "certified")}
    invoiced, paid = cents["invoiced"], cents["paid"]
    is_certified = pd.notna(row["certified"])
    is_open = row["status"] == "open"
    owed = cents["certified"] if is_certified else cents["earned"]
    basis = "certified" if is_certified else "earned so far" if is_open else "earned"
    said = []

    def amount(c: int) -> str:
        return money(c / 100)

    if invoiced == 0 and owed < 0:
        said.append(f"{basis} is {amount(owed)}: its adjustments take back more than the month pays")
    elif invoiced == 0 and owed > 0:
        said.append(f"{basis} {amount(owed)}, not invoiced" if not is_open else f"earned {amount(owed)} so far, not invoiced")
    elif invoiced > owed:
        said.append(f"invoiced {amount(invoiced - owed)} more than {basis}")
    elif invoiced < owed:
        said.append(f"invoiced {amount(owed - invoiced)} less than {basis}")
    if paid > invoiced:
        said.append(f"paid {amount(paid - invoiced)} more than invoiced")
    elif paid < invoiced:
        said.append(f"{amount(invoiced - paid)} invoiced, not paid")
    if paid > 0 and not is_certified:
        said.append("paid before certification: " + (
            "the month is not closed" if is_open else "closed, awaiting sign-off"))
    return said


def reconciliation(warehouse: Warehouse, db: AppDB, scope: Scope, vendor_id: str | None = None,
                   *, today: date | None = None) -> pd.DataFrame:
    """The reconciliation of every vendor in scope (or the one named), every month to reconcile."""
    own = _readable(scope)
    if own and vendor_id and vendor_id != own:
        raise ScopeError(f"this account sees only its own vendor, {own}")
    entries = ledger(db, scope, own or vendor_id)
    contracts = queries.run(warehouse, "payments", scope, {})
    closed = statements.standing(db, scope)
    vendors = sorted({own or vendor_id} if (own or vendor_id) else set(contracts["vendor_id"]) | set(entries["vendor_id"]))
    earned_frames = [
        earned(warehouse, scope, v, periods(contracts[contracts["vendor_id"] == v], entries[entries["vendor_id"] == v],
                                            closed.loc[closed["vendor_id"] == v, "period"].tolist(), today))
        for v in vendors
    ]
    found = (pd.concat(earned_frames) if earned_frames
             else pd.DataFrame(columns=["vendor_id", "period", "earned", "adjustments"]))
    return reconcile(found, closed, entries)
