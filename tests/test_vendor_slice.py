"""Every demo vendor, signed in, on every page it can see, with every trick the address allows:
not a trace of another vendor. Then strings made to break things, through every parameter the
app reads, as an analyst and as a vendor.

A trace is another vendor's id (alone, or inside a file name or a tutor id: "V2_", "V2-") or
name, anywhere the vendor could read it: element text, table cells and headers, widget options,
figure JSON, each download's bytes, and the address the app leaves.
"""

import json
import re

import pytest
from google.protobuf.json_format import MessageToJson

from ciboard import charts, queries
from ciboard.access import Scope, ScopeError
from conftest import VENDOR_LABELS, default_dates, downloads, open_page, plotted

VENDORS = sorted(VENDOR_LABELS)
NAMES = {v: label.split(" · ", 1)[1] for v, label in VENDOR_LABELS.items()}
PAGES = ("overview", "trends", "disparities", "vendors", "relationships", "data_quality", "data_map")
ATTENDANCE = "tutoring_attendance_rate"
# Widget choices per page, as the address gives them. Vendor i walks variant i % len, so the six
# vendors walk them all and every vendor walks every page.
VARIANTS = {
    "overview": [{}, {"since": "2025-11-01", "signal_metrics": "Tutoring attendance rate"}],
    "trends": [
        {"compare": "all other vendors"},
        {"metric": "Met growth target", "compare": "all other vendors"},
        {"grain": "month", "split": "school", "compare": "last year"},
        {"split": "grade", "compare": "another metric", "metric2": "Student self-efficacy (SEL)"},
    ],
    "disparities": [{"by": "Race/ethnicity"}, {"by": "Grade", "metric": "Met growth target"}, {"by": "School", "rows": "Grade"}],
    "vendors": [{}, {"metric": "Student growth percentile"}, {"metric": "Tutoring minutes per week"}],
    "relationships": [{"colour": "Grade"}, {"groups": "School", "metric_y": "Student growth percentile"}],
    "data_quality": [{}, {"feed": "Exit tickets and surveys"}, {"feed": "Rosters"}, {"flag-check": "calendar"}],
    "data_map": [{}, {"q": "vendor"}],
    "follow_up": [{}],
}


def others(own: str) -> list[str]:
    return [v for v in VENDORS if v != own]


def tricks(own: str, i: int) -> dict:
    """Another vendor in every parameter that names a vendor or a group, and vendor as a grouping."""
    other = others(own)[i % 5]
    return {
        # Its label as the filter bar would write it, or its bare id; all of them, or one.
        "vendor": VENDOR_LABELS[other] if i % 2 else [VENDOR_LABELS[v] for v in others(own)],
        "vendor_id": other,
        "school": VENDOR_LABELS[other], "grade": other, "race": NAMES[other], "gender": VENDOR_LABELS[other],
        "band": other, "profile": VENDOR_LABELS[other], "coverage-vendor": VENDOR_LABELS[other],
        "reference": VENDOR_LABELS[other], "group": VENDOR_LABELS[other],
        "split": "vendor", "by": "Vendor", "rows": "Vendor", "colour": "Vendor", "groups": "Vendor",
    }


def without_arrays(value):
    """Figure JSON without plotly's base64 number arrays, whose letters are noise."""
    if isinstance(value, dict):
        return {k: without_arrays(v) for k, v in value.items() if k != "bdata"}
    if isinstance(value, list):
        return [without_arrays(v) for v in value]
    return value


