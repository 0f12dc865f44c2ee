"""ROC AUC and PR AUC on score bins that follow the data, against scikit-learn.

Real models' scores cluster: rounded to 2-3 decimals, or point masses (a default score, a
clipped 0 or 1) beside a continuous part. Equal-width bins put neighbouring distinct scores in
one bin and count those rows as tied; the engine's bins follow the window's labeled scores
instead. On slices of 100-400 rows the reported error bound must hold, be small, and be 0
(with the exact value) when the window has no more distinct scores than ``score_bins``.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from support.data import WEEK, base_spec, evaluated_rows, random_window, write_warehouse
from support.postgres import copy_duckdb_tables

from eval_pipelines.pipeline import evaluate
from eval_pipelines.spec import parse_spec
from eval_pipelines.stats.binary import HISTOGRAM, BinLayout, ScoreHistogram
from eval_pipelines.tasks import binary as m

COUNTRIES = ("US", "GB", "DE", "BR", "FR", "IT", "ES", "NL")
ORACLE = {"roc_auc": skm.roc_auc_score, "pr_auc": skm.average_precision_score}


def clustered_window(seed: int, kind: str, n: int = 3000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``random_window`` with clustered scores: ``round3`` (3 decimals: up to 1001 distinct
    scores), ``round2`` (2 decimals), or ``mixture`` (half the rows on 5 point masses, half
    continuous)."""
    rng = np.random.default_rng(seed)
    predictions, labels = random_window(rng, n, countries=COUNTRIES)
    score = predictions["score"].to_numpy()
    if kind == "round3":
        score = np.round(score, 3)
    elif kind == "round2":
        score = np.round(score, 2)
    else:
        masses = np.array([0.0, 0.05, 0.5, 0.731, 1.0])
        on_mass = rng.random(len(score)) < 0.5
        nearest = masses[np.abs(score[:, None] - masses[None, :]).argmin(axis=1)]
        score = np.where(on_mass, nearest, score)
    predictions["score"] = score
    return predictions, labels


def slice_rows(rows: pd.DataFrame, name: str) -> pd.DataFrame:
    if name == "overall":
        return rows
    mask = np.ones(len(rows), dtype=bool)
    for part in name.split(", "):
        column, value = part.split("=", 1)
        mask &= (rows[column].astype(str) == value).to_numpy()
    return rows[mask]


def evaluate_window(url: str) -> pd.DataFrame:
    spec = parse_spec(base_spec(url, min_slice_size=20))
    metrics = evaluate(spec, WEEK).metrics
    return metrics[metrics["metric"].isin(list(ORACLE))]


