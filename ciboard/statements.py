"""Certified statements: an admin closes a vendor's month, which freezes the statement with the
warehouse version it was computed from (pinned, so the version stays readable), and then the
district and the vendor each sign it off. Certified once both have; it never changes after
closing (the app database refuses any update or delete of it, see sql/app/006).
"""

import json
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd

from ciboard import accounts, payments, privacy
from ciboard.access import Scope, ScopeError
from ciboard.accounts import Account
from ciboard.appdb import AppDB, is_duplicate
from ciboard.warehouse import Warehouse


class StatementError(ValueError):
    """A close or sign-off that cannot be made; the message says why."""


@dataclass(frozen=True)
class Signoff:
    party: str
    signed_by: str
    signed_at: str
    note: str


@dataclass(frozen=True)
class Closed:
    vendor_id: str
    period: str
    warehouse_version: str
    closed_at: str
    closed_by: str
    rows: pd.DataFrame
    totals: pd.DataFrame
    terms: pd.DataFrame
    adjustments: pd.DataFrame  # what later data changed in earlier closed months, carried into this one
    signoffs: tuple[Signoff, ...]

    @property
    def certified(self) -> bool:
        return {s.party for s in self.signoffs} == {"district", "vendor"}

    def record(self) -> str:
        return f"statement-{self.vendor_id}-{self.period}"


def _own(scope: Scope, vendor_id: str) -> None:
    if scope.role == "vendor" and scope.vendor_id != vendor_id:
        raise ScopeError(f"this account sees only its own vendor, {scope.vendor_id}")


def close(warehouse: Warehouse, db: AppDB, who: Account, statement: pd.DataFrame, *, today: date | None = None) -> Closed:
    """Freezes a vendor's statement for a month that has ended, as `statement` (what
    `queries.run(warehouse, "statement", who.scope, ...)` gave, with the warehouse version it
    was read from) has it: what the admin saw is what is kept."""
    if who.role != "admin":
        raise ScopeError("only an admin closes a period")
    if statement.attrs.get("read_as") != str(who.scope):
        raise StatementError(f"a statement is closed as its admin read it: read it as {who.scope} with the statement view")
    vendor_id, month = statement.attrs["vendor_id"], payments.period_of(statement.attrs["period"])
    if payments.period_end(month) >= (today or date.today()):
        raise StatementError(f"{payments.label(month)} has not ended yet: a month is closed after its last day")
    if statement.empty:
        raise StatementError(f"vendor {vendor_id} has no contract with students up to {payments.label(month)}")
    version = statement.attrs["version"]
    frozen = json.dumps({
        "rows": statement.astype(object).where(statement.notna(), None).to_dict(orient="records"),
        "totals": statement.attrs["totals"],
        "terms": statement.attrs["terms"],
        "adjustments": statement.attrs["adjustments"],
    }, default=str)
    # The version is pinned before the record exists: a record never names a version that may go.
    warehouse.pin(version, f"statement-{vendor_id}-{payments.label(month)}")
    now = datetime.now().isoformat(timespec="seconds")
    try:
        with db.transaction() as con:
            con.execute(
                "insert into closed_statements (vendor_id, period, warehouse_version, closed_at, closed_by, frozen)"
                " values (?, ?, ?, ?, ?, ?)",
                [vendor_id, payments.label(month), version, now, who.username, frozen],
            )
    except Exception as error:
        if not is_duplicate(error):  # the unique key (vendor, period): closed before
            raise
        raise StatementError(f"the {payments.label(month)} statement of {vendor_id} is closed already; it never changes") from None
    accounts.audit(db, who, "close statement", {"vendor": vendor_id, "period": payments.label(month), "version": version})
    return read(db, who.scope, vendor_id, payments.label(month))