def shown(app, asked: dict | None = None) -> list[tuple[str, str]]:
    """(where, text) for everything the page gives the browser, its downloads, and the address
    it leaves: what it wrote there, not a parameter it never read and left as `asked` it."""
    found = []
    for node in app._tree:
        proto = getattr(node, "proto", None)
        if proto is None:
            continue
        kind = type(node).__name__
        if kind == "Dataframe":
            frame = node.value
            found.append((f"table {node.key}", " | ".join(map(str, frame.columns)) + "\n" + frame.to_csv(index=False)))
        elif getattr(node, "type", "") == "plotly_chart":
            found.append((f"figure {node.key}", json.dumps(without_arrays(json.loads(proto.spec)), ensure_ascii=False)))
        else:
            found.append((f"{kind} {getattr(node, 'key', '')}", MessageToJson(proto, ensure_ascii=False)))
    for key, content in downloads(app).items():
        found.append((f"download {key}", readable(content)))
    written = {k: v for k, v in app.query_params.items() if (asked or {}).get(k) != v}
    found.append(("address", json.dumps(written, ensure_ascii=False)))
    return found


def readable(content: bytes) -> str:
    """A download as text: a workbook (a zip of XML parts) as all its parts' text."""
    if content.startswith(b"PK"):
        import io
        import zipfile

        with zipfile.ZipFile(io.BytesIO(content)) as book:
            return "\n".join(book.read(name).decode() for name in book.namelist() if name.endswith(".xml"))
    return content.decode()


WORD = re.compile(r"[A-Za-z0-9]+")


def traces(words: list[str], texts: list[tuple[str, str]]) -> list[str]:
    """Where any of `words` stands whole (no letter or digit either side) in the texts, with its
    surroundings. A word of letters and digits only (a student id) is such a run of the text's
    own: a set lookup per run, where one pattern of thousands of ids took 20 s a page."""
    plain = {w for w in words if WORD.fullmatch(w)}
    other = [w for w in words if w not in plain]
    pattern = re.compile("|".join(f"(?<![A-Za-z0-9]){re.escape(w)}(?![A-Za-z0-9])" for w in other)) if other else None
    found = []
    for where, text in texts:
        m = next((m for m in WORD.finditer(text) if m.group() in plain), None) or (pattern and pattern.search(text))
        if m:
            found.append(f"{where}: …{text[max(0, m.start() - 60):m.end() + 60]}…")
    return found


def traces_of(vendors: list[str], texts: list[tuple[str, str]]) -> list[str]:
    return traces([*vendors, *(NAMES[v] for v in vendors)], texts)


# Follow-up names no vendor to a presenter (tests/test_presentation.py reads PAGES): only here.
@pytest.mark.parametrize("page", (*PAGES, "follow_up"))
@pytest.mark.parametrize("i, own", list(enumerate(VENDORS)))
def test_a_vendor_sees_only_itself_on_every_page(dashboard, i, own, page):
    variants = VARIANTS[page]
    query = {**tricks(own, i), **variants[i % len(variants)]}
    app = open_page(f"app_pages/{page}.py", query=query, user=f"vendor-{own.lower()}")
    texts = shown(app, query)
    assert not traces_of(others(own), texts)
    assert not app.error, [e.value for e in app.error]


@pytest.mark.parametrize("own", VENDORS)
def test_the_filter_bar_offers_a_vendor_only_its_own(dashboard, own):
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT, signed_in

    app = AppTest.from_file(str(ROOT / "main.py"), default_timeout=90)
    app.query_params.update(tricks(own, 0))
    for key, value in signed_in(f"vendor-{own.lower()}").items():
        app.session_state[key] = value
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert "vendor" not in [m.key for m in app.sidebar.multiselect], "its own vendor is no choice"
    for widget in app.sidebar.multiselect:
        assert widget.value == [], f"{widget.key} took another vendor from the address"
    assert "vendor" not in app.query_params, "no link carries it on"
    assert not traces_of(others(own), shown(app, tricks(own, 0)))