def compare_with_sklearn(metrics: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Each (version, slice, metric): ours, scikit-learn's, the bound and the slice size."""
    out = []
    for row in metrics.itertuples(index=False):
        part = slice_rows(rows[rows["model_version"] == row.model_version], row.slice)
        y = part["label"].to_numpy(dtype=int)
        if len(set(y)) < 2:
            continue
        score = part["score"].to_numpy(dtype=float)
        expected = ORACLE[row.metric](y, score)
        # The same bound on 1000 equal-width bins, the engine's bins before they followed data.
        wide = np.clip(np.floor(score * 1000).astype(int), 0, 999)
        neg, pos = (np.bincount(wide[y == label], minlength=1000) for label in (0, 1))
        bound = {"roc_auc": m.roc_auc_error_bound, "pr_auc": m.average_precision_error_bound}
        out.append((row.model_version, row.slice, row.metric, row.value, expected,
                    row.error_bound, bound[row.metric](neg, pos), len(part)))  # fmt: skip
    return pd.DataFrame(
        out,
        columns=["version", "slice", "metric", "ours", "sklearn", "bound", "equal_width", "n"],
    )


@pytest.mark.parametrize(
    ("seed", "kind"), [(1, "round3"), (2, "round3"), (3, "round2"), (4, "mixture"), (5, "mixture")]
)
def test_clustered_scores_stay_within_a_small_honest_bound(tmp_path, seed, kind):
    predictions, labels = clustered_window(seed, kind)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    rows = evaluated_rows(predictions, labels).dropna(subset=["label"])
    table = compare_with_sklearn(evaluate_window(url), rows)
    small = table[(table["n"] >= 100) & (table["n"] <= 400)]
    assert len(small) >= 20, "the window should have many slices of 100-400 rows"

    error = (table["ours"] - table["sklearn"]).abs()
    assert (error <= table["bound"] + 1e-12).all(), table[error > table["bound"] + 1e-12]
    # No bin is coarser than an equal-width one: the bound is never worse than theirs.
    assert (table["bound"] <= table["equal_width"] + 1e-12).all()
    distinct = rows["score"].nunique()
    if distinct <= 1000:  # every distinct score is its own bin: exact, and known to be
        assert error.max() <= 1e-12, table[error > 1e-12]
        assert (table["bound"] == 0.0).all()
    else:  # quantile bins of about 1/1000 of the window's rows; point masses alone in theirs
        auc, ap = small[small["metric"] == "roc_auc"], small[small["metric"] == "pr_auc"]
        assert auc["bound"].max() <= 2e-3
        assert (auc["ours"] - auc["sklearn"]).abs().max() <= 1e-3
        assert ap["bound"].max() <= 1e-2


def test_layout_by_hand():
    """Four bins in two bootstrap bins; the first and last hold one score each (tied)."""
    layout = BinLayout(
        coarse=np.array([0, 0, 0, 1]), tied=np.array([True, False, False, True]), coarse_bins=2
    )
    count = np.array([[1.0, 1.0, 0.0, 2.0], [1.0, 0.0, 2.0, 1.0]])  # negatives, positives
    score_sum = np.array([[0.1, 0.3, 0.0, 1.4], [0.1, 0.0, 0.8, 0.7]])
    stats = ScoreHistogram(count, score_sum, calibration_bins=2, layout=layout)
    # Pairs share bins 0 and 3 only, and both are tied: the binned ROC AUC is exact.
    assert m.roc_auc_bound(stats) == 0.0
    # Bin 2's two positives (after 1 positive and 2 negatives) may have precision 2/4 or 3/5
    # against 3/5 binned: a gap of 0.1 for 2 of the 4 positives. Tied bins 3 and 0 add none.
    assert m.pr_auc_bound(stats) == pytest.approx(0.05)
    assert m.roc_auc_error_bound(count[0], count[1]) == 0.5 * 3 / 16
    # Calibration bins are the bootstrap bins here: scores 1.3 and 2.1, positives 3 and 1.
    assert m.expected_calibration_error(stats) == pytest.approx((1.7 + 1.1) / 8)
    coarse = HISTOGRAM.coarsen(stats, parse_spec(base_spec("duckdb:///x.duckdb")))
    np.testing.assert_array_equal(coarse.count, [[2.0, 2.0], [3.0, 1.0]])
    np.testing.assert_allclose(coarse.score_sum, [[0.4, 1.4], [0.9, 0.7]])


@pytest.mark.postgres
def test_duckdb_and_postgresql_draw_the_same_bins(tmp_path, postgres_url):
    """Edges come from integer counts and comparisons only: both engines give the same
    values and bounds on clustered and on continuous scores."""
    predictions, labels = clustered_window(4, "mixture")
    path = tmp_path / "w.duckdb"
    write_warehouse(path, predictions, labels)
    copy_duckdb_tables(path, postgres_url, ["inference_logs", "labels"], replace=True)
    duck = evaluate_window(f"duckdb:///{path}").reset_index(drop=True)
    pg = evaluate_window(postgres_url).reset_index(drop=True)
    pd.testing.assert_frame_equal(duck, pg, check_exact=False, rtol=1e-12, atol=1e-15)
