"""Vendors as "Vendor A, B, C", and the people of a vendor as "Vendor C staff 1", on a shared
screen (ciboard.dashboard) and in a lettered meeting packet (ciboard.packet).

Each meeting draws its own letters: a shuffle of the vendors that stays the same on every page
and in the packet for as long as the meeting lasts, and is drawn afresh for the next meeting, so
that nobody who learns one meeting's letters can read the next meeting's screen. The shuffle is
an HMAC of each vendor id with a secret the app database made at random when it was created
(sql/app/005_secrets.sql): the vendor ids and a meeting's number do not give the order away.

A letter hides little if the people beside it are named: "Sam Okafor (Vendor C)" tells anyone who
knows Sam which vendor C is. So everyone known to belong to a vendor (an account tied to a vendor,
a workgroup member or meeting attendee recorded with one) reads as their vendor's staff, numbered
in the meeting's own shuffle.
"""

import hashlib
import hmac
import json
import re
import string
from collections import Counter
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import pandas as pd

from ciboard.appdb import AppDB

# Every list of people written down with an organisation: workgroup members and meeting
# attendees, now and in every saved revision (History shows those too). The JSON is read here
# rather than by SQLite's json_each, so both app databases answer alike.
LISTS_OF_PEOPLE = """
select 'members' as field, members as people from workgroups
union all select 'attendees', attendees from meetings
union all select case entity when 'workgroup' then 'members' else 'attendees' end, record
from history where entity in ('workgroup', 'meeting')
"""
# A single name (a first name, a surname) shorter than this is too likely an ordinary word.
SHORTEST_NAME_PART = 3


def meeting_key(meeting_id: int) -> str:
    return f"meeting {meeting_id}"


def day_key(day: date) -> str:
    """Letters for a day with no meeting to present: the same all day, whoever presents."""
    return f"day {day.isoformat()}"