def sign(db: AppDB, who: Account, vendor_id: str, period: str, note: str = "") -> Closed:
    """The district (an admin) or the vendor itself signs a closed statement off, once each."""
    _own(who.scope, vendor_id)
    party = {"admin": "district", "vendor": "vendor"}.get(who.role)
    if party is None:
        raise ScopeError("a statement is signed off by an admin for the district, or by the vendor")
    closed = read(db, who.scope, vendor_id, period)
    if closed is None:
        raise StatementError(f"the {period} statement of {vendor_id} is not closed yet: an admin closes it first")
    signed = next((s for s in closed.signoffs if s.party == party), None)
    if signed is not None:
        raise StatementError(f"the {party} signed this statement off already ({signed.signed_by}, {signed.signed_at})")
    with db.transaction() as con:
        statement_id = con.execute(
            "select statement_id from closed_statements where vendor_id = ? and period = ?", [vendor_id, closed.period]
        ).fetchone()[0]
        con.execute(
            "insert into statement_signoffs values (?, ?, ?, ?, ?)",
            [statement_id, party, who.username, datetime.now().isoformat(timespec="seconds"), note.strip()],
        )
    accounts.audit(db, who, "sign statement", {"vendor": vendor_id, "period": closed.period, "party": party})
    return read(db, who.scope, vendor_id, closed.period)


def as_kept(db: AppDB, scope: Scope, vendor_id: str | None, period: str, computed: pd.DataFrame) -> pd.DataFrame:
    """A month's statement as the books keep it: a closed month as it was frozen, since what
    changed after is an adjustment of the next open month (the month as computed now would
    count it twice); an open month as `computed` (the statement view's rows)."""
    closed = read(db, scope, vendor_id, period) if vendor_id else None
    return closed.rows if closed else computed


def read(db: AppDB, scope: Scope, vendor_id: str, period: str) -> Closed | None:
    """The closed statement as frozen, with its sign-offs; None if the month is not closed."""
    _own(scope, vendor_id)
    if scope.role == "facilitator":
        raise ScopeError("statements list students: the district's analysts and admins, and the vendor itself, may read them")
    month = payments.label(payments.period_of(period))
    with db.connect() as con:
        row = con.execute("select * from closed_statements where vendor_id = ? and period = ?", [vendor_id, month]).fetchone()
        if row is None:
            return None
        signoffs = con.execute(
            "select party, signed_by, signed_at, note from statement_signoffs where statement_id = ? order by party",
            [row["statement_id"]],
        ).fetchall()
    frozen = json.loads(row["frozen"])
    rows = pd.DataFrame(frozen["rows"])
    for column in ("contract_starts_on", "served_on"):
        if column in rows:
            rows[column] = pd.Series([None if pd.isna(v) else date.fromisoformat(v) for v in rows[column]], dtype=object)
    # Statements closed before adjustments existed carried none.
    carried = pd.DataFrame(frozen.get("adjustments") or {c: [] for c in payments.ADJUSTMENT_COLUMNS})
    carried["contract_starts_on"] = pd.Series([date.fromisoformat(v) for v in carried["contract_starts_on"]], dtype=object)
    carried = carried.astype({c: float for c in ("amount_before", "amount_after", "amount")})
    if scope.pseudonymises:
        key = privacy.pseudonym_key(db)
        rows, carried = privacy.pseudonymised(rows, key, scope.evaluator), privacy.pseudonymised(carried, key, scope.evaluator)
    # As the query layer gives a statement, so that it reads and exports the same way.
    rows.attrs = {"totals": frozen["totals"], "terms": frozen["terms"], "period": month, "version": row["warehouse_version"],
                  "adjustments": carried.to_dict(orient="list")}
    return Closed(
        vendor_id=vendor_id, period=month, warehouse_version=row["warehouse_version"], closed_at=row["closed_at"],
        closed_by=row["closed_by"], rows=rows, totals=pd.DataFrame(frozen["totals"]), terms=pd.DataFrame(frozen["terms"]),
        adjustments=carried, signoffs=tuple(Signoff(*s) for s in signoffs),
    )


def closed_months(db: AppDB, vendor_id: str) -> list[str]:
    with db.connect() as con:
        found = con.execute("select period from closed_statements where vendor_id = ? order by period", [vendor_id]).fetchall()
    return [r["period"] for r in found]