@pytest.mark.parametrize("own", ["V2", "V5"])
def test_what_a_vendor_sees_is_its_scoped_numbers(dashboard, own):
    scope, span = Scope("vendor", own), default_dates(dashboard)
    user = f"vendor-{own.lower()}"

    # Trends opens on its own line beside all other vendors pooled, as the peers view gives them,
    # in the benchmark's one style.
    app = open_page("app_pages/trends.py", query={"vendor": VENDOR_LABELS["V1"]}, user=user)
    mine = queries.run(dashboard, "series", scope, {"metric": ATTENDANCE, "grain": "week", **span})
    peers = queries.run(dashboard, "peers", scope, {"metric": ATTENDANCE, "grain": "week", **span})
    figure = json.loads(app.get("plotly_chart")[0].proto.spec)
    line = next(t for t in figure["data"] if t.get("name") == "Tutoring attendance rate")
    benchmark = next(t for t in figure["data"] if t.get("name") == "All other vendors")
    assert plotted(line) == pytest.approx(mine["value"].tolist(), nan_ok=True)
    assert plotted(benchmark) == pytest.approx(peers["value"].tolist(), nan_ok=True)
    assert set(peers.columns) == {"period_start", "value", "suppressed"}, "no count or sum of the pool"
    assert benchmark["line"] == charts.BENCHMARK_LINE

    # Overview: each tile is its own latest period, beside all other vendors in the same period.
    app = open_page("app_pages/overview.py", user=user)
    latest = mine.dropna(subset=["value"]).iloc[-1]
    tile = next(m for m in app.metric if m.label == "Tutoring attendance rate")
    assert tile.value == f"{latest['value']:.1%}"
    same = peers.loc[peers["period_start"] == latest["period_start"], "value"].iloc[0]
    captions = " ".join(c.value for c in app.caption)
    assert f"All other vendors: **{same:.1%}**" in captions
    payments = queries.run(dashboard, "payments", scope, {"end": span["end"]})
    earned = payments.drop_duplicates(["vendor_id", "contract_starts_on"])["amount_earned"].sum()
    assert next(m for m in app.metric if m.label == "Earned").value == charts.format_money(earned)

    # Vendors: its value over the dates and its students.
    app = open_page("app_pages/vendors.py", user=user)
    row = queries.run(dashboard, "vendors", scope, {"metric": ATTENDANCE, **span}).iloc[0]
    assert f"for your **{int(row['n']):,} students**: **{charts.format_value(row['value'], {'aggregation': 'rate', 'unit': ''})}**" in " ".join(
        m.value for m in app.markdown
    )


REQUIRED = {"metric": ATTENDANCE, "metric_y": "sel_efficacy", "by": "grade", "max_rate": 0.5, "period": "2026-01"}


@pytest.mark.parametrize("own", VENDORS)
def test_a_scope_error_names_no_other_vendor(dashboard, own):
    scope = Scope("vendor", own)
    for name, spec in queries.VIEWS.items():
        if "vendor_id" not in spec.params:
            continue
        required = {p: REQUIRED[p] for p in spec.required}
        for other in others(own):
            with pytest.raises(ScopeError) as refused:
                queries.run(dashboard, name, scope, {**required, "vendor_id": [own, other]})
            assert not traces_of(others(own), [(name, str(refused.value))]), str(refused.value)


# --- Strings made to break things ------------------------------------------------------------

NASTY = [
    "'; drop table facts; --",
    "V1' or '1'='1",
    "<script>alert(1)</script><img src=x onerror=alert(2)>",
    "../../etc/passwd",
    "Ω≈ç√ 学生 🙂 \u202e\u200b" + "x" * 5000,
    "{{7*7}} ${jndi:ldap://x} %00 %27 \\",
]
# Every parameter the app reads: the filter bar's, presentation mode's and each page's.
PARAMS = (
    "year", "dates", "vendor", "school", "grade", "race", "gender", "band", "econ", "el", "sped", "dosage",
    "present", "alias", "metric", "metric2", "metric_y", "grain", "compare", "split", "rebase", "by", "reference",
    "rows", "group", "gap_grain", "below", "weeks", "points", "colour", "groups", "feed", "coverage-vendor", "q",
    "kind", "since", "signal_metrics", "profile", "vendor_id", "flag-check",
)
TABLES = (
    "facts", "students", "sessions", "school_attendance", "assessments", "survey_responses", "schools", "vendors",
    "contracts", "annotations", "student_dosage", "metrics", "batches",
)


