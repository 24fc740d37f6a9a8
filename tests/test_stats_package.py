"""ciboard.stats stays pure and keeps the interface pages and notebooks call."""

import ast
import inspect
import sys
from pathlib import Path

import pytest

import ciboard.stats
from ciboard.stats import compare, disparity, intervals, spc

PACKAGE = Path(ciboard.stats.__file__).parent
ALLOWED = {"numpy", "pandas", "scipy", "ciboard"}


@pytest.mark.parametrize("module", sorted(PACKAGE.glob("*.py")), ids=lambda path: path.name)
def test_imports_only_the_standard_library_numpy_pandas_and_scipy(module):
    tree = ast.parse(module.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    for name in imported:
        top = name.split(".")[0]
        assert top in sys.stdlib_module_names or top in ALLOWED, name
        assert top != "ciboard" or name.startswith("ciboard.stats"), name


SIGNATURES = {
    spc.xmr: "(values, *, direction='increase', baseline=None, rebase=None, exclude=None, ghost=None, "
             "screen_outliers=False, target=None)",
    spc.p_chart: "(numerators, denominators, *, direction='increase', baseline=None, rebase=None, exclude=None, "
                 "ghost=None, laney=False, target=None)",
    spc.xmr_columns: "(values, *, direction='increase', baseline=None, rebase=None, exclude=None, ghost=None, "
                     "screen_outliers=False, target=None)",
    spc.p_chart_columns: "(numerators, denominators, *, direction='increase', baseline=None, rebase=None, "
                         "exclude=None, ghost=None, laney=False, target=None)",
    spc.u_chart: "(counts, exposures=None, *, direction='increase', baseline=None, rebase=None, exclude=None, "
                 "target=None)",
    spc.summary: "(chart, *, direction, target=None)",
    spc.runs_analysis: "(values, center=None)",
    intervals.wilson: "(k, n, confidence=0.95)",
    intervals.newcombe_difference: "(k1, n1, k2, n2, confidence=0.95)",
    intervals.mean_t: "(mean, sd, n, confidence=0.95)",
    intervals.welch_difference: "(mean1, sd1, n1, mean2, sd2, n2, confidence=0.95)",
    disparity.gaps: "(frame, *, reference=None, min_cell=10, confidence=0.95, kind='proportion')",
    disparity.risk_ratio: "(k, n, k_cmp, n_cmp, *, min_cell=10, min_n=30)",
    disparity.alternate_risk_ratio: "(k, n, k_state, n_state, *, min_cell=10, min_n=30)",
    compare.funnel_limits: "(p_overall, n, coverage=(0.95, 0.998))",
    compare.observed_expected: "(frame, by='vendor_id', adjust_for='baseline_band', confidence=0.95, reference=None)",
    compare.difference_in_differences: "(change, comparison_change)",
}


@pytest.mark.parametrize("function", SIGNATURES, ids=lambda function: f"{function.__module__}.{function.__name__}")
def test_public_signatures(function):
    assert str(inspect.signature(function)) == SIGNATURES[function]


def test_chart_columns():
    core = ["center", "lower", "upper", "near_lower", "near_upper", "outside_limits", "shift", "trend",
            "two_in_three", "point_type", "signal_side", "segment", "excluded", "target"]
    assert list(spc.xmr([1, 2, 3]).columns) == ["value", "moving_range"] + core
    assert list(spc.p_chart([1, 2], [5, 5]).columns) == ["value", "n"] + core
    assert list(spc.u_chart([1, 2]).columns) == ["value", "n"] + core
