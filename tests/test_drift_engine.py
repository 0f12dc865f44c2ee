"""Drift end to end (SQL histograms in a real DuckDB file, then drift_stats) against oracles.

The oracles are computed here from the raw rows with numpy/scipy:

* an integer-valued feature on a grid that gives every integer its own bin: KS statistic and
  p-value equal ``scipy.stats.ks_2samp`` on the raw rows;
* every numeric feature: KS within the documented histogram bound of ``ks_2samp`` and the
  normed Wasserstein distance within ``bin width / std`` of
  ``scipy.stats.wasserstein_distance / np.std(reference)``; Jensen-Shannon and PSI on
  Evidently's bins recomputed from the raw rows with numpy (``np.histogram_bin_edges(...,
  bins="sturges")`` over both windows above 20 distinct reference values, one bin per value
  otherwise), including a zero-inflated feature whose reference deciles would collapse;
* the categorical feature: ``scipy.stats.chi2_contingency``, ``scipy.spatial.distance.
  jensenshannon``, a hand-written PSI and the z-test (first category against the rest, as
  ``chi2_contingency`` on the collapsed 2 x 2 table) on the table of non-NULL counts.

Only the drift version's rows (``compare.candidate``) inside the reference weeks and the current
week may count: ``v1`` rows and ``v2`` rows just outside the windows carry wild values that
would wreck every check if they leaked in.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance
from support.data import WEEK, WEEK_START, base_spec, write_warehouse

from assets.metadata import drifted as dagster_drifted
from eval_pipelines.alerts import build_alert
from eval_pipelines.drift import (
    MAX_VALUE_BINS,
    SURELY_MANY_DISTINCT,
    more_values_than_bins,
    unsettled_distinct,
)
from eval_pipelines.drift_stats import drifted_rows, wasserstein_normed
from eval_pipelines.lineage import run_record
from eval_pipelines.pipeline import evaluate
from eval_pipelines.report import summary
from eval_pipelines.spec import parse_spec
from eval_pipelines.windows import reference_window, week_window

REFERENCE_WEEKS = 4
REF_START = WEEK_START - pd.Timedelta(days=7 * REFERENCE_WEEKS)  # 2026-10-19
WEEK_END = WEEK_START + pd.Timedelta(days=7)  # 2026-11-23
# items ranges over at most 0..20, so a width of at most 20/320 = 1/16: every integer gets its
# own bin (two integers are >= 16 bins apart).
BINS = 320
NUMERIC = ["latency", "items", "amount", "refunds"]
CATEGORICAL = ["channel"]
REF_CHANNELS = (["A", "B", "C"], [0.5, 0.3, 0.2])
CUR_CHANNELS = (["A", "B", "C", "D"], [0.35, 0.3, 0.25, 0.1])  # D only in the current week
PSI_EMPTY = 1e-4  # Evidently's share for an empty bin (utils.get_binned_data)


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------


def _v2_week(rng: np.random.Generator, start: pd.Timestamp, n: int, current: bool) -> pd.DataFrame:
    names, probs = CUR_CHANNELS if current else REF_CHANNELS
    return pd.DataFrame(
        {
            "ts": start + pd.to_timedelta(rng.integers(0, 7 * 86400, n), unit="s"),
            "score": rng.uniform(0.02, 0.98, n),
            "latency": rng.normal(58.0 if current else 50.0, 10.0, n),  # planted: +0.8 sd
            "items": rng.binomial(20, 0.3, n).astype(np.int64),
            "amount": 10.0 * (1.0 + rng.pareto(1.5, n)),  # heavy tail, infinite variance
            "channel": rng.choice(names, n, p=probs).astype(object),
        }
    )


def _wild(ts: list[pd.Timestamp]) -> pd.DataFrame:
    """Rows that must never reach a drift histogram."""
    n = len(ts)
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(ts),
            "score": np.full(n, 0.5),
            "latency": np.full(n, -1e6),
            "items": np.full(n, 1_000_000, dtype=np.int64),
            "amount": np.full(n, 1e12),
            "refunds": np.full(n, -1e9),
            "channel": np.array(["LEAKED"] * n, dtype=object),
        }
    )


def build_rows(seed: int, per_week: tuple[int, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """v2 rows in the four reference weeks and the current week, plus wild v2 rows just outside
    ``[REF_START, WEEK_END)``; v1 rows share the in-window ids and have wild features."""
    rng = np.random.default_rng(seed)
    frames = []
    for week in range(REFERENCE_WEEKS + 1):
        start = REF_START + pd.Timedelta(days=7 * week)
        n = int(rng.integers(*per_week))
        frames.append(_v2_week(rng, start, n, current=week == REFERENCE_WEEKS))
    rows = pd.concat(frames, ignore_index=True)
    # Zero-inflated: 70% zeros, the rest moves up in the current week (own generator, so the
    # other columns keep their draws).
    zrng = np.random.default_rng(seed + 1000)
    current = (rows["ts"] >= WEEK_START).to_numpy()
    nonzero = zrng.lognormal(np.where(current, 4.5, 3.0), 0.5)
    rows["refunds"] = np.where(zrng.random(len(rows)) < 0.7, 0.0, nonzero)
    # Boundary timestamps: both window starts are inclusive.
    rows.loc[0, "ts"] = REF_START
    rows.loc[len(rows) - 1, "ts"] = WEEK_START
    # Two NULL channels in the reference weeks, one in the current week.
    ref_idx = np.flatnonzero(rows["ts"] < WEEK_START)
    cur_idx = np.flatnonzero(rows["ts"] >= WEEK_START)
    rows.loc[[ref_idx[5], ref_idx[-5]], "channel"] = None
    rows.loc[cur_idx[3], "channel"] = None
    rows["prediction_id"] = [f"r{i:07d}" for i in range(len(rows))]

    v2 = rows.assign(model_version="v2")
    v1 = _wild(list(rows["ts"])).assign(
        prediction_id=rows["prediction_id"].to_numpy(),
        model_version="v1",
        score=rng.uniform(0.9, 0.99, len(rows)),
    )
    outside = _wild(
        [
            REF_START - pd.Timedelta(seconds=1),
            REF_START - pd.Timedelta(days=3),
            WEEK_END,
            WEEK_END + pd.Timedelta(days=2),
        ]
    ).assign(prediction_id=[f"x{i}" for i in range(4)], model_version="v2")
    predictions = pd.concat([v2, v1, outside], ignore_index=True)
    labels = (
        predictions.drop_duplicates("prediction_id")[["prediction_id", "ts"]]
        .assign(label=lambda f: (f["prediction_id"].str[-1].isin(list("02468"))).astype(int))
        .assign(labeled_at=lambda f: f["ts"] + pd.Timedelta(hours=1))
        .drop(columns="ts")
    )
    return predictions, labels


def drift_spec(url: str, **drift) -> dict:
    settings = {
        "reference_weeks": REFERENCE_WEEKS,
        "features": NUMERIC + CATEGORICAL,
        "categorical": CATEGORICAL,
        "bins": BINS,
    }
    settings.update(drift)
    return base_spec(url, slices=[], drift=settings)


def windows_of(predictions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The drift version's raw rows in the reference weeks and in the current week."""
    v2 = predictions[predictions["model_version"] == "v2"]
    reference = v2[(v2["ts"] >= REF_START) & (v2["ts"] < WEEK_START)]
    current = v2[(v2["ts"] >= WEEK_START) & (v2["ts"] < WEEK_END)]
    return reference, current