def fingerprint(warehouse) -> dict:
    with warehouse.cursor() as cur:
        tables = {name for (name,) in cur.execute("select table_name from information_schema.tables").fetchall()}
        return {
            "version": warehouse.version(),
            **{t: cur.execute(f"select count(*), sum(hash(t)) from {t} as t").fetchall() for t in TABLES if t in tables},
        }


def raw_html(app, nasty: str) -> list[str]:
    """Elements that would render the string as HTML: st.html, or markdown allowed HTML."""
    found = []
    for node in app._tree:
        proto = getattr(node, "proto", None)
        body = getattr(proto, "body", "") if proto is not None else ""
        if not isinstance(body, str) or "<script>" not in body:
            continue
        if getattr(node, "type", "") == "html" or getattr(proto, "allow_html", False):
            found.append(body[:200])
    return found


@pytest.mark.parametrize("user", ["analyst", "vendor-v3"])
@pytest.mark.parametrize("nasty", NASTY, ids=lambda s: s[:12])
def test_strings_made_to_break_things_break_nothing(dashboard, user, nasty):
    before = fingerprint(dashboard)
    query = {key: nasty for key in PARAMS}
    app = open_page(f"app_pages/{PAGES[0]}.py", query=query, user=user)
    for page in PAGES:
        if page != PAGES[0]:
            app.switch_page(f"app_pages/{page}.py")
            app.query_params.clear()
            app.query_params.update(query)
            app.run()
        assert not app.exception, (page, [e.value for e in app.exception])
        assert not raw_html(app, nasty), page
        if user.startswith("vendor"):
            # The string itself may come back where it was typed (the search box): it names V1 by itself.
            echoes = (nasty, json.dumps(nasty, ensure_ascii=False)[1:-1])
            texts = [(where, text.replace(echoes[1], "").replace(echoes[0], "")) for where, text in shown(app, query)]
            assert not traces_of(others("V3"), texts), page
    assert fingerprint(dashboard) == before


# --- A school account and an evaluator ----------------------------------------------------------

from ciboard.demo_meetings import COORDINATED_SCHOOLS  # noqa: E402

# What the demo's school account and evaluator can open: the data pages carry numbers, the CI
# pages records; every one must open clean for them.
SCHOOL_PAGES = ("overview", "trends", "disparities", "vendors", "relationships", "data_map", "follow_up")
SCHOOL_RECORD_PAGES = ("meetings", "commitments", "workgroups", "root_causes", "pdsa")
EVALUATOR_PAGES = (*PAGES, "payments", "follow_up", "meetings", "commitments", "workgroups", "root_causes", "pdsa")


def school_labels(warehouse) -> dict[str, str]:
    choices = queries.run(warehouse, "choices", Scope("analyst"))
    schools = choices[choices["dimension"] == "school_id"]
    return dict(zip(schools["value"], schools["label"]))


def school_tricks(other: str, label: str) -> dict:
    """Another school in every parameter that names a school, and school as every grouping."""
    return {
        "school": [f"{other} · {label}", other], "split": "school", "by": "School", "rows": "School",
        "colour": "School", "groups": "School", "group": f"{other} · {label}", "reference": other,
    }


def traces_of_schools(labels: dict[str, str], texts: list[tuple[str, str]]) -> list[str]:
    return traces([w for school, name in labels.items() if school not in COORDINATED_SCHOOLS for w in (school, name)], texts)