def standing(db: AppDB, scope: Scope, until: date | None = None, vendors: list[str] | None = None) -> pd.DataFrame:
    """Every closed month in scope (up to the month of `until`, of `vendors`) with what it pays:
    vendor_id, period, total, of it the adjustments it carried, certified. Totals only, no
    student, so anyone who sees the payments may read it; a vendor reads its own."""
    sql = """
        select s.vendor_id, s.period, s.frozen, count(distinct o.party) as parties
        from closed_statements s left join statement_signoffs o using (statement_id)
        where cast(? as text) is null or s.vendor_id = ?
        group by s.statement_id order by s.vendor_id, s.period
    """
    own = scope.vendor_id if scope.role == "vendor" else None
    with db.connect() as con:
        found = con.execute(sql, [own, own]).fetchall()
    totals = [json.loads(r["frozen"])["totals"] for r in found]
    frame = pd.DataFrame(
        # Statements closed before adjustments existed carried none.
        [(r["vendor_id"], r["period"], sum(t["total"]), float(sum(t.get("adjustments", []))), r["parties"] == 2)
         for r, t in zip(found, totals)],
        columns=["vendor_id", "period", "total", "adjustments", "certified"],
    )
    if until is not None:
        frame = frame[frame["period"] <= f"{until:%Y-%m}"]
    if vendors:
        frame = frame[frame["vendor_id"].isin(vendors)]
    return frame.reset_index(drop=True)


def standing_by_vendor(closed: pd.DataFrame, earned: pd.Series) -> pd.DataFrame:
    """Per vendor (earned's index), what it earned split as `standing_text` says it: certified,
    closed awaiting sign-off, and provisional (from months not closed, and what later data or terms
    change in closed months, which the next open month carries; it moves when data arrives), from
    `standing`'s rows of the months shown. The three add up to earned."""
    sums = closed.assign(
        certified_total=closed["total"].where(closed["certified"].astype(bool), 0.0),
        awaiting_total=closed["total"].where(~closed["certified"].astype(bool), 0.0),
    ).groupby("vendor_id")[["certified_total", "awaiting_total", "total"]].sum()
    frame = pd.DataFrame({"earned": earned.astype(float)})
    frame["certified"] = sums["certified_total"].reindex(frame.index, fill_value=0.0)
    frame["awaiting_signoff"] = sums["awaiting_total"].reindex(frame.index, fill_value=0.0)
    # Negative when later data or terms take back more from closed months than open ones earn.
    frame["provisional"] = (frame["earned"] - sums["total"].reindex(frame.index, fill_value=0.0)).round(2)
    return frame


def standing_text(closed: pd.DataFrame, earned: float) -> str:
    """How much of what the contracts earned is certified, closed and awaiting sign-off, or
    provisional (moves when data arrives), from `standing`'s rows of the months shown; the parts
    add up to `earned`."""
    if closed.empty:
        return ("**Provisional:** no month is closed yet, so every figure here moves when data arrives. "
                "An admin closes each vendor's month on *Payments*.")
    certified, awaiting = closed[closed["certified"]], closed[~closed["certified"]]

    def months(rows: pd.DataFrame) -> str:
        return f"{len(rows)} vendor month{'' if len(rows) == 1 else 's'}"

    said = []
    if len(certified):
        said.append(f"**{_money(certified['total'].sum())} certified** ({months(certified)} signed off by the district and the vendor)")
    if len(awaiting):
        said.append(f"**{_money(awaiting['total'].sum())} closed, awaiting sign-off** ({months(awaiting)})")
    rest = round(earned - closed["total"].sum(), 2)
    if rest < 0:
        said.append(f"less {_money(-rest)} provisional: what later data or new terms take back from closed months, "
                    "carried into the next open month, which moves when data arrives.")
    else:
        said.append(f"{_money(rest)} provisional, from months not closed and what later data or new terms change in "
                    "closed months (carried into the next open month), which moves when data arrives.")
    return f"Of {_money(earned)} earned: " + "; ".join(said)


def _money(amount: float) -> str:
    return f"\\${amount:,.0f}"
