"""Drift parity with Evidently 0.7.23, the peer tool, on data this test generates.

Evidently pins ``pandas < 3``, so it runs in its own venv outside the checkout
(``~/.cache/eval-pipelines/evidently-0.7.23``, or ``$EVAL_PIPELINES_EVIDENTLY_VENV``), built
by the session fixture when missing (about a minute); a failed build fails the test. The rows
go to a DuckDB file for our engine (``compute_drift``: aggregates in SQL) and to a Parquet
file for ``tests/support/evidently_drift.py``, which runs Evidently's stat tests on the raw
rows in that venv.

Cases, each a model version of the same table (reference: the four weeks before the week):

* ``shift-small`` / ``shift-large``: every feature moves (reference 800 / 12,000 rows, so the
  defaults are KS / chi-square / z-test, then Wasserstein / Jensen-Shannon);
* ``split-small-<i>`` / ``split-large-<i>``: one pool of rows split at random into reference
  and current: no drift by construction.

Features: continuous (``cont``), integers with 11 values (``few``: one bin per value),
integers with 5 values (``stars``: tested as categorical), zero-inflated (``zinf``), a binary
and a five-category categorical (``flag``, ``channel``) and the score.

Where the bins match, values must agree to 1e-9 (PSI, Jensen-Shannon, z-test); KS and
Wasserstein within the documented bound of the 1000-bin grid; chi-square is a homogeneity
test here and goodness of fit in Evidently (docs/drift.md): decisions are compared.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support.data import WEEK, WEEK_START, base_spec, write_warehouse
from support.postgres import copy_duckdb_tables

from eval_pipelines.drift import compute_drift
from eval_pipelines.spec import parse_spec
from eval_pipelines.sqlbuild import SqlBuilder
from eval_pipelines.warehouse import Warehouse
from eval_pipelines.windows import week_window

EVIDENTLY = "0.7.23"
VENV = Path(
    os.environ.get(
        "EVAL_PIPELINES_EVIDENTLY_VENV",
        Path.home() / ".cache" / "eval-pipelines" / f"evidently-{EVIDENTLY}",
    )
)
RUNNER = Path(__file__).parent / "support" / "evidently_drift.py"
REF_START = WEEK_START - pd.Timedelta(days=28)
WEEK_END = WEEK_START + pd.Timedelta(days=7)
FEATURES = {
    "cont": "num",
    "few": "num",
    "stars": "num",
    "zinf": "num",
    "flag": "cat",
    "channel": "cat",
    "score": "num",
}
SIZES = {"small": (800, 200), "large": (12_000, 3000)}
SPLITS = 8
# Evidently's stat-test names and ours.
NAMES = {
    "ks": "ks",
    "wasserstein": "wasserstein",
    "psi": "psi",
    "jensenshannon": "jensen_shannon",
    "chisquare": "chi_square",
    "z": "z_test",
}
BINS = 1000


# --------------------------------------------------------------------------------------
# Evidently's venv
# --------------------------------------------------------------------------------------


def _venv_python() -> Path:
    return VENV / "bin" / "python"


def _works() -> bool:
    if not _venv_python().exists():
        return False
    probe = "import evidently, pyarrow; assert evidently.__version__ == '" + EVIDENTLY + "'"
    return subprocess.run([_venv_python(), "-c", probe], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def evidently_python() -> Path:
    """Evidently 0.7.23's interpreter, building its venv when missing."""
    if _works():
        return _venv_python()
    VENV.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(VENV)],
        [
            str(_venv_python()),
            "-m",
            "pip",
            "install",
            "--quiet",
            f"evidently=={EVIDENTLY}",
            "pandas<3",
            "pyarrow",
        ],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(
                f"could not build Evidently {EVIDENTLY}'s venv at {VENV} (needed for the drift "
                f"parity test; set EVAL_PIPELINES_EVIDENTLY_VENV to use another path): "
                f"{' '.join(step)} exited {done.returncode}: {done.stderr[-2000:]}"
            )
    if not _works():
        pytest.fail(f"Evidently {EVIDENTLY}'s venv at {VENV} was built but does not import")
    return _venv_python()


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------