@pytest.mark.parametrize("page", SCHOOL_PAGES)
def test_a_school_sees_only_its_schools_on_every_page(dashboard, page):
    labels = school_labels(dashboard)
    others = sorted(s for s in labels if s not in COORDINATED_SCHOOLS)
    variants = VARIANTS[page]
    for i, variant in enumerate(variants):
        other = others[i % len(others)]
        query = {**school_tricks(other, labels[other]), **variant}
        app = open_page(f"app_pages/{page}.py", query=query, user="school")
        assert not app.error, [e.value for e in app.error]
        assert not traces_of_schools(labels, shown(app, query)), page


def test_a_schools_follow_up_lists_its_own_students_by_id(dashboard):
    app = open_page("app_pages/follow_up.py", user="school")
    tables = [t.value for t in app.dataframe if "student_key" in t.value.columns]
    assert tables, "the school reads its students by id"
    absent = queries.run(dashboard, "absent_students", Scope("analyst"), {"max_rate": 0.9})
    ours = set(absent.loc[absent["school_id"].isin(COORDINATED_SCHOOLS), "student_key"])
    theirs = set(absent["student_key"]) - ours
    listed = set().union(*(set(t["student_key"]) for t in tables))
    assert listed and not listed & theirs


@pytest.mark.parametrize("page", SCHOOL_RECORD_PAGES)
def test_a_school_opens_every_record_page(dashboard, page):
    app = open_page(f"app_pages/{page}.py", user="school")
    assert not app.error, [e.value for e in app.error]