# --------------------------------------------------------------------------------------
# independent oracles on raw rows
# --------------------------------------------------------------------------------------


class Grid:
    """The shared equal-width grid, recomputed from the raw rows, and numpy histograms on it."""

    def __init__(self, ref: np.ndarray, cur: np.ndarray, bins: int) -> None:
        both = np.concatenate([ref, cur]).astype(float)
        self.low, high = float(both.min()), float(both.max())
        self.width = (high - self.low) / bins if high > self.low else 1.0
        self.bins = bins
        self.edges = self.low + self.width * np.arange(bins + 1)
        self.ref = self._hist(ref)
        self.cur = self._hist(cur)

    def _hist(self, x: np.ndarray) -> np.ndarray:
        index = np.floor((np.asarray(x, dtype=float) - self.low) / self.width).astype(np.int64)
        return np.bincount(np.clip(index, 0, self.bins - 1), minlength=self.bins)

    def ks_at_edges(self) -> float:
        n1, n2 = self.ref.sum(), self.cur.sum()
        cr = np.concatenate([[0], np.cumsum(self.ref)])
        cc = np.concatenate([[0], np.cumsum(self.cur)])
        return float(np.max(np.abs(cr / n1 - cc / n2)))

    def max_bin_mass(self) -> float:
        return float(max((self.ref / self.ref.sum()).max(), (self.cur / self.cur.sum()).max()))


