"""The ranking task against scikit-learn's ``ndcg_score`` and per-list numpy oracles.

Random lists of 1-14 items with list-level slices, missing and late labels (gain 0), lists
with no relevant item, and tied scores: NDCG@k against ``ndcg_score`` on untied scores, every
metric against a per-list numpy implementation of the documented definitions (ties broken by
the item id) to 1e-9, each row's ``n`` the lists with a relevant item; the same on PostgreSQL
with DuckDB's numbers and fingerprint; a hand-worked list with ties.
"""

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import ndcg_score
from support.data import WEEK, WEEK_START, base_spec, evaluated_rows, write_warehouse
from support.postgres import copy_duckdb_tables

from eval_pipelines.errors import SpecError, ValidationFailed
from eval_pipelines.pipeline import evaluate
from eval_pipelines.spec import parse_spec

KS = [3, 10]
METRICS = [f"{kind}@{k}" for k in KS for kind in ("ndcg", "map", "recall", "hit_rate")] + ["mrr"]


def ranking_window(
    rng: np.random.Generator, lists: int, ties: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two versions ranking the same items of each list; graded relevance 0-3 with some labels
    missing and some late; scores rounded (ties) unless ``ties`` is False."""
    sizes = rng.integers(1, 15, lists)
    list_of = np.repeat(np.arange(lists), sizes)
    n = len(list_of)
    position = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    ids = list_of * 100 + position  # integer row ids: the tie-break order is numeric
    relevance = np.where(rng.random(n) < 0.6, 0, rng.integers(1, 4, n))
    ts = WEEK_START + pd.to_timedelta(rng.integers(0, 7 * 86400, lists)[list_of], unit="s")
    device = rng.choice(["ios", "android", "web"], lists)[list_of]
    country = rng.choice(["US", "GB", "DE"], lists, p=[0.5, 0.3, 0.2])[list_of]
    frames = []
    for i, version in enumerate(["v1", "v2"]):
        score = (0.3 + 0.3 * i) * relevance + rng.normal(0, 1, n)
        frames.append(
            pd.DataFrame(
                {
                    "prediction_id": ids,
                    "list_id": np.char.add("q", list_of.astype(str)),
                    "ts": ts,
                    "model_version": version,
                    "score": np.round(score, 1) if ties else score,
                    "country": country,
                    "device": device,
                }
            )
        )
    labeled = rng.random(n) >= 0.15
    delay_days = rng.uniform(0, 17, n)  # some later than the 14-day maximum: gain 0
    labels = pd.DataFrame(
        {
            "prediction_id": ids[labeled],
            "label": relevance[labeled],
            "labeled_at": (ts + pd.to_timedelta(delay_days, unit="D"))[labeled],
        }
    )
    return pd.concat(frames, ignore_index=True), labels


def ranking_spec(url: str, **overrides) -> dict:
    return base_spec(
        url,
        task="ranking",
        predictions={"table": "inference_logs", "list_id": "list_id"},
        **{"ranking": {"k": KS}, "min_label_coverage": 0.0, **overrides},
    )


def list_values(gain: np.ndarray, k: int) -> dict[str, float]:
    """One list's metrics, ``gain`` in served order (score descending, ties by id), by the
    documented definitions."""
    relevant = gain > 0
    R = int(relevant.sum())
    positions = np.arange(1, len(gain) + 1)
    discount = 1 / np.log2(positions + 1)
    ideal = np.sort(gain)[::-1]
    precision_at = np.cumsum(relevant) / positions
    top = positions <= k
    return {
        "ndcg": (gain * discount)[top].sum() / (ideal * discount)[top].sum(),
        "map": precision_at[top & relevant].sum() / min(k, R),
        "recall": relevant[top].sum() / R,
        "hit_rate": float(relevant[top].any()),
        "mrr": 1 / positions[relevant][0],
    }


def per_list_oracle(rows: pd.DataFrame) -> pd.DataFrame:
    """Each (version, list)'s metrics by :func:`list_values` (NaN without a relevant item),
    with its list-level slice columns."""
    out = []
    for (version, list_id), items in rows.groupby(["model_version", "list_id"]):
        items = items.sort_values(["score", "prediction_id"], ascending=[False, True])
        gain = items["label"].fillna(0).to_numpy(float)
        entry = {
            "model_version": version,
            "list_id": list_id,
            "country": items["country"].iloc[0],
            "device": items["device"].iloc[0],
        }
        for metric in METRICS:
            kind, _, k = metric.partition("@")
            entry[metric] = list_values(gain, int(k or 1))[kind] if (gain > 0).any() else np.nan
        out.append(entry)
    return pd.DataFrame(out)


def sklearn_ndcg(rows: pd.DataFrame, k: int) -> float:
    """``ndcg_score`` over the lists with a relevant item, each padded to one width with
    items of gain 0 scored below every item (they change neither DCG@k nor IDCG@k)."""
    lists = [
        (items["label"].fillna(0).to_numpy(float), items["score"].to_numpy(float))
        for _, items in rows.groupby("list_id")
    ]
    lists = [(g, s) for g, s in lists if (g > 0).any()]
    width = max(2, *(len(g) for g, _ in lists))
    low = min(s.min() for _, s in lists) - 1.0
    y_true = np.array([np.pad(g, (0, width - len(g))) for g, _ in lists])
    y_score = np.array([np.pad(s, (0, width - len(s)), constant_values=low) for _, s in lists])
    return float(ndcg_score(y_true, y_score, k=k))


def slice_rows(rows: pd.DataFrame, name: str) -> pd.DataFrame:
    if name == "overall":
        return rows
    mask = np.ones(len(rows), dtype=bool)
    for part in name.split(", "):
        column, value = part.split("=", 1)
        mask &= (rows[column].astype(str) == value).to_numpy()
    return rows[mask]


def check_against_oracle(metrics: pd.DataFrame, predictions, labels, sklearn: bool) -> int:
    rows = evaluated_rows(predictions, labels)
    lists = per_list_oracle(rows)
    checked = 0
    for row in metrics.itertuples(index=False):
        part = slice_rows(lists[lists["model_version"] == row.model_version], row.slice)
        values = part[row.metric].dropna()
        assert row.n == len(values), (row.slice, row.metric)
        if values.empty:
            assert np.isnan(row.value), (row.slice, row.metric)
            continue
        assert row.value == pytest.approx(values.mean(), rel=1e-9, abs=1e-12), (
            row.slice,
            row.metric,
        )
        if sklearn and row.metric.startswith("ndcg@"):
            k = int(row.metric.split("@")[1])
            items = slice_rows(rows[rows["model_version"] == row.model_version], row.slice)
            assert row.value == pytest.approx(sklearn_ndcg(items, k), rel=1e-9, abs=1e-12)
        checked += 1
    return checked


@pytest.mark.parametrize("seed", range(3))
def test_ranking_metrics_match_the_oracles_on_every_slice(tmp_path, seed):
    rng = np.random.default_rng(seed)
    ties = seed != 0  # seed 0: untied scores, NDCG also against scikit-learn
    predictions, labels = ranking_window(rng, int(rng.integers(150, 400)), ties=ties)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    result = evaluate(parse_spec(ranking_spec(url)), WEEK)
    assert set(result.metrics["metric"]) == set(METRICS)
    assert check_against_oracle(result.metrics, predictions, labels, sklearn=not ties) > 100
    ci = result.metrics.dropna(subset=["value"])
    assert (ci["ci_low"] <= ci["value"]).all() and (ci["value"] <= ci["ci_high"]).all()
    # Lists, not rows: coverage counts lists with any matured label.
    rows = evaluated_rows(predictions, labels)
    overall = result.coverage.query("slice == 'overall'").set_index("model_version")
    labeled_lists = rows[rows["label"].notna()].groupby("model_version")["list_id"].nunique()
    assert overall["labeled"].to_dict() == labeled_lists.to_dict()


@pytest.mark.postgres
def test_postgresql_gives_the_oracle_values_and_duckdbs_numbers(tmp_path, postgres_url):
    rng = np.random.default_rng(21)
    predictions, labels = ranking_window(rng, 300)
    path = tmp_path / "w.duckdb"
    url = write_warehouse(path, predictions, labels)
    copy_duckdb_tables(path, postgres_url, ["inference_logs", "labels"], replace=True)
    duck = evaluate(parse_spec(ranking_spec(url)), WEEK)
    pg = evaluate(parse_spec(ranking_spec(postgres_url)), WEEK)
    assert check_against_oracle(pg.metrics, predictions, labels, sklearn=False) > 100
    assert duck.fingerprint == pg.fingerprint
    for frame in ("metrics", "comparison"):
        left, right = getattr(duck, frame), getattr(pg, frame)
        assert list(left.columns) == list(right.columns) and len(left) == len(right)
        for column in left.columns:
            a, b = left[column].to_numpy(), right[column].to_numpy()
            if np.issubdtype(a.dtype, np.floating):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)
            else:
                assert list(a) == list(b), (frame, column)


def test_a_hand_worked_list_with_ties_and_missing_labels(tmp_path):
    """One list, scores [0.9, 0.5, 0.5, 0.1] on ids [4, 2, 3, 1]: the tie at 0.5 is broken by
    id, so the served order is ids 4, 2, 3, 1 with gains 0, 3, 0 (no label), 1.

    DCG@3 = 3 / log2(3); IDCG@3 = 3 + 1 / log2(3); NDCG@3 = 0.5 (to 1e-16 by construction:
    3 / log2(3) / (3 + 1 / log2(3)) is not 0.5, so it is computed below). AP@3: one relevant
    in the top 3 at position 2, precision 1/2, divided by min(3, R=2): 0.25. Recall@3 = 1/2,
    hit rate 1, MRR 1/2. scikit-learn would average the tied gains instead: (3 + 0) / 2 at
    positions 2 and 3.
    """
    ts = WEEK_START + pd.Timedelta(hours=1)
    predictions = pd.DataFrame(
        {
            "prediction_id": [4, 2, 3, 1, 14, 12],
            "list_id": ["a", "a", "a", "a", "b", "b"],
            "ts": ts,
            "model_version": "v1",
            "score": [0.9, 0.5, 0.5, 0.1, 0.7, 0.2],
            "country": "US",
            "device": "web",
        }
    )
    # list b has only a label of relevance 0: labeled, but no relevant item.
    labels = pd.DataFrame({"prediction_id": [4, 2, 1, 14], "label": [0, 3, 1, 0], "labeled_at": ts})
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = ranking_spec(
        url, compare=None, slices=[], min_slice_size=1, ranking={"k": [3]}, metrics=None
    )
    spec.pop("metrics")
    result = evaluate(parse_spec(spec), WEEK)
    got = result.metrics.set_index("metric")
    log3 = np.log2(3)
    expected = {
        "ndcg@3": (3 / log3) / (3 + 1 / log3),
        "map@3": 0.25,
        "recall@3": 0.5,
        "hit_rate@3": 1.0,
        "mrr": 0.5,
    }
    assert set(got.index) == set(expected)
    for name, value in expected.items():
        assert got.loc[name, "value"] == pytest.approx(value, rel=1e-12), name
        assert got.loc[name, "n"] == 1  # list b (no relevant item) is not averaged
    assert result.coverage.query("slice == 'overall'")["labeled"].item() == 2
    tied = ndcg_score([[0, 3, 0, 1]], [[0.9, 0.5, 0.5, 0.1]], k=3)
    assert tied != pytest.approx(expected["ndcg@3"])  # scikit-learn averages the tie


def test_metric_names_at_any_k_are_accepted_and_bad_ones_named(tmp_path):
    spec = parse_spec(ranking_spec("duckdb:///w.duckdb", metrics=["ndcg@5", "mrr"]))
    assert spec.metrics == ["ndcg@5", "mrr"]
    gated = ranking_spec(
        "duckdb:///w.duckdb", gates=[{"metric": "ndcg@10", "max_regression": 0.01}]
    )
    assert parse_spec(gated).metrics == METRICS
    with pytest.raises(SpecError, match=r"unknown metric 'ndcg@0'"):
        parse_spec(ranking_spec("duckdb:///w.duckdb", metrics=["ndcg@0"]))
    with pytest.raises(SpecError, match=r"did you mean 'recall@10'"):
        parse_spec(ranking_spec("duckdb:///w.duckdb", metrics=["recal@10"]))
    with pytest.raises(SpecError, match=r"predictions\.list_id: required for task 'ranking'"):
        parse_spec(base_spec("duckdb:///w.duckdb", task="ranking"))
    with pytest.raises(SpecError, match=r"ranking\.k: expected distinct cutoffs"):
        parse_spec(ranking_spec("duckdb:///w.duckdb", ranking={"k": [5, 5]}))
    with pytest.raises(SpecError, match=r"ranking: only for task 'ranking', not 'binary_"):
        parse_spec(base_spec("duckdb:///w.duckdb", ranking={"k": [5]}))


def test_negative_relevance_and_nan_scores_fail_the_input_checks(tmp_path):
    rng = np.random.default_rng(4)
    predictions, labels = ranking_window(rng, 60)
    rows = evaluated_rows(predictions, labels)
    labeled = rows[rows["label"].notna()]["prediction_id"].unique()[:2]
    labels.loc[labels["prediction_id"].isin(labeled), "label"] = -1
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute(
        "UPDATE inference_logs SET score = 'nan'::DOUBLE "
        "WHERE model_version = 'v2' AND prediction_id IN (0, 1, 2)"
    )
    con.close()
    with pytest.raises(ValidationFailed) as info:
        evaluate(parse_spec(ranking_spec(url)), WEEK)
    message = str(info.value)
    assert "predictions.score: 3 rows of version 'v2' have a 'score' that is NaN" in message
    assert "labels.label: 2 labels joined to version 'v1' are negative, NaN or infinite" in (
        message
    )


def test_a_list_id_column_with_nulls_fails_the_input_checks(tmp_path):
    rng = np.random.default_rng(6)
    predictions, labels = ranking_window(rng, 40)
    predictions.loc[predictions.index[:2], "list_id"] = None
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    with pytest.raises(ValidationFailed, match=r"predictions\.list_id: 2 rows of version 'v1'"):
        evaluate(parse_spec(ranking_spec(url)), WEEK)


def test_a_slice_value_varying_within_a_list_takes_the_lists_smallest(tmp_path):
    """Slices are list-level: list a served on 'web' and 'ios' rows counts once, under 'ios'."""
    ts = WEEK_START + pd.Timedelta(hours=1)
    predictions = pd.DataFrame(
        {
            "prediction_id": [1, 2, 3, 4],
            "list_id": ["a", "a", "b", "b"],
            "ts": ts,
            "model_version": "v1",
            "score": [0.9, 0.1, 0.8, 0.2],
            "country": "US",
            "device": ["web", "ios", "web", "web"],
        }
    )
    labels = pd.DataFrame({"prediction_id": [2, 3], "label": [1, 1], "labeled_at": ts})
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = ranking_spec(url, compare=None, slices=["device"], min_slice_size=1, metrics=["mrr"])
    result = evaluate(parse_spec(spec), WEEK)
    got = result.metrics.set_index("slice")
    assert got.loc["device=ios", "value"] == 0.5 and got.loc["device=ios", "n"] == 1
    assert got.loc["device=web", "value"] == 1.0 and got.loc["device=web", "n"] == 1
    assert got.loc["overall", "value"] == 0.75 and got.loc["overall", "n"] == 2


def test_paired_ndcg_delta_agrees_with_a_list_level_paired_bootstrap(tmp_path):
    """Both versions ranked the same lists: the delta is the mean per-list difference, and its
    interval is as wide as a paired bootstrap of lists says (buckets resample lists)."""
    rng = np.random.default_rng(11)
    predictions, labels = ranking_window(rng, 1500, ties=False)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    buckets, level = 512, 0.95
    confidence = {"buckets": buckets, "replicates": 2000, "level": level}
    spec = ranking_spec(url, metrics=["ndcg@10"], confidence=confidence)
    result = evaluate(parse_spec(spec), WEEK)
    lists = per_list_oracle(evaluated_rows(predictions, labels))
    wide = lists.pivot(index="list_id", columns="model_version", values="ndcg@10").dropna()
    diff = (wide["v2"] - wide["v1"]).to_numpy()
    draws = np.random.default_rng(0).integers(0, len(diff), (1000, len(diff)))
    boot = diff[draws].mean(1)
    row = result.comparison.query("slice == 'overall' and metric == 'ndcg@10'").iloc[0]
    assert row.delta == pytest.approx(diff.mean(), rel=1e-9)
    assert row.n == len(diff)  # lists with a relevant item both versions ranked
    assert row.delta > 0 and row.outcome == "improved"
    t = stats.t.isf((1 - level) / 2, buckets - 1)
    ratio = (row.delta_ci_high - row.delta_ci_low) / (2 * t * boot.std(ddof=1))
    assert 0.8 <= ratio <= 1.25


def test_a_row_id_repeated_within_a_version_fails_the_input_checks(tmp_path):
    """One row per (list, item): the row id is unique per version."""
    rng = np.random.default_rng(9)
    predictions, labels = ranking_window(rng, 40)
    first = predictions.index[predictions["model_version"] == "v1"][:2]
    predictions.loc[first[1], "prediction_id"] = predictions.loc[first[0], "prediction_id"]
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    with pytest.raises(ValidationFailed, match=r"predictions\.id: \d+ rows of version 'v1'"):
        evaluate(parse_spec(ranking_spec(url)), WEEK)
