"""Contract-grade payments: a rate card's rules applied to each student, the money each period
owes, and the statement a vendor and the district sign.

Pure: it reads the rows of the `payment_students` view (one per rate-card line and rostered
student: service, enrolment, dosage and results) and imports neither streamlit nor duckdb.

The rules, per rate-card line (a payment outcome of a vendor's contract):
- served: the contract's served rule (at least N attended sessions, N minutes, or N weeks
  meeting the dosage standard) met within the contract dates; the base payment is per student
  served, once per contract, due in the month the rule was met (monthly) or at the end of that
  quarter (quarterly; the contract's last month at the latest).
- eligible for the outcome: served, tested in every window the outcome needs, enrolled by the
  line's date, and (if the line asks) meeting the dosage standard in a share of tutoring weeks.
- successful: the result in the named window at or past the threshold (threshold, percentile),
  or the growth between two windows at or past it (growth), in the metric's better direction.
- an outcome is due in the month after the last window it needs closes (or the contract ends):
  before then nothing is earned for it, and the statement says when it falls due.
- caps: a student's payments add up to at most the student cap, a contract's to at most its cap,
  each taken in date order, so a cap cuts the latest payments.
- a multi-year contract is judged per contract year (the view gives each school year it reaches as
  a contract of its own, from that year's first day): all of the above once per year, on that
  year's terms; a month's statement shows the years in force that month (`in_force`).
"""

import functools
import html
import io
import re
from datetime import date

import numpy as np
import pandas as pd

from ciboard.charts import yes_no
from ciboard.warehouse import data_version

SERVED_BY = {
    "sessions": "attended session(s)",
    "minutes": "minutes attended",
    "dosage_weeks": "week(s) meeting the dosage standard",
}
CONTRACT = ["vendor_id", "contract_starts_on"]
STUDENT = [*CONTRACT, "student_id"]
ROW_COLUMNS = [
    "vendor_id", "contract_starts_on", "payment_metric", "student_id", "served", "served_on", "also_served_under",
    "eligible", "not_eligible_because", "outcome", "base_amount", "outcome_amount", "student_cap_applied", "amount",
]


class PeriodError(ValueError):
    """A period that is not a month written YYYY-MM."""


def period_of(text: str | date) -> date:
    """'2026-01' as its first day."""
    if isinstance(text, date):
        return text.replace(day=1)
    match = re.fullmatch(r"\s*(\d{4})-(\d{2})\s*", str(text))
    if not match or not 1 <= int(match[2]) <= 12:
        raise PeriodError(f"a period is a month written YYYY-MM, e.g. 2026-01, not {text!r}")
    return date(int(match[1]), int(match[2]), 1)


def period_end(period: date) -> date:
    return (pd.Timestamp(period) + pd.offsets.MonthEnd(0)).date()


def label(period: date) -> str:
    return f"{period:%Y-%m}"


def months(contracts: pd.DataFrame) -> list[date]:
    """Every month a statement of these contracts (rows of the payments view) can have: from the
    first contract's start to the last outcome's due month."""
    first = _month(min(contracts["contract_starts_on"]))
    last = max(max(contracts["outcome_due"]), _month(max(contracts["contract_ends_on"])))
    return [d.date() for d in pd.date_range(first, last, freq="MS")]


def closest(periods: list[date], day: date) -> int:
    """The position of the month of `day` among `periods`, or of the nearest one."""
    before = [i for i, p in enumerate(periods) if p <= day]
    return before[-1] if before else 0


def _month(day: date) -> date:
    return day.replace(day=1)


@functools.cache  # a few distinct days over thousands of students
def _month_after(day: date) -> date:
    return (pd.Timestamp(day.replace(day=1)) + pd.offsets.MonthBegin(1)).date()