def _filled(shares: np.ndarray) -> np.ndarray:
    smallest = shares[shares > 0].min()
    return np.where(shares == 0, smallest / 1e6 if smallest <= PSI_EMPTY else PSI_EMPTY, shares)


def hand_psi(ref: np.ndarray, cur: np.ndarray) -> float:
    total = 0.0
    for p, q in zip(_filled(ref / ref.sum()), _filled(cur / cur.sum()), strict=True):
        total += (q - p) * np.log(q / p)
    return total


def evidently_bins(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Evidently 0.7's binning of a numeric feature (utils.get_binned_data), with numpy."""
    if len(np.unique(ref)) > 20:
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        return np.histogram(ref, edges)[0], np.histogram(cur, edges)[0]
    values = np.union1d(ref, cur)
    return (ref[:, None] == values).sum(axis=0), (cur[:, None] == values).sum(axis=0)


def category_counts(ref: pd.Series, cur: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    values = sorted(set(ref.dropna()) | set(cur.dropna()))
    r = ref.dropna().value_counts().reindex(values, fill_value=0).to_numpy(float)
    c = cur.dropna().value_counts().reindex(values, fill_value=0).to_numpy(float)
    return r, c


# --------------------------------------------------------------------------------------
# the runs
# --------------------------------------------------------------------------------------

SIZES = {
    # rows per week: reference > 1000 rows (Wasserstein / Jensen-Shannon are the defaults)
    "large": (950, 1100),
    # reference <= 1000 rows (KS / chi-square are the defaults)
    "small": (150, 250),
}


@pytest.fixture(scope="module", params=list(SIZES))
def run(request, tmp_path_factory):
    size = request.param
    predictions, labels = build_rows(seed=11 if size == "large" else 12, per_week=SIZES[size])
    url = write_warehouse(tmp_path_factory.mktemp(size) / "w.duckdb", predictions, labels)
    result = evaluate(parse_spec(drift_spec(url)), WEEK)
    reference, current = windows_of(predictions)
    drift = result.drift.set_index(["feature", "method"])
    return {
        "size": size,
        "drift": drift,
        "reference": reference,
        "current": current,
        "record": run_record(result),
    }


def test_the_data_exercise_what_the_checks_claim(run):
    ref, cur = run["reference"], run["current"]
    n_ref = len(ref)
    assert (n_ref > 1000) == (run["size"] == "large")
    assert ref["channel"].isna().sum() == 2 and cur["channel"].isna().sum() == 1
    assert "D" not in set(ref["channel"]) and "D" in set(cur["channel"])
    # Every integer of `items` has a bin of its own (width < 1/2 already suffices).
    grid = Grid(ref["items"].to_numpy(), cur["items"].to_numpy(), BINS)
    assert grid.width <= 1 / 16
    distinct = len(np.unique(np.concatenate([ref["items"], cur["items"]])))
    assert np.count_nonzero(grid.ref + grid.cur) == distinct >= 8
    features = set(run["drift"].index.get_level_values("feature"))
    assert features == {*NUMERIC, *CATEGORICAL, "score", "label"}  # label drift: on by default


def test_counts_are_the_drift_versions_rows_in_each_window(run):
    drift, ref, cur = run["drift"], run["reference"], run["current"]
    for feature in [*NUMERIC, "score"]:
        rows = drift.loc[feature]
        assert (rows["kind"] == "numeric").all()
        assert (rows["n_reference"] == len(ref)).all(), feature
        assert (rows["n_current"] == len(cur)).all(), feature
        assert (rows["missing_reference"] == 0).all() and (rows["missing_current"] == 0).all()
    rows = drift.loc["channel"]
    assert (rows["kind"] == "categorical").all()
    assert (rows["n_reference"] == ref["channel"].notna().sum()).all()
    assert (rows["n_current"] == cur["channel"].notna().sum()).all()
    assert (rows["missing_reference"] == ref["channel"].isna().sum()).all()
    assert (rows["missing_current"] == cur["channel"].isna().sum()).all()


def test_default_method_follows_the_reference_size(run):
    drift = run["drift"].reset_index()
    large = run["size"] == "large"
    defaults = drift[drift["default"]].set_index("feature")["method"]
    assert defaults.index.is_unique
    for feature in [*NUMERIC, "score"]:
        assert defaults[feature] == ("wasserstein" if large else "ks"), feature
    assert defaults["channel"] == ("jensen_shannon" if large else "chi_square")
    # The planted drift is caught by the default method; the stable features are not flagged.
    flagged = drift[drift["default"]].set_index("feature")["drifted"]
    assert flagged["latency"] and flagged["channel"] and flagged["refunds"]
    assert not flagged["items"] and not flagged["amount"] and not flagged["score"]


def test_integer_feature_ks_equals_ks_2samp_on_raw_rows(run):
    ref = run["reference"]["items"].to_numpy()
    cur = run["current"]["items"].to_numpy()
    row = run["drift"].loc[("items", "ks")]
    exact = stats.ks_2samp(ref, cur, method="auto")
    assert row["statistic"] == pytest.approx(exact.statistic, abs=1e-12)
    assert row["p_value"] == pytest.approx(exact.pvalue, rel=1e-9, abs=1e-15)
    assert 0.05 < exact.pvalue < 1.0  # a non-trivial p-value is being compared


@pytest.mark.parametrize("feature", [*NUMERIC, "score"])
def test_numeric_ks_within_documented_bound_of_ks_2samp(run, feature):
    ref = run["reference"][feature].to_numpy()
    cur = run["current"][feature].to_numpy()
    grid = Grid(ref, cur, BINS)
    row = run["drift"].loc[(feature, "ks")]
    exact = stats.ks_2samp(ref, cur).statistic
    # The engine's statistic is the ECDF gap at the grid edges of the raw rows' histogram ...
    assert row["statistic"] == pytest.approx(grid.ks_at_edges(), abs=1e-12)
    # ... hence within [D* - max bin mass, D*] of the raw-row statistic.
    assert row["statistic"] <= exact + 1e-12
    assert row["statistic"] >= exact - grid.max_bin_mass() - 1e-12
    if feature == "latency":
        assert grid.max_bin_mass() < 0.03  # the bound is tight where the grid is fine
        assert row["p_value"] < 1e-6 and row["drifted"]


@pytest.mark.parametrize("feature", [*NUMERIC, "score"])
def test_numeric_wasserstein_within_bound_of_scipy_on_raw_rows(run, feature):
    ref = run["reference"][feature].to_numpy(dtype=float)
    cur = run["current"][feature].to_numpy(dtype=float)
    grid = Grid(ref, cur, BINS)
    ref_std = float(np.std(ref))  # population std, as SQL STDDEV_POP
    statistic = run["drift"].loc[(feature, "wasserstein"), "statistic"]
    raw = stats.wasserstein_distance(ref, cur) / ref_std
    assert abs(statistic - raw) <= grid.width / ref_std + 1e-12
    # The SQL histogram and STDDEV_POP are those of the raw rows: the same function on numpy
    # histograms and np.std(ddof=0) gives the engine's number.
    on_numpy = wasserstein_normed(grid.edges, grid.ref, grid.cur, ref_std=ref_std)
    assert statistic == pytest.approx(on_numpy, rel=1e-12, abs=1e-15)
    if feature == "latency":
        assert grid.width / ref_std < 0.03
        assert statistic == pytest.approx(0.8, abs=0.15 if run["size"] == "large" else 0.3)


@pytest.mark.parametrize("feature", [*NUMERIC, "score"])
def test_numeric_jensen_shannon_and_psi_on_evidently_bins_from_raw_rows(run, feature):
    ref = run["reference"][feature].to_numpy()
    cur = run["current"][feature].to_numpy()
    r, c = evidently_bins(ref, cur)
    both = np.concatenate([ref, cur])
    sturges = 1 + np.ceil(np.log2(both.size))
    assert len(r) == (len(np.unique(both)) if feature == "items" else sturges)
    drift = run["drift"]
    js = distance.jensenshannon(r, c)  # natural log, as Evidently
    assert drift.loc[(feature, "jensen_shannon"), "statistic"] == pytest.approx(js, abs=1e-12)
    psi = drift.loc[(feature, "psi"), "statistic"]
    assert psi == pytest.approx(hand_psi(r, c), rel=1e-12, abs=1e-15)
    if feature in ("latency", "refunds"):
        assert psi > 0.25 and drift.loc[(feature, "psi"), "drifted"]
    elif run["size"] == "large":
        assert psi < 0.05  # no drift planted: sampling noise stays far below 0.1
        assert js < 0.05


def test_continuous_features_are_not_counted_exactly_on_duckdb(run):
    """run.json: the ranges query estimates every numeric feature's distinct reference values
    (no exact COUNT(DISTINCT) there); the one exact count that follows covers only the
    features whose estimate is small (``items``, 21 possible values; the 0/1 label), never a
    continuous one (about 4000 reference rows of each), and is recorded with its cost like
    every query. (With about 800 reference rows, ``small``, every estimate is small.)"""
    record = run["record"]
    queries = record["queries"]
    ranges = queries["drift_ranges"]
    assert "COUNT(DISTINCT" not in ranges
    assert ranges.count("approx_count_distinct(") == len(NUMERIC) + 1  # and the score
    if run["size"] != "large":
        return
    assert len(run["reference"]) > 3 * SURELY_MANY_DISTINCT
    distinct = queries["drift_distinct"]
    assert distinct.count("COUNT(DISTINCT") == 1 and "p.items" in distinct
    for continuous in ("latency", "amount", "refunds", "score"):
        assert f"p.{continuous}" not in distinct
    assert queries["label_drift_distinct"].count("COUNT(DISTINCT") == 1
    purposes = [entry["purpose"] for entry in record["query_costs"]]
    assert purposes.count("drift distinct values") == 2
    ranges_at = purposes.index("drift ranges")
    assert purposes[ranges_at + 1] == "drift distinct values"


def _ranges(**values: float) -> pd.Series:
    return pd.Series(values, dtype=float)


def test_the_distinct_decision_reads_exact_counts_and_only_large_estimates():
    """Hand-built results of the ranges query: an exact count decides; 20 reference values
    or fewer cannot hold more distinct ones; an estimate above SURELY_MANY_DISTINCT proves
    more than 20; any other estimate needs the exact count, and without it nothing is
    guessed."""
    exact_engine = _ranges(ref_n_0=500, ref_distinct_0=20, ref_n_1=500, ref_distinct_1=21)
    assert unsettled_distinct(exact_engine, 2) == []
    assert more_values_than_bins(exact_engine, 2) == [False, True]

    estimated = _ranges(
        ref_n_0=10**6,
        ref_distinct_estimate_0=SURELY_MANY_DISTINCT + 1,
        ref_n_1=10**6,
        ref_distinct_estimate_1=SURELY_MANY_DISTINCT,
        ref_n_2=MAX_VALUE_BINS,
        ref_distinct_estimate_2=MAX_VALUE_BINS,
        ref_n_3=0,
        ref_distinct_estimate_3=0,
        ref_n_4=10**6,
        ref_distinct_estimate_4=19,
    )
    assert unsettled_distinct(estimated, 5) == [1, 4]
    with pytest.raises(ValueError, match="no exact distinct count"):
        more_values_than_bins(estimated, 5)
    exact = _ranges(ref_distinct_1=21, ref_distinct_4=20)
    assert more_values_than_bins(estimated, 5, exact) == [True, True, False, False, False]


def test_zero_inflated_feature_keeps_its_bins(run):
    """Reference deciles collapse to a few groups when 70% of the values are 0; Sturges' bins
    over the range keep the non-zero part's shape, so its shift shows in PSI."""
    ref, cur = run["reference"]["refunds"].to_numpy(), run["current"]["refunds"].to_numpy()
    assert 0.65 < (ref == 0).mean() < 0.75
    r, c = evidently_bins(ref, cur)
    deciles = np.unique(np.quantile(ref, np.linspace(0, 1, 11)))
    assert len(deciles) - 1 <= 4  # what the reference deciles of the old PSI collapsed to
    assert len(r) >= 10 and np.count_nonzero(r + c) >= 5  # Sturges' bins over both windows
    assert run["drift"].loc[("refunds", "psi"), "statistic"] > 1.0


def test_categorical_against_scipy_and_hand_psi(run):
    ref, cur = run["reference"]["channel"], run["current"]["channel"]
    r, c = category_counts(ref, cur)
    assert len(r) == 4 and r[-1] == 0  # D: new in the current week
    drift = run["drift"]
    chi2, p, _, _ = stats.chi2_contingency(np.vstack([r, c]), correction=False)
    row = drift.loc[("channel", "chi_square")]
    assert row["statistic"] == pytest.approx(chi2, rel=1e-10)
    assert row["p_value"] == pytest.approx(p, rel=1e-10, abs=1e-300)
    assert row["drifted"]
    js = distance.jensenshannon(r / r.sum(), c / c.sum())
    assert drift.loc[("channel", "jensen_shannon"), "statistic"] == pytest.approx(js, abs=1e-12)
    psi = hand_psi(r, c)
    assert drift.loc[("channel", "psi"), "statistic"] == pytest.approx(psi, rel=1e-12)
    assert psi > 0.25  # the new category alone adds (0.1 - 1e-4) ln(0.1 / 1e-4) ~ 0.69
    assert set(drift.loc["channel"].index) == {"psi", "jensen_shannon", "chi_square"}


def test_z_test_on_four_categories_is_first_category_against_the_rest(tmp_path):
    """`z_test` in drift.methods with a 4-category feature runs (it used to exit 70): category
    "A" (the first in sorted order, as Evidently's z-test) against the rest."""
    predictions, labels = build_rows(seed=12, per_week=SIZES["small"])
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = drift_spec(url, methods=["z_test", "chi_square"])
    drift = evaluate(parse_spec(spec), WEEK).drift.set_index(["feature", "method"])
    ref, cur = windows_of(predictions)
    r, c = category_counts(ref["channel"], cur["channel"])
    collapsed = np.array([[r[0], r[1:].sum()], [c[0], c[1:].sum()]])
    chi2, p, _, _ = stats.chi2_contingency(collapsed, correction=False)
    row = drift.loc[("channel", "z_test")]
    assert row["statistic"] ** 2 == pytest.approx(chi2, rel=1e-10)
    assert row["p_value"] == pytest.approx(p, rel=1e-9)
    # fewer "A" rows in the current week: a positive z (share of the rest grew... in cur)
    assert row["statistic"] < 0 and row["drifted"] == (p < 0.05)


# --------------------------------------------------------------------------------------
# errors and reference windows
# --------------------------------------------------------------------------------------


def test_no_reference_rows_of_the_drift_version_skip_drift_with_a_note(tmp_path):
    # v2 has rows only in 2026-10-19 .. 2026-11-01 and the current week; v1 in every week.
    predictions, labels = build_rows(seed=3, per_week=(60, 80))
    predictions = predictions[
        (predictions["model_version"] == "v1")
        | (predictions["ts"] < REF_START + pd.Timedelta(days=14))
        | (predictions["ts"] >= WEEK_START)
    ]
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)

    # Two reference weeks hold no v2 rows: drift is not judged (a first week), not an error.
    skipped = evaluate(parse_spec(drift_spec(url, reference_weeks=2)), WEEK)
    assert not skipped.drift.empty
    assert (skipped.drift["n_reference"] == 0).all()
    assert (skipped.drift["n_current"] > 0).all()
    assert skipped.drift["statistic"].isna().all()
    assert not skipped.drift["drifted"].any()
    [note] = [r for r in skipped.validation.results if r.name == "drift_reference_data"]
    reference = reference_window(week_window(WEEK), 2)
    assert note.passed and not note.blocking
    assert note.message == (
        f"skipped: no predictions in the reference weeks ({reference}, "
        "drift.reference_weeks=2); drift is judged once earlier weeks hold predictions, "
        "drift gates are inconclusive"
    )
    assert "2026-11-02 00:00" in note.message

    # Four reference weeks reach back to the rows that exist, and only those count.
    drift = evaluate(parse_spec(drift_spec(url)), WEEK).drift.set_index(["feature", "method"])
    ref, cur = windows_of(predictions)
    assert ref["ts"].max() < REF_START + pd.Timedelta(days=14)
    assert drift.loc[("latency", "ks"), "n_reference"] == len(ref) > 0
    assert drift.loc[("latency", "ks"), "n_current"] == len(cur) > 0


def test_null_numeric_values_are_reported_missing(tmp_path):
    predictions, labels = build_rows(seed=4, per_week=(60, 80))
    v2 = predictions.index[predictions["model_version"] == "v2"]
    ts = predictions.loc[v2, "ts"]
    predictions.loc[v2[ts.between(REF_START, WEEK_START, inclusive="left")][:3], "latency"] = None
    predictions.loc[v2[ts.between(WEEK_START, WEEK_END, inclusive="left")][:2], "latency"] = None
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    drift = evaluate(parse_spec(drift_spec(url)), WEEK).drift.set_index(["feature", "method"])
    ref, cur = windows_of(predictions)
    row = drift.loc[("latency", "ks")]
    assert (row["missing_reference"], row["missing_current"]) == (3, 2)
    assert row["n_reference"] == ref["latency"].notna().sum()
    assert row["n_current"] == cur["latency"].notna().sum()


# --------------------------------------------------------------------------------------
# one definition of "drifted": rows, gates, summary, alert
# --------------------------------------------------------------------------------------


def test_gate_row_summary_and_alert_agree_on_a_gated_method(tmp_path):
    """A drift gate's bound is its method's threshold for the features it gates: the row's
    `drifted`, the gate's outcome, the summary bullet and the alert say the same thing."""
    predictions, labels = build_rows(seed=11, per_week=SIZES["large"])
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    raw = drift_spec(url)
    # latency drifts (its planted shift), channel too; amount's PSI passes 0.25 easily.
    raw["gates"] = [
        {"drift": "psi", "max": 0.25},
        {"drift": "ks", "feature": "amount", "min_p_value": 0.01},
    ]
    evaluation = evaluate(parse_spec(raw), WEEK)
    drift = evaluation.drift.set_index(["feature", "method"])
    psi = drift.xs("psi", level="method")
    assert (psi["threshold"] == 0.25).all() and psi["decides"].all()
    assert drift.loc[("amount", "ks"), "threshold"] == 0.01
    assert drift.loc[("amount", "ks"), "decides"]
    assert not drift.loc[("latency", "ks"), "decides"]  # informational: no gate, not default
    verdict = evaluation.decide()
    gated = {(r.gate, r.feature): r.outcome for r in verdict.reasons if r.feature}
    for feature, row in psi.iterrows():
        assert gated[("{drift=psi, max=0.25}", feature)] == ("hold" if row["drifted"] else "pass")
    assert psi.loc["latency", "drifted"] and not psi.loc["amount", "drifted"]
    [bullet] = [b for b in summary(evaluation) if "drift" in b.lower()]
    drifted = set(drifted_rows(evaluation.drift)["feature"])
    assert drifted == {"latency", "channel", "refunds"}
    for feature in [*NUMERIC, *CATEGORICAL, "score"]:
        assert (f"{feature} (" in bullet) == (feature in drifted), feature
    assert "latency (jensen_shannon" not in bullet  # not a deciding method for latency
    # the Dagster no_drift check reads assets.metadata.drifted
    assert set(dagster_drifted(evaluation.drift)["feature"]) == drifted
    alert = json.dumps(build_alert(asdict(verdict), None, evaluation.drift))
    assert all(f"`{feature}`" in alert for feature in drifted)
    assert "`amount`" not in alert and "`score`" not in alert


def test_binary_label_drift_is_measured_on_the_labeled_rows(run):
    """Label drift (on by default): the 0/1 label is a numeric feature with two values, one
    Evidently bin per value, equal to scipy's Jensen-Shannon distance and the hand PSI on the
    raw labels of both windows (every row here is labeled)."""
    ref, cur = run["reference"], run["current"]
    labels = [
        frame["prediction_id"].str[-1].isin(list("02468")).astype(int) for frame in (ref, cur)
    ]
    r, c = (np.array([np.sum(y == 0), np.sum(y == 1)], dtype=float) for y in labels)
    rows = run["drift"].loc["label"]
    assert (rows["n_reference"] == len(ref)).all() and (rows["n_current"] == len(cur)).all()
    js = distance.jensenshannon(r / r.sum(), c / c.sum())
    assert rows.loc["jensen_shannon", "statistic"] == pytest.approx(js, abs=1e-12)
    assert rows.loc["psi", "statistic"] == pytest.approx(hand_psi(r, c), rel=1e-12)


def test_the_coarse_bin_sql_puts_each_value_in_numpys_histogram_bin():
    """The Evidently bin of a value (``SqlBuilder._coarse_bin``, a bisection over the
    edges), evaluated by DuckDB on values at, between and beyond the edges, against
    ``numpy.histogram``'s bin of each value (values outside the edges take the end bins)."""
    import duckdb

    from eval_pipelines.dialects import dialect_class
    from eval_pipelines.sqlbuild import SqlBuilder

    spec = parse_spec(base_spec("duckdb:///:memory:"))
    builder = SqlBuilder(spec, dialect_class("duckdb:///:memory:")())
    rng = np.random.default_rng(3)
    for bins in (1, 2, 3, 7, 8, 26):
        edges = np.histogram_bin_edges(rng.normal(size=500), bins=bins)
        values = np.concatenate([edges, rng.normal(size=300), [edges[0] - 1, edges[-1] + 1]])
        sql = builder._coarse_bin("x", tuple(float(e) for e in edges))
        with duckdb.connect() as con:
            con.execute("CREATE TABLE t AS SELECT unnest($v::DOUBLE[]) AS x", {"v": values})
            ours = [row[0] for row in con.execute(f"SELECT {sql} FROM t").fetchall()]
        inside = np.clip(values, edges[0], edges[-1])
        expected = [int(np.argmax(np.histogram([v], bins=edges)[0])) for v in inside]
        assert ours == expected, bins