def _features(rng: np.random.Generator, n: int, moved: bool) -> pd.DataFrame:
    zero_share = 0.6 if moved else 0.7
    return pd.DataFrame(
        {
            "cont": rng.normal(54.0 if moved else 50.0, 10.0, n),
            "few": rng.binomial(10, 0.5 if moved else 0.4, n).astype(np.int64),
            "stars": rng.choice(
                np.arange(1, 6),
                n,
                p=[0.05, 0.1, 0.3, 0.25, 0.3] if moved else [0.1, 0.2, 0.3, 0.25, 0.15],
            ).astype(np.int64),
            "zinf": np.where(
                rng.random(n) < zero_share, 0.0, rng.lognormal(3.5 if moved else 3.0, 0.5, n)
            ),
            "flag": rng.choice(["no", "yes"], n, p=[0.6, 0.4] if moved else [0.8, 0.2]),
            "channel": rng.choice(
                list("ABCDE"),
                n,
                p=[0.2, 0.25, 0.2, 0.1, 0.25] if moved else [0.4, 0.25, 0.15, 0.1, 0.1],
            ),
            "score": rng.beta(2.6 if moved else 2.0, 5.0, n),
        }
    )


def _stamp(rng: np.random.Generator, rows: pd.DataFrame, period: str, case: str) -> pd.DataFrame:
    start, days = (REF_START, 28) if period == "reference" else (WEEK_START, 7)
    seconds = rng.integers(0, days * 86400, len(rows))
    return rows.assign(
        ts=start + pd.to_timedelta(seconds, unit="s"), period=period, model_version=case
    )


def build_cases(seed: int = 20261202) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for size, (n_ref, n_cur) in SIZES.items():
        case = f"shift-{size}"
        frames.append(_stamp(rng, _features(rng, n_ref, False), "reference", case))
        frames.append(_stamp(rng, _features(rng, n_cur, True), "current", case))
        for split in range(SPLITS):
            case = f"split-{size}-{split}"
            pool = _features(rng, n_ref + n_cur, False)
            order = rng.permutation(len(pool))
            frames.append(_stamp(rng, pool.iloc[order[:n_ref]], "reference", case))
            frames.append(_stamp(rng, pool.iloc[order[n_ref:]], "current", case))
    rows = pd.concat(frames, ignore_index=True)
    rows["prediction_id"] = [f"p{i:07d}" for i in range(len(rows))]
    return rows