def _quarter_end(day: date, last: date) -> date:
    """The last month of `day`'s quarter, or the contract's last month if that comes first."""
    end = date(day.year, (day.month - 1) // 3 * 3 + 3, 1)
    return min(end, _month(last))


def describe(line: dict) -> dict[str, str]:
    """A rate-card line's terms in words, as the statement and the page show them."""
    money = "${:,.2f}".format
    sign = "≥" if line["better"] == "higher" else "≤"
    threshold = f"{line['threshold']:g}"
    metric = line["payment_metric"]
    if line["success"] == "growth":
        moves = "grows" if line["better"] == "higher" else "falls"
        success = f"{metric} {moves} by at least {threshold} from the {line['from_window']} to the {line['outcome_window']} window"
    elif line["outcome_window"]:
        success = f"{metric} {sign} {threshold} in the {line['outcome_window']} window"
    else:
        success = f"{metric} {sign} {threshold} on the student's latest result in the contract dates"
    eligible = ["served", "tested in the " + " and ".join(w for w in (line["from_window"], line["outcome_window"]) if w)
                + " window" + ("s" if line["from_window"] else "") if line["outcome_window"] else "with a result"]
    if line["enrolled_by"] is not None and not pd.isna(line["enrolled_by"]):
        eligible.append(f"enrolled by {line['enrolled_by']}")
    if line["min_dosage_share"] is not None and not pd.isna(line["min_dosage_share"]):
        eligible.append(f"dosage standard met in at least {line['min_dosage_share']:.0%} of tutoring weeks")
    caps = []
    if not pd.isna(line["student_cap"]):
        caps.append(f"{money(line['student_cap'])} per student")
    if not pd.isna(line["cap"]):
        caps.append(f"{money(line['cap'])} per contract")
    contract = f"{line['vendor_id']}, {line['contract_starts_on']} to {line['contract_ends_on']}"
    whole = line.get("contract_from"), line.get("contract_to")
    if whole[0] is not None and not pd.isna(whole[0]) and whole != (line["contract_starts_on"], line["contract_ends_on"]):
        contract += f", school year {line['contract_year']} of the contract from {whole[0]} to {whole[1]}"
    return {
        "contract": f"{contract} (terms of batch {line['terms_batch']})",
        "served": f"at least {line['served_min']:g} {SERVED_BY[line['served_by']]} within the contract dates" + (
            "" if pd.isna(line.get("max_sessions_per_day")) else f"; more than {line['max_sessions_per_day']:g} session(s) in a day are flagged"),
        "outcome": success,
        "eligible": ", ".join(eligible),
        "amounts": f"{money(line['base_per_student'])} per student served ({line['base_schedule']}), "
        f"{money(line['outcome_per_student'])} per successful student",
        "caps": ", ".join(caps) or "none",
        "outcome due": f"{label(_month_after(line['outcome_known_on']))}, after "
        + (f"the {line['outcome_window']} window" if line["outcome_window"] else "the contract ends"),
    }


def _windows_named(students: pd.DataFrame) -> pd.DataFrame:
    """No window is None, however the frame spells a missing value."""
    frame = students.copy()
    for column in ("outcome_window", "from_window"):
        frame[column] = pd.Series([None if pd.isna(w) or w == "" else w for w in frame[column]], index=frame.index, dtype=object)
    return frame


def terms(students: pd.DataFrame, period: date | None = None) -> pd.DataFrame:
    """One row per rate-card line: its terms in words; with a period, of the contracts (years) in
    force that month, as its statement shows them."""
    lines = _windows_named(students).drop_duplicates([*CONTRACT, "payment_metric"])
    if period is not None and len(lines):
        shown = in_force(lines, period)
        lines = lines[[key in shown for key in zip(*(lines[c] for c in CONTRACT))]]
    return pd.DataFrame(
        [{"vendor_id": r["vendor_id"], "contract_starts_on": r["contract_starts_on"], "payment_metric": r["payment_metric"],
          "contract_year": r.get("contract_year"), **describe(r)} for r in lines.to_dict("records")],
        columns=["vendor_id", "contract_starts_on", "payment_metric", "contract_year", "contract", "served", "outcome",
                 "eligible", "amounts", "caps", "outcome due"],
    )


# How a line's terms name the version they come from; a version that says the same in words
# changes no term.
_TERMS_OF_BATCH = re.compile(r" \(terms of batch \d+\)$")
_WORDS = ["contract", "served", "outcome", "eligible", "amounts", "caps", "outcome due"]


def changed_terms(then: pd.DataFrame, now: pd.DataFrame) -> set[tuple]:
    """The contracts (vendor, contract_starts_on) of a month whose rate-card terms in words, as
    `terms` gives them, differ between `then` (frozen when the month closed) and `now`: a line
    changed, came or went. Terms frozen before they named their contract's first day are matched
    by vendor, so each of the vendor's contracts now counts as changed."""
    def worded(frame: pd.DataFrame, key: list[str]) -> dict[tuple, set]:
        found: dict[tuple, set] = {}
        for line in frame.to_dict("records"):
            words = (line["payment_metric"], _TERMS_OF_BATCH.sub("", str(line["contract"])), *(line[c] for c in _WORDS[1:]))
            found.setdefault(tuple(str(line[k]) for k in key), set()).add(words)
        return found

    key = ["vendor_id", "contract_starts_on"] if "contract_starts_on" in then else ["vendor_id"]
    was, is_ = worded(then, key), worded(now, key)
    differ = {k for k in was.keys() | is_.keys() if was.get(k) != is_.get(k)}
    starts = {(str(v), str(s)): (v, s) for v, s in zip(now["vendor_id"], now["contract_starts_on"])}
    if "contract_starts_on" in then:
        starts.update({(str(v), str(s)): (v, s if isinstance(s, date) else date.fromisoformat(str(s)))
                       for v, s in zip(then["vendor_id"], then["contract_starts_on"])})
        return {starts[k] for k in differ}
    return {contract for (vendor, _), contract in starts.items() if (vendor,) in differ}


def judge(students: pd.DataFrame) -> pd.DataFrame:
    """Each student's standing on each line: served (and when), eligible or why not, successful,
    and the months the base and the outcome fall due."""
    frame = _windows_named(students[students["student_id"].notna()])
    frame["served"] = frame["served_on"].notna()
    frame["served_on"] = [None if pd.isna(d) else d for d in frame["served_on"]]
    # A student served under two contracts whose dates overlap is paid twice for one service.
    contracts = frame[frame["served"]].drop_duplicates(STUDENT)[[*STUDENT, "contract_ends_on"]]
    both = contracts.merge(contracts, on="student_id", suffixes=("", "_other"))
    both = both[
        (both["contract_starts_on"] != both["contract_starts_on_other"]) | (both["vendor_id"] != both["vendor_id_other"])
    ]
    both = both[(both["contract_starts_on"] <= both["contract_ends_on_other"]) & (both["contract_starts_on_other"] <= both["contract_ends_on"])]
    others = (
        both.assign(other=both["vendor_id_other"] + " from " + both["contract_starts_on_other"].astype(str))
        .groupby(STUDENT)["other"].agg(lambda names: ", ".join(sorted(set(names))))
    )
    frame = frame.merge(others.rename("also_served_under").reset_index(), on=STUDENT, how="left")
    frame["also_served_under"] = frame["also_served_under"].fillna("")

    needed = ["served_on", "served_by", "served_min", "sessions_attended", "minutes_attended", "dosage_weeks", "enrolled_on",
              "enrolled_by", "min_dosage_share", "weeks_tutored", "outcome_window", "from_window", "success", "from_value",
              "outcome_value", "payment_metric", "outcome_known_on", "counted_until"]
    reasons = [_not_eligible(dict(zip(needed, values))) for values in zip(*(frame[c].tolist() for c in needed))]
    frame["not_eligible_because"] = reasons
    frame["eligible"] = [not r for r in reasons]
    direction = np.where(frame["better"] == "lower", -1.0, 1.0)
    growth = (frame["outcome_value"] - frame["from_value"]) * direction
    level = frame["outcome_value"] * direction
    measured = np.where(frame["success"] == "growth", growth, level)
    frame["successful"] = frame["eligible"] & (measured >= frame["threshold"] * np.where(frame["success"] == "growth", 1.0, direction))
    frame["outcome_due"] = [_month_after(d) for d in frame["outcome_known_on"]]
    frame["base_due"] = [
        None if on is None else _month(on) if schedule == "monthly" else _quarter_end(on, last)
        for on, schedule, last in zip(frame["served_on"], frame["base_schedule"], frame["contract_ends_on"])
    ]
    return frame


def _not_eligible(row: dict) -> str:
    reasons = []
    if pd.isna(row["served_on"]):
        reasons.append(f"not served (has {row[_MEASURE[row['served_by']]]:g} of {row['served_min']:g} {SERVED_BY[row['served_by']]})")
    if not pd.isna(row["enrolled_by"]) and row["enrolled_on"] > row["enrolled_by"]:
        reasons.append(f"enrolled {row['enrolled_on']}, after {row['enrolled_by']}")
    if not pd.isna(row["min_dosage_share"]):
        share = row["dosage_weeks"] / row["weeks_tutored"] if row["weeks_tutored"] else 0.0
        if share < row["min_dosage_share"]:
            reasons.append(f"dosage standard met in {share:.0%} of tutoring weeks, under {row['min_dosage_share']:.0%}")
    if row["outcome_known_on"] > row["counted_until"]:
        pass  # the windows the outcome needs have not all closed: no missing test is a reason yet
    elif row["outcome_window"]:
        if row["success"] == "growth" and pd.isna(row["from_value"]):
            reasons.append(f"not tested in the {row['from_window']} window")
        if pd.isna(row["outcome_value"]):
            reasons.append(f"not tested in the {row['outcome_window']} window")
    elif pd.isna(row["outcome_value"]):
        reasons.append(f"no {row['payment_metric']} result in the contract dates")
    return "; ".join(reasons)


_MEASURE = {"sessions": "sessions_attended", "minutes": "minutes_attended", "dosage_weeks": "dosage_weeks"}


def payments_due(judged: pd.DataFrame) -> pd.DataFrame:
    """Every payment the rate card owes, one row per student, line and kind (base, outcome), with
    the month it falls due, before and after the student and contract caps."""
    # The base belongs to the contract: once per student, on the student's first line.
    first = ~judged.duplicated(STUDENT)
    base = judged[first & judged["served"]].assign(kind="base", due=lambda f: f["base_due"], amount_before=lambda f: f["base_per_student"])
    outcome = judged[judged["successful"]].assign(kind="outcome", due=lambda f: f["outcome_due"], amount_before=lambda f: f["outcome_per_student"])
    due = pd.concat([base, outcome])[[*STUDENT, "payment_metric", "kind", "due", "amount_before", "student_cap", "cap"]]
    # Caps cut the latest payments: in date order, a base before the outcomes of its month.
    due = due.sort_values([*STUDENT, "due", "kind", "payment_metric"], kind="stable").reset_index(drop=True)
    due["after_student_cap"] = _capped(due, STUDENT, "amount_before", "student_cap")
    due = due.sort_values([*CONTRACT, "due", "student_id", "kind", "payment_metric"], kind="stable").reset_index(drop=True)
    due["amount"] = _capped(due, CONTRACT, "after_student_cap", "cap")
    return due


def _capped(due: pd.DataFrame, by: list[str], amount: str, cap: str) -> pd.Series:
    """Each amount after a cap on its group's running total (in the frame's order)."""
    running = due.groupby(by, sort=False)[amount].cumsum()
    limit = due[cap].fillna(np.inf)
    before = (running - due[amount]).clip(upper=limit)
    return running.clip(upper=limit) - before


def in_force(judged: pd.DataFrame, period: date) -> set[tuple]:
    """The contracts a month's statement shows, as (vendor, contract_starts_on): every contract,
    and of a multi-year contract the years whose months (start to the later of the year's end and
    its outcomes' due month) hold the month; in a month none holds, its latest year begun by then
    (where corrections to its last months land), or before it begins its first."""
    whole = judged["contract_from"] if "contract_from" in judged else judged["contract_starts_on"]
    spans = (judged.assign(contract_from=whole)
             .groupby(["vendor_id", "contract_from", "contract_starts_on"])
             .agg(ends_on=("contract_ends_on", "max"), known_on=("outcome_known_on", "max")).reset_index())
    shown = set()
    for _, years in spans.groupby(["vendor_id", "contract_from"]):
        holding = [(r.vendor_id, r.contract_starts_on) for r in years.itertuples()
                   if _month(r.contract_starts_on) <= period <= max(_month_after(r.known_on), _month(r.ends_on))]
        begun = years[[_month(d) <= period for d in years["contract_starts_on"]]]
        fallback = begun.tail(1) if len(begun) else years.head(1)
        shown.update(holding or [(r.vendor_id, r.contract_starts_on) for r in fallback.itertuples()])
    return shown


def statement(students: pd.DataFrame, period: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The statement of a month: each student's standing on each line of the contracts in force
    that month (a multi-year contract's year), with what falls due that month; and per contract
    the totals, the caps applied and the total to date."""
    judged = judge(students)
    due = payments_due(judged)
    if len(judged):
        shown = in_force(judged, period)
        judged = judged[[key in shown for key in zip(*(judged[c] for c in CONTRACT))]]
    this = due[due["due"] == period]
    amounts = this.pivot_table(
        index=[*STUDENT, "payment_metric"], columns="kind", values=["amount_before", "after_student_cap", "amount"],
        aggfunc="sum", fill_value=0.0,
    )
    rows = judged.copy()
    key = [*STUDENT, "payment_metric"]

    def amount(value: str, kind: str) -> pd.Series:
        if (value, kind) not in amounts.columns:
            return pd.Series(0.0, index=rows.index)
        found = amounts[(value, kind)].rename("x").reset_index()
        return rows[key].merge(found, on=key, how="left")["x"].fillna(0.0).set_axis(rows.index)

    rows["base_amount"] = amount("amount_before", "base")
    rows["outcome_amount"] = amount("amount_before", "outcome")
    after = amount("after_student_cap", "base") + amount("after_student_cap", "outcome")
    rows["student_cap_applied"] = rows["base_amount"] + rows["outcome_amount"] - after
    rows["amount"] = after
    rows["outcome"] = [_standing(r, period) for r in rows.to_dict("records")]
    rows["served_on"] = rows["served_on"].astype(object)
    rows = rows[ROW_COLUMNS].reset_index(drop=True)
    for column in ("base_amount", "outcome_amount", "student_cap_applied", "amount"):
        rows[column] = rows[column].round(2)

    totals = []
    for (vendor, starts), lines in judged.groupby(CONTRACT, sort=True):
        mine = due[(due["vendor_id"] == vendor) & (due["contract_starts_on"] == starts)]
        now = mine[mine["due"] == period]
        totals.append({
            "vendor_id": vendor,
            "contract_starts_on": starts,
            "period": label(period),
            "students_served": int(lines.drop_duplicates(STUDENT)["served"].sum()),
            "base_amount": round(now.loc[now["kind"] == "base", "amount_before"].sum(), 2),
            "outcome_amount": round(now.loc[now["kind"] == "outcome", "amount_before"].sum(), 2),
            "student_cap_applied": round((now["amount_before"] - now["after_student_cap"]).sum(), 2),
            "contract_cap_applied": round((now["after_student_cap"] - now["amount"]).sum(), 2),
            "total": round(now["amount"].sum(), 2),
            "total_to_date": round(mine.loc[mine["due"] <= period, "amount"].sum(), 2),
            "cap": lines["cap"].iloc[0],
        })
    return rows, pd.DataFrame(totals, columns=[
        "vendor_id", "contract_starts_on", "period", "students_served", "base_amount", "outcome_amount",
        "student_cap_applied", "contract_cap_applied", "total", "total_to_date", "cap",
    ])


def _standing(row: dict, period: date) -> str:
    if not row["served"]:
        return "not eligible"
    if row["outcome_due"] > period:
        after = f"the {row['outcome_window']} window" if row["outcome_window"] else "the contract ends"
        return f"due after {after} ({label(row['outcome_due'])})"
    if not row["eligible"]:
        return "not eligible"
    return "successful" if row["successful"] else "not successful"


def summary(students: pd.DataFrame, as_of: date | None) -> pd.DataFrame:
    """Per rate-card line, what the contract has earned up to `as_of` (its whole term if None):
    payments that fell due in or before as_of's month, after caps. Base, total and cap belong to
    the contract and repeat on each of its lines; add up outcome_amount, not amount_earned."""
    columns = [
        "vendor_id", "payment_metric", "threshold", "outcome_window", "contract_starts_on", "contract_ends_on",
        "counted_until", "outcome_due", "students_served", "students_eligible", "students_successful",
        "base_per_student", "outcome_per_student", "base_amount", "outcome_amount", "amount_uncapped", "cap",
        "amount_earned", "cap_applied",
    ]
    if students.empty:
        return pd.DataFrame(columns=columns)
    judged = judge(students)
    due = payments_due(judged)
    last = _month(as_of) if as_of else date.max
    counted = due[due["due"] <= last]
    lines = []
    for first in _windows_named(students).drop_duplicates([*CONTRACT, "payment_metric"]).to_dict("records"):
        vendor, starts, metric = first["vendor_id"], first["contract_starts_on"], first["payment_metric"]
        line = judged[(judged["vendor_id"] == vendor) & (judged["contract_starts_on"] == starts) & (judged["payment_metric"] == metric)]
        contract = counted[(counted["vendor_id"] == vendor) & (counted["contract_starts_on"] == starts)]
        outcome_due = _month_after(first["outcome_known_on"])
        known = outcome_due <= last
        base = contract.loc[contract["kind"] == "base", "amount_before"].sum()
        uncapped = contract["amount_before"].sum()
        earned = contract["amount"].sum()
        lines.append({
            "vendor_id": vendor, "payment_metric": metric, "threshold": first["threshold"],
            "outcome_window": first["outcome_window"], "contract_starts_on": starts,
            "contract_ends_on": first["contract_ends_on"], "counted_until": first["counted_until"],
            "outcome_due": outcome_due,
            "students_served": int(line["served"].sum()),
            "students_eligible": int(line["eligible"].sum()) if known else 0,
            "students_successful": int(line["successful"].sum()) if known else 0,
            "base_per_student": first["base_per_student"], "outcome_per_student": first["outcome_per_student"],
            "base_amount": round(base, 2),
            "outcome_amount": round(contract.loc[(contract["kind"] == "outcome") & (contract["payment_metric"] == metric), "amount_before"].sum(), 2),
            "amount_uncapped": round(uncapped, 2),
            "cap": first["cap"],
            "amount_earned": round(earned, 2),
            "cap_applied": bool(earned < uncapped - 0.005),
        })
    return pd.DataFrame(lines, columns=columns)


# --- adjustments: later data that would change a closed month ----------------------------------

ADJUSTMENT_COLUMNS = ["vendor_id", "contract_starts_on", "student_id", "corrects", "reason", "amount_before",
                      "amount_after", "amount"]
ADJUSTED = ["vendor_id", "contract_starts_on", "student_id"]


def carried_into(closed: list[str], period: date) -> list[str]:
    """The closed months whose corrections land in `period`: a correction goes to the first month
    after the one it corrects that is not closed, so these are the closed months right before it."""
    shut, found = set(closed), []
    month = (pd.Timestamp(period) - pd.offsets.MonthBegin(1)).date()
    while label(month) in shut:
        found.append(label(month))
        month = (pd.Timestamp(month) - pd.offsets.MonthBegin(1)).date()
    return found


def adjustments(frozen: dict[str, tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]],
                live: dict[str, tuple[pd.DataFrame, pd.DataFrame]], period: date,
                new_terms: dict[str, dict[tuple, str]] | None = None) -> pd.DataFrame:
    """The adjustment lines of an open month: per student, what each closed month carried into it
    (`carried_into`) would pay now less what it paid when it closed and less what a later closed
    month already settled; and per contract, as a line with no student, what the contract cap
    now cuts differently. `frozen` holds every closed month of the vendor as (rows, totals,
    adjustments), `live` each carried month's statement (rows, totals) from the data as it stands,
    `new_terms` per carried month the contracts (vendor, contract_starts_on) whose rate-card terms
    changed since it closed, each with the version now in force in words."""
    settled = pd.concat([carried for *_, carried in frozen.values()] + [_no_adjustments()], ignore_index=True)
    lines = []
    for month in carried_into(list(frozen), period):
        (then, then_totals, _), (now, now_totals) = frozen[month], live[month]
        paid = _owed(then, then_totals)
        owed = _owed(now, now_totals)
        before = paid.add(_owed(settled[settled["corrects"] == month]), fill_value=0.0)
        change = owed.sub(before, fill_value=0.0).round(2)
        for key, amount in change[change.abs() >= 0.005].items():
            version = (new_terms or {}).get(month, {}).get(key[:2])
            cause = (f"rate-card terms changed after {month} closed ({version})" if version
                     else f"data that arrived after {month} closed")
            reason = (_cap_reason(-paid.get(key, 0.0), -owed.get(key, 0.0), cause) if key[2] == CONTRACT_LINE
                      else _reason(_of(then, key), _of(now, key), cause,
                                   "the same standing, paid under the new terms" if version else "the amounts computed again"))
            lines.append({
                **dict(zip(ADJUSTED, key)), "corrects": month, "reason": reason,
                "amount_before": round(before.get(key, 0.0), 2), "amount_after": round(owed.get(key, 0.0), 2),
                "amount": amount,
            })
    return pd.DataFrame(lines, columns=ADJUSTMENT_COLUMNS) if lines else _no_adjustments()


# The student of a contract's own line: what its cap cuts belongs to no one student.
CONTRACT_LINE = ""


def _owed(rows: pd.DataFrame, totals: pd.DataFrame | None = None) -> pd.Series:
    """Per student what a statement pays after the student cap, and per contract (student
    CONTRACT_LINE) what the contract cap takes off, as a negative amount."""
    owed = _per_student(rows)
    if totals is None or totals.empty:
        return owed
    starts = [day if isinstance(day, date) else date.fromisoformat(str(day)) for day in totals["contract_starts_on"]]
    cut = pd.Series(-totals["contract_cap_applied"].to_numpy(dtype=float), index=pd.MultiIndex.from_arrays(
        [totals["vendor_id"].tolist(), starts, [CONTRACT_LINE] * len(totals)], names=ADJUSTED))
    return pd.concat([owed, cut[cut != 0]])


def _cap_reason(then: float, now: float, cause: str) -> str:
    then, now = then + 0.0, now + 0.0  # a cap that cuts nothing is $0.00, not $-0.00
    return f"{cause}: the contract cap cuts ${now:,.2f} now, ${then:,.2f} when it closed"


def adjusted(totals: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """A statement's totals with its adjustment lines: their sum per contract, in the total.
    The total to date stays as computed now, which already holds what the lines correct."""
    per = lines.groupby(["vendor_id", "contract_starts_on"])["amount"].sum() if len(lines) else pd.Series(dtype=float)
    keys = list(zip(totals["vendor_id"], totals["contract_starts_on"]))
    # A correction to a contract year no longer in force (the year before) still needs its total.
    missing = [key for key in per.index if key not in set(keys)]
    if missing:
        period = totals["period"].iloc[0] if len(totals) else None
        extra = pd.DataFrame([{"vendor_id": v, "contract_starts_on": s, "period": period} for v, s in missing])
        totals = pd.concat([totals, extra], ignore_index=True).fillna(
            {c: 0.0 for c in totals.columns if c not in ("vendor_id", "contract_starts_on", "period", "cap")}
        )
        keys = list(zip(totals["vendor_id"], totals["contract_starts_on"]))
    totals = totals.copy()
    totals.insert(totals.columns.get_loc("total"), "adjustments", [round(per.get(k, 0.0), 2) for k in keys])
    totals["total"] = (totals["total"] + totals["adjustments"]).round(2)
    return totals


def _no_adjustments() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float if c.startswith("amount") else object) for c in ADJUSTMENT_COLUMNS})


def _per_student(rows: pd.DataFrame) -> pd.Series:
    if rows.empty:
        return pd.Series(dtype=float, index=pd.MultiIndex.from_tuples([], names=ADJUSTED))
    return rows.groupby(ADJUSTED)["amount"].sum()


def _of(rows: pd.DataFrame, key: tuple) -> pd.DataFrame:
    if rows.empty:
        return rows
    mine = (rows["vendor_id"] == key[0]) & (rows["contract_starts_on"] == key[1]) & (rows["student_id"] == key[2])
    return rows[mine].set_index("payment_metric")


def _reason(then: pd.DataFrame, now: pd.DataFrame, cause: str, otherwise: str) -> str:
    """What changed for a student since the month closed, in words, after what changed it
    (`otherwise` when the student's standing did not change)."""
    said = []
    if then.empty:
        said.append("not on the statement when it closed")
    elif now.empty:
        said.append("no longer on the roster")
    else:
        was, is_ = then.iloc[0], now.iloc[0]
        if bool(was["served"]) != bool(is_["served"]):
            said.append(f"served now (on {is_['served_on']})" if is_["served"] else "no longer served")
        elif is_["served"] and str(was["served_on"]) != str(is_["served_on"]):
            said.append(f"served on {is_['served_on']}, not {was['served_on']}")
        for metric in now.index.intersection(then.index):
            outcomes = then.loc[metric, "outcome"], now.loc[metric, "outcome"]
            # An outcome not yet due is no result: a student served now is simply due later.
            if outcomes[0] != outcomes[1] and not any(o.startswith("due after") for o in outcomes):
                said.append(f"{metric} outcome result changed: {then.loc[metric, 'outcome']}, now {now.loc[metric, 'outcome']}")
            elif round(then.loc[metric, "student_cap_applied"] - now.loc[metric, "student_cap_applied"], 2):
                said.append(f"{metric}: the student cap now cuts ${now.loc[metric, 'student_cap_applied']:,.2f}")
    detail = "; ".join(said) or otherwise
    return f"{cause}: {detail}"


# --- the statement as a file ------------------------------------------------------------------


def to_csv(rows: pd.DataFrame, totals: pd.DataFrame, lines: pd.DataFrame) -> bytes:
    return in_one_table(rows, totals, lines).to_csv(index=False).encode()


def in_one_table(rows: pd.DataFrame, totals: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """The student rows, then the adjustment lines (payment_metric "adjustment", the month they
    correct and why in outcome), then one row per contract with its totals (student_id "TOTAL")."""
    adjustment_rows = lines.assign(
        payment_metric="adjustment", outcome=lines["reason"]
    )
    total_rows = totals.assign(student_id="TOTAL", amount=totals["total"])[
        ["vendor_id", "contract_starts_on", "student_id", "base_amount", "outcome_amount", "student_cap_applied", "amount"]
    ].assign(outcome=[f"contract cap applied: {c:.2f}" for c in totals["contract_cap_applied"]])
    parts = [part for part in (rows, adjustment_rows, total_rows) if len(part)]
    return pd.concat(parts, ignore_index=True).reindex(columns=ROW_COLUMNS)


def statement_table(rows: pd.DataFrame) -> pd.DataFrame:
    """A statement as the query layer gives it (totals and adjustment lines in `attrs`) as one
    table, `in_one_table`'s: what `ciboard query statement` prints, as the statement's CSV file does."""
    return in_one_table(rows, pd.DataFrame(rows.attrs["totals"]), pd.DataFrame(rows.attrs["adjustments"]))


# Columns of dollars: people read them as $1,234,567.00 (the pages, the HTML and xlsx files); a CSV
# file keeps plain numbers, for programs and spreadsheets to read.
MONEY_COLUMNS = ("base_amount", "outcome_amount", "student_cap_applied", "contract_cap_applied", "adjustments", "total",
                 "total_to_date", "cap", "amount", "amount_before", "amount_after")
EXCEL_MONEY = '"$"#,##0.00;-"$"#,##0.00'


def money(amount: float | None) -> str:
    """$1,234,567.00, -$150.00 for a negative amount, and nothing for none (no cap)."""
    if amount is None or pd.isna(amount):
        return ""
    return f"-${-amount:,.2f}" if amount < 0 else f"${amount:,.2f}"


def to_xlsx(rows: pd.DataFrame, totals: pd.DataFrame, terms_frame: pd.DataFrame, lines: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for frame, sheet in ((totals, "Totals"), (rows, "Students"), (lines, "Adjustments"), (terms_frame, "Terms")):
            frame.to_excel(writer, sheet_name=sheet, index=False)
            for position, column in enumerate(frame.columns, start=1):
                if column in MONEY_COLUMNS:
                    for (cell,) in writer.sheets[sheet].iter_rows(min_row=2, min_col=position, max_col=position):
                        cell.number_format = EXCEL_MONEY
    return buffer.getvalue()


def to_html(rows: pd.DataFrame, totals: pd.DataFrame, terms_frame: pd.DataFrame, lines: pd.DataFrame, *, title: str,
            version: str) -> bytes:
    """A self-contained page: nothing in it loads from anywhere."""
    def table(frame: pd.DataFrame) -> str:
        dollars = {c: money for c in frame.columns if c in MONEY_COLUMNS}
        return frame.to_html(index=False, na_rep="", escape=True, border=0, formatters=dollars)

    adjusted = table(lines) if len(lines) else "<p>None: no closed month before this one has changed.</p>"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:2em}}
td,th{{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}}</style></head><body>
<h1>{html.escape(title)}</h1><p>Computed from {html.escape(data_version(version))} ({html.escape(version)}).</p>
<h2>Totals</h2>{table(totals)}<h2>Terms</h2>{table(terms_frame)}<h2>Students</h2>{table(rows)}
<h2>Adjustments</h2>{adjusted}</body></html>"""
    return page.encode()


FORMATS = ("csv", "xlsx", "html")


def as_file(rows: pd.DataFrame, output_format: str, vendor: str) -> bytes:
    """A statement as the query layer gives it (its totals, terms and adjustment lines in `attrs`)
    as a file, its yes/no columns (served, eligible) in Yes and No as every other export."""
    totals, terms_frame = yes_no(pd.DataFrame(rows.attrs["totals"])), yes_no(pd.DataFrame(rows.attrs["terms"]))
    lines = pd.DataFrame(rows.attrs["adjustments"])
    rows = yes_no(rows)
    if output_format == "csv":
        return to_csv(rows, totals, lines)
    if output_format == "xlsx":
        return to_xlsx(rows, totals, terms_frame, lines)
    title = f"Payment statement: {vendor}, {rows.attrs['period']}"
    return to_html(rows, totals, terms_frame, lines, title=title, version=rows.attrs["version"])


def file_name(vendor: str, period: str, output_format: str) -> str:
    return f"statement-{re.sub(r'[^A-Za-z0-9_-]+', '-', vendor)}-{period}.{output_format}"