def test_a_school_cannot_reach_the_vendors_business(dashboard):
    for page in ("payments", "data_quality", "upload", "users", "audit"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            open_page(f"app_pages/{page}.py", user="school")


@pytest.fixture(scope="module")
def student_ids(demo_warehouse):
    with demo_warehouse.cursor() as cur:
        return sorted(k for (k,) in cur.execute("select student_key from students").fetchall())


def traces_of_students(ids: list[str], texts: list[tuple[str, str]]) -> list[str]:
    return traces(ids, texts)


@pytest.mark.parametrize("page", EVALUATOR_PAGES)
def test_an_evaluator_sees_no_student_id_on_any_page_or_download(dashboard, student_ids, page):
    for variant in VARIANTS.get(page, [{}]):
        app = open_page(f"app_pages/{page}.py", query=variant, user="evaluator")
        assert not app.error, [e.value for e in app.error]
        assert not traces_of_students(student_ids, shown(app, variant)), page
        for button in app.button:
            assert not any(word in button.label for word in ("Save", "Finalise", "Log", "Accept", "Reject")) or button.disabled, (
                f"{page} offers the evaluator '{button.label}'"
            )


def test_an_evaluator_cannot_reach_uploads_or_accounts(dashboard):
    for page in ("upload", "users", "audit"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            open_page(f"app_pages/{page}.py", user="evaluator")


# --- Contract reports: each reader gets what is released to its audience, and nothing else ------

from ciboard import accounts, reports  # noqa: E402
from ciboard.appdb import AppDB  # noqa: E402

# Each report's text carries a word of its own, so a trace of a report not released to a reader
# shows wherever it would surface: the page, its chooser, its files.
REPORTS = {  # period -> (audiences it is released to (None: left a draft, (): approved, not released), marker)
    "2025-09": (("vendors",), "MARKVENDORS"),
    "2026-02": (("schools",), "MARKSCHOOLS"),
    "2026-03": (("evaluators",), "MARKEVALUATORS"),
    "2025-11": ((), "MARKAPPROVED"),
    "2025-10": (None, "MARKDRAFT"),
}
AUDIENCE_OF = {"vendor-v1": "vendors", "vendor-v4": "vendors", "school": "schools", "evaluator": "evaluators"}
SCOPES = {"vendor-v1": Scope("vendor", "V1"), "vendor-v4": Scope("vendor", "V4"),
          "school": Scope("school", school_ids=COORDINATED_SCHOOLS), "evaluator": Scope("evaluator", evaluator="evaluator")}


@pytest.fixture(scope="module")
def released(demo_warehouse) -> dict[str, int]:
    """The reports of REPORTS in the demo's app database, by period (made once; the demo's own
    year report, released to the board only, is 'year'; its quarters are Q1 and Q2)."""
    db = AppDB.of(demo_warehouse.settings)
    analyst, admin = accounts.account(db, "analyst"), accounts.account(db, "admin")
    found = {r.period.removeprefix("2025-26 "): r.report_id for r in reports.listing(db, admin.scope)}
    for period, (audiences, marker) in REPORTS.items():
        if period in found:
            continue
        report = reports.create(db, demo_warehouse, analyst, "2025-26", period)
        reports.write(db, analyst, report.report_id, {"summary": f"Written for this release only: {marker}."})
        found[period] = report.report_id
        if audiences is None:
            continue
        reports.review(db, demo_warehouse, admin, report.report_id)
        reports.approve(db, admin, report.report_id)
        if audiences:
            reports.release(db, demo_warehouse, admin, report.report_id, list(audiences))
    found["year"] = found["2025-26"]
    return found


def markers_not_for(user: str) -> list[str]:
    return [marker for audiences, marker in REPORTS.values() if AUDIENCE_OF[user] not in (audiences or ())]


def traces_of_words(words: list[str], texts: list[tuple[str, str]]) -> list[str]:
    return [f"{where}: {w}" for where, text in texts for w in words if w in text]


@pytest.mark.parametrize("user", list(AUDIENCE_OF))
def test_a_reader_gets_only_the_reports_released_to_its_audience_whatever_it_asks(dashboard, released, student_ids, user):
    from plotly.offline import get_plotlyjs

    library = get_plotlyjs()  # the HTML file's own charting library: code, not the report's words
    db = AppDB.of(dashboard.settings)
    scope = SCOPES[user]
    mine = {released[p] for p, (audiences, _) in REPORTS.items() if AUDIENCE_OF[user] in (audiences or ())}
    not_mine = {released[p] for p, (audiences, _) in REPORTS.items() if AUDIENCE_OF[user] not in (audiences or ())}
    not_mine.add(released["year"])  # the board's only
    # Below the page: it lists and reads only its own audience's, and is refused the rest without a word of them.
    listed = {r.report_id for r in reports.listing(db, scope)}
    assert mine <= listed and not listed & not_mine
    for report_id in not_mine:
        with pytest.raises(ScopeError) as refused:
            reports.read(db, scope, report_id)
        assert not traces_of_words(markers_not_for(user), [("error", str(refused.value))])
    # The page, asked for another audience's report, a draft or one not yet released: by the
    # chooser's state, and by every address parameter a report could be named with.
    for other in sorted(not_mine):
        query = {"report": str(other), "report_id": str(other), "copy": "district", "id": str(other)}
        app = open_page("app_pages/reports.py", query=query, user=user, state={"report": other})
        assert not app.error, [e.value for e in app.error]
        chooser = app.selectbox(key="report")
        assert {option.split(" · ")[0] for option in chooser.options} == {r.title for r in reports.listing(db, scope)}
        # Opened on a report released to it: its own audience's here, or another test's release to it.
        assert chooser.value in listed
        texts = [(where, text.replace(library, "")) for where, text in shown(app, query)]
        assert not traces_of_words(markers_not_for(user), texts), user
        assert not [b for b in app.button if b.key in ("draft-report", "save-text", "review-report", "approve-report",
                                                        "release-report", "reopen-report", "correct-report")]
        assert {key.rsplit("-", 1)[-1] for key in downloads(app) if "download-report" in key} == {"html", "md", "xlsx"}
        if user.startswith("vendor"):
            own = scope.vendor_id
            assert not traces_of(others(own), texts), "a vendor's page and files hold its own rows only"
        # A school reads the district's copy, every school's included: releasing it to schools is the
        # district's choice (README, Contract reports).
        if user == "evaluator":
            assert not traces_of_students(student_ids, texts)