def letter(i: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    return letter(i // 26 - 1) + string.ascii_uppercase[i % 26] if i >= 26 else string.ascii_uppercase[i]


def secret(db: AppDB) -> bytes:
    with db.connect() as con:
        return bytes.fromhex(con.execute("select value from secrets where name = 'letters'").fetchone()["value"])


def shuffle(key: bytes, meeting: str, items: list[str]) -> list[str]:
    """The items in the order this meeting's shuffle gives them: by an HMAC under the secret."""
    return sorted(items, key=lambda item: hmac.new(key, f"{meeting}\x1f{item}".encode(), hashlib.sha256).digest())


def vendor_people(db: AppDB) -> tuple[tuple[str, tuple[str, ...], bool], ...]:
    """(vendor id, the ways one person is written, whether those are a person's name) for
    everyone known to belong to a vendor: each vendor account (its display name, then its user
    name), each workgroup member or meeting attendee recorded with a vendor; and, with no vendor
    id, everyone else written down, whose single names are not a vendor person's to hide.
    A tuple, so a cache can take it as a key."""
    found = set()
    with db.connect() as con:
        for row in con.execute("select username, display_name, vendor_id from users where vendor_id is not null"):
            found.add((row["vendor_id"], tuple(dict.fromkeys(n for n in (row["display_name"], row["username"]) if n)), False))
        for field, people in con.execute(LISTS_OF_PEOPLE).fetchall():
            listed = json.loads(people)  # a list, or a saved revision holding the list in `field`
            for person in (listed if isinstance(listed, list) else listed.get(field)) or []:
                if not isinstance(person, dict):
                    continue
                name = " ".join(str(person.get("name") or "").split())
                if name:
                    vendor = person.get("party_id") if person.get("party") == "vendor" and person.get("party_id") else ""
                    found.add((vendor, (name,), True))
    return tuple(sorted(found))


@dataclass(frozen=True)
class Letters:
    """One meeting's letters: each vendor id -> (its name, "Vendor C"), and each way a vendor's
    person is written -> "Vendor C staff 1"."""

    vendors: dict[str, tuple[str, str]]
    people: dict[str, str]

    @classmethod
    def draw(cls, key: bytes, meeting: str, vendors: dict[str, str], people=()) -> "Letters":
        """`vendors`: id -> name, those the reader may see; `people` as vendor_people gives them."""
        order = shuffle(key, meeting, list(vendors))
        named = {v: (str(vendors[v]), f"Vendor {letter(i)}") for i, v in enumerate(order)}
        # One person is one name at one vendor: an account whose display name is a member's name
        # is that member, and its user name reads as them too.
        written: dict[tuple[str, str], set[str]] = {}
        for vendor_id, names, _ in people:
            if vendor_id in named:
                written.setdefault((vendor_id, names[0]), set()).update(names)
        shown: dict[str, str] = {}
        for vendor_id in named:
            persons = sorted(name for v, name in written if v == vendor_id)
            for number, name in enumerate(shuffle(key, meeting, persons), 1):
                for form in written[(vendor_id, name)]:
                    shown[form] = f"{named[vendor_id][1]} staff {number}"
        # Single names ("Sam", "Okafor") as notes use them, where they are one vendor person's alone.
        owners: dict[str, set[str]] = {}
        for vendor_id, names, personal in people:
            if personal:
                for part in re.findall(r"[^\W\d_][\w'’-]*", names[0]):
                    owners.setdefault(part, set()).add(shown.get(names[0], ""))
        for part, labels in owners.items():
            if len(labels) == 1 and "" not in labels and len(part) >= SHORTEST_NAME_PART and part[0].isupper():
                shown.setdefault(part, next(iter(labels)))
        return cls(named, shown)

    @property
    def aliases(self) -> dict[str, str]:
        """Vendor id -> "Vendor C"."""
        return {v: alias for v, (_, alias) in self.vendors.items()}

    def swaps(self) -> dict[str, str]:
        words = dict(self.people)
        # People shorten a vendor's name to its first word ("Keystone lost two tutors"): that word
        # reads as the vendor too, where no other vendor's name holds it.
        named = [(name.split(), alias) for name, alias in self.vendors.values() if name]
        held = Counter(word for parts, _ in named for word in set(parts))
        words |= {parts[0]: alias for parts, alias in named
                  if len(parts) > 1 and len(parts[0]) >= 4 and held[parts[0]] == 1 and parts[0][0].isupper()}
        # "Cardinal Tutors (V5)" is one vendor, not two.
        words |= {f"{name} ({v})": alias for v, (name, alias) in self.vendors.items() if name and name != v}
        words |= {word: alias for v, (name, alias) in self.vendors.items() for word in (v, name) if word}
        return words

    def text(self, text: str) -> str:
        """Text with every vendor id, vendor name and vendor person's name replaced."""
        swaps = self.swaps()
        return _pattern(tuple(swaps)).sub(lambda m: swaps[m.group(0)], text) if swaps and text else text

    def frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame with its text cells read through `text`."""
        swaps = self.swaps()
        if not swaps:
            return frame
        pattern = _pattern(tuple(swaps))
        frame = frame.copy()
        for column in frame.columns:
            if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
                texts = {v: pattern.sub(lambda m: swaps[m.group(0)], v) for v in frame[column].dropna().unique()
                         if isinstance(v, str)}
                if any(k != v for k, v in texts.items()):
                    frame[column] = frame[column].map(lambda v: texts.get(v, v) if isinstance(v, str) else v)
        return frame


@lru_cache(maxsize=64)
def _pattern(words: tuple[str, ...]) -> re.Pattern:
    # Longest first, so a name wins over an id or a single name inside it; no letter or digit may
    # touch a word ("V2" in "sessions_V2_2025.csv" and "V2-T0055", not in "V20").
    alternatives = sorted(words, key=len, reverse=True)
    return re.compile("|".join(f"(?<![A-Za-z0-9]){re.escape(w)}(?![A-Za-z0-9])" for w in alternatives))


def for_meeting(db: AppDB, meeting: str, vendors: dict[str, str]) -> Letters:
    """The letters `meeting` (meeting_key or day_key) draws for these vendors (id -> name)."""
    return Letters.draw(secret(db), meeting, vendors, vendor_people(db))


def todays_meeting(db: AppDB, day: date) -> int | None:
    """The meeting held on `day`, if there is exactly one."""
    with db.connect() as con:
        held = [row[0] for row in con.execute("select meeting_id from meetings where held_on = ?", [day.isoformat()])]
    return held[0] if len(held) == 1 else None