# --------------------------------------------------------------------------------------
# both engines
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def results(evidently_python, tmp_path_factory) -> pd.DataFrame:
    """One row per (case, feature, method): ours and Evidently's value and decision."""
    folder = tmp_path_factory.mktemp("parity")
    rows = build_cases()
    labels = pd.DataFrame({"prediction_id": ["none"], "label": [0], "labeled_at": [WEEK_START]})
    url = write_warehouse(folder / "w.duckdb", rows.drop(columns="period"), labels)

    ours = []
    window = week_window(WEEK)
    with Warehouse(url) as warehouse:
        for case in sorted(rows["model_version"].unique()):
            raw = base_spec(url, slices=[])
            raw.pop("compare")
            raw["drift"] = {
                "reference_weeks": 4,
                "features": [f for f in FEATURES if f != "score"],
                "categorical": [f for f, kind in FEATURES.items() if kind == "cat"],
                "methods": list(NAMES.values()),
                "model_version": case,
                "bins": BINS,
            }
            spec = parse_spec(raw)
            drift, _ = compute_drift(spec, window, warehouse, SqlBuilder(spec, warehouse.dialect))
            ours.append(drift.assign(case=case))
    ours = pd.concat(ours, ignore_index=True)

    rows.rename(columns={"model_version": "case"}).to_parquet(folder / "rows.parquet")
    (folder / "features.json").write_text(json.dumps(FEATURES))
    done = subprocess.run(
        [
            evidently_python,
            RUNNER,
            folder / "rows.parquet",
            folder / "features.json",
            folder / "e.json",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = pd.DataFrame(json.loads((folder / "e.json").read_text()))
    theirs["method"] = theirs["method"].map(NAMES)
    merged = ours.merge(
        theirs, on=["case", "feature", "method"], how="outer", suffixes=("", "_evidently")
    )
    # Evidently's drift score is the p-value for tests, the distance otherwise.
    is_test = merged["method"].isin(["ks", "chi_square", "z_test"])
    merged["ours"] = np.where(is_test, merged["p_value"], merged["statistic"])
    merged["size"] = merged["case"].str.extract(r"-(small|large)")[0]
    merged["split"] = merged["case"].str.startswith("split")
    return merged


def _pairs(results: pd.DataFrame, method: str) -> pd.DataFrame:
    rows = results[results["method"] == method]
    both = rows.dropna(subset=["ours", "score"])
    assert len(both) > 0
    return both


def test_every_result_of_evidently_has_ours_and_the_defaults_agree(results):
    # One row per (case, feature, method) on both sides: the same methods apply to the same
    # features (a numeric feature with few values gets chi-square / z only as its default).
    assert results["score"].notna().all() and results["statistic"].notna().all()
    assert len(results) == results[["case", "feature", "method"]].drop_duplicates().shape[0]
    ours = results[results["default"] == True].set_index(["case", "feature"])["method"]  # noqa: E712
    theirs = results[results["default_evidently"] == True]  # noqa: E712
    theirs = theirs.set_index(["case", "feature"])["method"]
    assert len(ours) == 2 * (SPLITS + 1) * len(FEATURES)
    assert ours.sort_index().to_dict() == theirs.sort_index().to_dict()
    assert set(ours) == {"ks", "wasserstein", "jensen_shannon", "chi_square", "z_test"}


@pytest.mark.parametrize("method", ["psi", "jensen_shannon", "z_test"])
def test_binned_methods_and_z_test_equal_evidently(results, method):
    """Same bins (Sturges over both windows above 20 distinct reference values, one per
    value otherwise), same empty-bin rule, natural log: the same numbers and decisions."""
    both = _pairs(results, method)
    np.testing.assert_allclose(both["ours"], both["score"], rtol=1e-9, atol=1e-12)
    assert (both["drifted"] == both["drifted_evidently"]).all()
    if method == "z_test":
        assert set(both["feature"]) >= {"flag", "channel"}  # binary and five categories


def test_ks_is_exact_for_integers_and_conservative_on_the_grid(results):
    """KS from the 1000-bin grid: D equals the raw-row D for integer features and is at most
    it otherwise (ks_from_histograms), so our p-value is Evidently's (integers) or at least
    it: where we drift Evidently drifts; the reverse can differ only near the threshold."""
    both = _pairs(results, "ks")
    integer = both["feature"].isin(["few", "stars"])
    np.testing.assert_allclose(
        both.loc[integer, "ours"], both.loc[integer, "score"], rtol=1e-9, atol=1e-15
    )
    assert (both["ours"] >= both["score"] - 1e-12).all()
    assert (both["ours"] - both["score"]).abs().max() < 0.1
    assert not (both["drifted"] & ~both["drifted_evidently"]).any()
    differ = both[both["drifted"] != both["drifted_evidently"]]
    assert (differ["score"] > 0.01).all()  # only p-values near the 0.05 threshold
    # KS drifts at p <= threshold, as Evidently's ks_stattest.py.
    assert (both["drifted"] == (both["ours"] <= both["threshold"])).all()


def test_wasserstein_within_the_bin_width_bound(results):
    both = _pairs(results, "wasserstein")
    # |W_grid - W_raw| <= bin width / std: below 1 / BINS x range / std (range < 12 std here,
    # the zero-inflated feature's range is wider: its bound is checked in test_drift_engine).
    close = both[both["feature"] != "zinf"]
    assert (close["ours"] - close["score"]).abs().max() < 12 / BINS
    assert (both["drifted"] == both["drifted_evidently"]).all()


def test_chi_square_is_homogeneity_and_never_drifts_where_evidently_does_not(results):
    """Ours tests homogeneity of the 2 x k table (noise in both windows); Evidently's is goodness
    of fit against the reference shares taken as exact, so its p-values are smaller: both
    drift on every shifted case, and ours only where Evidently does."""
    both = _pairs(results, "chi_square")
    assert (both["ours"] >= both["score"]).all()
    shifted = both[~both["split"]]
    assert shifted["drifted"].all() and shifted["drifted_evidently"].all()
    assert not (both["drifted"] & ~both["drifted_evidently"]).any()


@pytest.mark.parametrize("size", list(SIZES))
def test_shifted_features_drift_by_the_default_method_in_both(results, size):
    rows = results[(results["case"] == f"shift-{size}") & (results["default"] == True)]  # noqa: E712
    assert set(rows["feature"]) == set(FEATURES)
    assert rows["drifted"].all(), rows[["feature", "method", "ours"]]
    assert rows["drifted_evidently"].all()


def test_no_drift_splits_do_not_drift_by_the_default_methods(results):
    """Random splits of one pool. With more than 1000 reference rows the defaults are
    distances, and no feature drifts; Jensen-Shannon on Evidently's bins stays far below 0.1
    for every feature, not only where it is the default (docs/drift.md). With
    fewer, the defaults are tests at 5%: they flag about 5% of no-drift features by design,
    in both tools, and ours only where Evidently does."""
    defaults = results[results["split"] & (results["default"] == True)]  # noqa: E712
    large = defaults[defaults["size"] == "large"]
    assert len(large) == SPLITS * len(FEATURES)
    assert not large["drifted"].any(), large[large["drifted"]][["case", "feature", "ours"]]
    assert not large["drifted_evidently"].any()
    js = results[results["split"] & (results["method"] == "jensen_shannon")]
    assert js.loc[js["size"] == "large", "ours"].max() < 0.05
    small = defaults[defaults["size"] == "small"]
    assert len(small) == SPLITS * len(FEATURES)
    assert small["drifted"].mean() <= 0.15
    assert not (small["drifted"] & ~small["drifted_evidently"]).any()


# --------------------------------------------------------------------------------------
# the 20-value boundary of Evidently's binning, on DuckDB and PostgreSQL
# --------------------------------------------------------------------------------------

STEP = 0.37  # values k * STEP: not integers, so the Sturges bins are not widened to 1
BOUNDARY = {"v20": "num", "v21": "num", "cont": "num"}


def _boundary_rows(seed: int = 20261203) -> pd.DataFrame:
    """``v20``: exactly 20 distinct reference values (the current week adds a 21st: the rule
    reads the reference only); ``v21``: exactly 21; ``cont``: continuous."""
    rng = np.random.default_rng(seed)
    frames = []
    for period, n in (("reference", 2400), ("current", 600)):
        current = period == "current"
        v20 = rng.integers(0, 20, n) if not current else rng.integers(0, 21, n)
        v21 = rng.binomial(20, 0.55 if current else 0.4, n)
        v21[:21] = np.arange(21)  # every one of the 21 values in each period
        v20[:20] = np.arange(20)
        rows = pd.DataFrame(
            {"v20": v20 * STEP, "v21": v21 * STEP, "cont": rng.normal(1.0 if current else 0, 3, n)}
        )
        frames.append(_stamp(rng, rows, period, "boundary"))
    rows = pd.concat(frames, ignore_index=True)
    rows["prediction_id"] = [f"b{i:07d}" for i in range(len(rows))]
    return rows


@pytest.fixture(scope="module")
def boundary(evidently_python, tmp_path_factory) -> dict:
    """The boundary rows in a DuckDB file and Evidently's PSI and Jensen-Shannon on them."""
    folder = tmp_path_factory.mktemp("boundary")
    rows = _boundary_rows()
    reference = rows[rows["period"] == "reference"]
    assert reference["v20"].nunique() == 20 and reference["v21"].nunique() == 21
    assert rows["v20"].nunique() == 21
    labels = pd.DataFrame({"prediction_id": ["none"], "label": [0], "labeled_at": [WEEK_START]})
    path = folder / "w.duckdb"
    url = write_warehouse(path, rows.drop(columns="period"), labels)
    rows.rename(columns={"model_version": "case"}).to_parquet(folder / "rows.parquet")
    (folder / "features.json").write_text(json.dumps(BOUNDARY))
    done = subprocess.run(
        [
            evidently_python,
            RUNNER,
            folder / "rows.parquet",
            folder / "features.json",
            folder / "e.json",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = pd.DataFrame(json.loads((folder / "e.json").read_text()))
    theirs["method"] = theirs["method"].map(NAMES)
    return {"path": path, "url": url, "rows": rows, "evidently": theirs}


def _sturges_bins(rows: pd.DataFrame, feature: str) -> int:
    return len(np.histogram_bin_edges(rows[feature], bins="sturges")) - 1


@pytest.mark.parametrize(
    "engine", ["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_twenty_reference_values_get_a_bin_each_and_twenty_one_get_sturges(
    boundary, engine, request
):
    """Evidently bins a numeric feature with more than 20 distinct reference values with
    Sturges' rule, one bin per value otherwise. DuckDB decides it from an approximate
    distinct count completed by an exact one where the estimate is small, PostgreSQL from
    the exact count: both give Evidently's PSI and Jensen-Shannon on both sides of 20."""
    url = boundary["url"]
    if engine == "postgresql":
        url = request.getfixturevalue("postgres_url")
        copy_duckdb_tables(boundary["path"], url, ["inference_logs", "labels"], replace=True)
    raw = base_spec(url, slices=[])
    raw.pop("compare")
    raw["drift"] = {
        "reference_weeks": 4,
        "features": list(BOUNDARY),
        "methods": ["psi", "jensen_shannon"],
        "model_version": "boundary",
        "bins": BINS,
        "include_score": False,
        "include_label": False,
    }
    spec = parse_spec(raw)
    with Warehouse(url) as warehouse:
        ours, queries = compute_drift(
            spec, week_window(WEEK), warehouse, SqlBuilder(spec, warehouse.dialect)
        )
    merged = ours.merge(boundary["evidently"], on=["feature", "method"], suffixes=("", "_e"))
    for method in ("psi", "jensen_shannon"):
        both = merged[merged["method"] == method].set_index("feature")
        assert set(both.index) == set(BOUNDARY)
        np.testing.assert_allclose(both["statistic"], both["score"], rtol=1e-9, atol=1e-12)
        assert (both["drifted"] == both["drifted_e"]).all()

    # The bins behind those numbers, read from the histogram query: the value itself for v20
    # (21 values across both windows: Sturges would have been chosen from them), the index on
    # Sturges' edges for v21 and cont (as many bins as numpy's rule gives).
    hist = queries["drift_histograms"]
    coarse = {
        feature: re.search(rf"^\s*CASE WHEN .*? THEN (.*) END AS b_{i},?$", hist, re.M).group(1)
        for i, feature in enumerate(BOUNDARY)
    }
    assert coarse["v20"].startswith("CAST(") and " WHEN " not in coarse["v20"]
    for feature in ("v21", "cont"):
        assert coarse[feature].count(" THEN ") + 1 == _sturges_bins(boundary["rows"], feature)
    assert _sturges_bins(boundary["rows"], "v21") < 21

    # How the distinct counts were taken: an estimate for every feature on DuckDB and an
    # exact count of the two whose estimate is small; PostgreSQL counts exactly at once.
    ranges = queries["drift_ranges"]
    if engine == "duckdb":
        assert ranges.count("approx_count_distinct(") == 3 and "COUNT(DISTINCT" not in ranges
        distinct = queries["drift_distinct"]
        assert distinct.count("COUNT(DISTINCT") == 2
        assert "p.v20" in distinct and "p.v21" in distinct and "p.cont" not in distinct
    else:
        assert ranges.count("COUNT(DISTINCT") == 3 and "approx_count_distinct" not in ranges
        assert "drift_distinct" not in queries
