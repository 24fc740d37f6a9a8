"""The Relationships page through AppTest, on the demo district (3000 students, seed 11).

Expected correlations are computed here with scipy from the query layer's rows, not with
the page's own function.
"""

import io
import re

import pandas as pd
import pytest
from scipy import stats

from ciboard import dashboard as dashboard_module
from ciboard import queries
from ciboard.access import ANALYST, Scope
from conftest import VENDOR_LABELS, downloads, figures, open_page, plotted

PAGE = "app_pages/relationships.py"
HEADLINE = re.compile(r"\*\*r = ([+-][\d.]+)\*\* \(95% CI ([+-][\d.]+) to ([+-][\d.]+)\) across \*\*([\d,]+) (students|groups)\*\*")


def headline(app) -> tuple[float, float, float, int, str]:
    found = next(HEADLINE.search(m.value) for m in app.markdown if HEADLINE.search(m.value))
    r, low, high, n, who = found.groups()
    return float(r), float(low), float(high), int(n.replace(",", "")), who


def pearson(x, y) -> tuple[float, float, float]:
    result = stats.pearsonr(x, y)
    interval = result.confidence_interval()
    return result.statistic, interval.low, interval.high


def only_download(app) -> pd.DataFrame:
    [content] = downloads(app).values()
    return pd.read_csv(io.BytesIO(content))


def test_students_attendance_against_self_efficacy(dashboard):
    app = open_page(PAGE, query={"colour": "Vendor"})
    students = queries.run(dashboard, "student_values", ANALYST, {"metric": "tutoring_attendance_rate", "metric_y": "sel_efficacy"})
    r, low, high = pearson(students["x"], students["y"])
    assert headline(app) == (round(r, 2), round(low, 2), round(high, 2), len(students), "students")
    assert r > 0.3  # students who attend more report more self-efficacy in the demo
    captions = " ".join(c.value for c in app.caption)
    assert "Each point is a student" in captions
    assert "A correlation is not a cause" in app.caption[0].value

    # One colour per vendor, every student drawn (3000 is under the drawing limit).
    [scatter] = figures(app)
    assert [t["name"] for t in scatter["data"]] == [VENDOR_LABELS[v] for v in ("V1", "V5", "V3", "V2", "V4", "V6")]
    assert sum(len(plotted(t, "x")) for t in scatter["data"]) == len(students)

    # Within each vendor, the same statistic on that vendor's students.
    within = app.dataframe[0].value.set_index("Vendor")
    v5 = students[students["vendor_id"] == "V5"]
    assert within.loc[VENDOR_LABELS["V5"], ["r", "low", "high"]].tolist() == pytest.approx(pearson(v5["x"], v5["y"]))
    assert within.loc[VENDOR_LABELS["V5"], "Students"] == len(v5)

    # The download holds every student's pair of values.
    exported = only_download(app).set_index("student_key")
    assert len(exported) == len(students)
    assert exported.loc[students["student_key"], "y"].tolist() == pytest.approx(students["y"].tolist())


def test_groups_for_a_facilitator(dashboard, monkeypatch):
    monkeypatch.setattr(dashboard_module, "scope", lambda: Scope("facilitator"))
    query = {"groups": "Race/ethnicity", "colour": "Vendor", "metric_y": "Student growth percentile"}
    app = open_page(PAGE, query=query)
    assert app.get("button_group")[0].proto.options[0].content == "Groups"
    assert len(app.get("button_group")[0].proto.options) == 1  # no student points without student rows

    pair = {"by": "race_ethnicity", "by2": "vendor_id"}
    facilitator = Scope("facilitator")
    xs = queries.run(dashboard, "breakdown", facilitator, {"metric": "tutoring_attendance_rate", **pair})
    ys = queries.run(dashboard, "breakdown", facilitator, {"metric": "sgp", **pair})
    both = xs.merge(ys, on=["race_ethnicity", "vendor_id"], suffixes=("_x", "_y"))
    kept = both[~both["small_cell_x"] & ~both["small_cell_y"]]
    assert 0 < len(kept) < len(both)
    r, low, high = pearson(kept["value_x"], kept["value_y"])
    assert headline(app) == (round(r, 2), round(low, 2), round(high, 2), len(kept), "groups")

    left_out = len(both) - len(kept)
    captions = " ".join(c.value for c in app.caption)
    assert "Each point is a group of students (race/ethnicity × vendor)" in captions
    assert f"{left_out} groups with fewer than 10 students left out" in captions
    exported = only_download(app)
    assert len(exported) == len(kept) and "student_key" not in exported.columns
    assert (exported["n"] >= 10).all()
