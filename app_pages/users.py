"""Accounts (administrators): who may sign in and as what; add, disable, reset passwords and
lift a sign-in lock. The same operations as `ciboard users`, each written to the audit log."""

import pandas as pd
import streamlit as st

from ciboard import accounts
from ciboard.access import ROLES
from ciboard.dashboard import account, audit
from ciboard.session import ROLE_NAMES, app_db

db = app_db()
filters = st.session_state["filters"]
vendor_names = filters.labels.get("vendor_id", {})
school_names = filters.labels.get("school_id", {})

st.title("Accounts")
st.caption(
    "Analysts see everything, student rows included. Facilitators and administrators see every vendor with small "
    "groups hidden. A vendor account sees its own vendor only; a school account its own schools, across vendors, with "
    "small groups hidden and its schools' follow-up lists. An evaluator reads what an analyst reads, read-only, with "
    "every student id replaced by a pseudonym of its own."
)

notice = st.session_state.pop("accounts_notice", None)
if notice:
    st.success(notice, icon=":material/check_circle:")

people = pd.DataFrame(accounts.users(db))
people["status"] = [
    "disabled" if row.disabled_at else "throttled" if pd.notna(row.throttled_until) else "active" for row in people.itertuples()
]
st.dataframe(
    people[["username", "display_name", "role", "vendor_id", "school_ids", "email", "status", "failed_sign_ins", "has_password",
            "created_at"]],
    hide_index=True,
    column_config={
        "username": "User name", "display_name": "Name", "role": "Role", "vendor_id": "Vendor", "school_ids": "Schools", "email": "E-mail",
        "status": st.column_config.TextColumn(
            "Status", help="Throttled: an address that failed to sign in as this account too often must wait to try again."
        ),
        "failed_sign_ins": st.column_config.NumberColumn("Failed sign-ins", help="In the last day, from every address."),
        "has_password": st.column_config.CheckboxColumn("Local password"), "created_at": "Created",
    },
)

add, change = st.columns(2)
with add, st.form("add_account", clear_on_submit=True):
    st.subheader("Add an account")
    username = st.text_input("User name", help="One word, lower case: how the person signs in.")
    display_name = st.text_input("Name")
    role = st.selectbox("Role", ROLES, format_func=ROLE_NAMES.get)
    vendor = st.selectbox(
        "Vendor (vendor accounts only)", [None, *vendor_names],
        format_func=lambda v: "—" if v is None else f"{v} · {vendor_names[v]}",
    )
    schools = st.multiselect(
        "Schools (school accounts only)", list(school_names), format_func=lambda s: f"{s} · {school_names[s]}",
    )
    email = st.text_input("E-mail (for sign-in through the identity provider)")
    if st.form_submit_button("Add with a new password", type="primary", icon=":material/person_add:"):
        password = accounts.generate_password()
        try:
            made = accounts.add_user(
                db, username, role=role, display_name=display_name or None, vendor_id=vendor if role == "vendor" else None,
                school_ids=schools if role == "school" else (), email=email or None, password=password,
            )
        except accounts.AccountError as error:
            st.error(str(error))
        else:
            audit("account added", f"{made.username} as {made.scope}")
            st.session_state["accounts_notice"] = f"Added {made.username}. Their password, shown once: `{password}`"
            st.rerun()

with change:
    st.subheader("Change an account")
    chosen = st.selectbox("Account", list(people["username"]), index=None, placeholder="Choose an account")
    if chosen:
        row = people.set_index("username").loc[chosen]
        left, middle, right = st.columns(3)
        if left.button("New password", icon=":material/key:", help="Also lifts a lock."):
            password = accounts.generate_password()
            accounts.set_password(db, chosen, password)
            audit("password set", chosen)
            st.session_state["accounts_notice"] = f"New password for {chosen}, shown once: `{password}`"
            st.rerun()
        if pd.notna(row["throttled_until"]) and right.button(
            "Lift lock", icon=":material/lock_open:",
            help="Every address may try to sign in again at once; the password stays as it is.",
        ):
            accounts.unlock(db, chosen, by=account())
            st.session_state["accounts_notice"] = f"{chosen} may sign in again from anywhere."
            st.rerun()
        disabled = bool(row["disabled_at"])
        if middle.button("Enable" if disabled else "Disable", icon=":material/block:"):
            accounts.set_disabled(db, chosen, not disabled)
            audit("account enabled" if disabled else "account disabled", chosen)
            st.session_state["accounts_notice"] = f"{chosen} is now {'enabled' if disabled else 'disabled'}."
            st.rerun()
        if row["role"] == "school":
            own = [s.strip() for s in (row["school_ids"] or "").split(",") if s.strip()]
            with st.form("account_schools"):
                chosen_schools = st.multiselect(
                    "Schools this account reads", sorted(set(school_names) | set(own)), default=own,
                    format_func=lambda s: f"{s} · {school_names.get(s, 'not in the data')}",
                )
                if st.form_submit_button("Save schools", icon=":material/school:"):
                    try:
                        accounts.set_schools(db, chosen, chosen_schools, by=account())
                    except accounts.AccountError as error:
                        st.error(str(error))
                    else:
                        st.session_state["accounts_notice"] = f"{chosen} now reads {', '.join(sorted(chosen_schools))}."
                        st.rerun()
