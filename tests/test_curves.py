"""``curves.parquet`` against independent oracles, and its size against the row count.

* binary: ROC points against ``sklearn.metrics.roc_curve`` and PR points against
  ``precision_recall_curve`` (both ``drop_intermediate=False``) on scores that each get their
  own bin (exact); reliability bins against a numpy groupby; score histograms against
  ``numpy.histogram``;
* regression: the residual histogram against ``numpy.histogram``, predicted vs actual against
  a numpy groupby;
* ranking: metric@k at every k against per-list numpy oracles;
* drift: reference and current bins against ``numpy.histogram`` and value counts;
* multiclass: one-vs-rest ROC points against ``roc_curve`` per class;
* size: the same number of rows at two row counts; the artifact is written and logged with
  the folder; PostgreSQL gives DuckDB's curves (the regression curves' own query).
"""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from support.data import WEEK, WEEK_START, base_spec, evaluated_rows, write_warehouse
from support.postgres import copy_duckdb_tables

from eval_pipelines.artifacts import write_artifacts
from eval_pipelines.curves import CURVE_COLUMNS
from eval_pipelines.pipeline import evaluate
from eval_pipelines.spec import parse_spec

COUNTRIES = ("US", "GB", "DE")
DEVICES = ("ios", "android", "web")


def slice_rows(rows: pd.DataFrame, name: str) -> pd.DataFrame:
    if name == "overall":
        return rows
    mask = np.ones(len(rows), dtype=bool)
    for part in name.split(", "):
        column, value = part.split("=", 1)
        mask &= (rows[column].astype(str) == value).to_numpy()
    return rows[mask]


def window(
    rng: np.random.Generator, n: int, output: dict[str, np.ndarray], y: np.ndarray, weeks: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Requests over the test week (and ``weeks - 1`` weeks before it), each scored by every
    version of ``output`` (version -> values), labels ``y`` with some missing."""
    ids = np.array([f"r{i:07d}" for i in range(n)])
    start = WEEK_START - pd.Timedelta(days=7 * (weeks - 1))
    ts = start + pd.to_timedelta(rng.integers(0, 7 * 86400 * weeks, n), unit="s")
    country = rng.choice(COUNTRIES, n, p=[0.5, 0.3, 0.2])
    device = rng.choice(DEVICES, n)
    amount = rng.gamma(2.0, 10.0, n) + (ts >= WEEK_START) * 5.0
    frames = [
        pd.DataFrame(
            {
                "prediction_id": ids,
                "ts": ts,
                "model_version": version,
                "output": values,
                "country": country,
                "device": device,
                "amount": amount,
            }
        )
        for version, values in output.items()
    ]
    labeled = rng.random(n) >= 0.1
    labels = pd.DataFrame(
        {
            "prediction_id": ids[labeled],
            "label": y[labeled],
            "labeled_at": (ts + pd.to_timedelta(rng.uniform(0, 3, n), unit="D"))[labeled],
        }
    )
    return pd.concat(frames, ignore_index=True), labels


def binary_window(rng: np.random.Generator, n: int, grid: int = 40):
    """Scores on a grid of ``grid`` values, each (k + 0.5) / grid: every score is its own
    fine bin (at most ``score_bins`` distinct scores) and lies on no calibration or histogram
    edge."""
    y = (rng.random(n) < 0.3).astype(int)
    output = {}
    for i, version in enumerate(["v1", "v2"]):
        latent = (0.8 + 0.5 * i) * (2 * y - 1) + rng.normal(0, 1.2, n)
        cell = np.clip(np.floor(1 / (1 + np.exp(-latent)) * grid), 0, grid - 1)
        output[version] = (cell + 0.5) / grid
    return window(rng, n, output, y)


def binary_spec(url: str, **overrides) -> dict:
    settings = {"slices": ["country", ["country", "device"]], **overrides}
    return base_spec(url, predictions={"table": "inference_logs", "score": "output"}, **settings)


def labeled_rows(predictions: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    rows = evaluated_rows(predictions, labels)
    return rows[rows["label"].notna()]


def lines(curves: pd.DataFrame, curve: str):
    """Each line of ``curve`` in point order: ((slice, version, facet, series), rows)."""
    part = curves[curves["curve"] == curve].sort_values("point")
    yield from part.groupby(["slice", "model_version", "facet", "series"], sort=True)


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("binary") / "w.duckdb"
    predictions, labels = binary_window(np.random.default_rng(3), 4000)
    url = write_warehouse(path, predictions, labels)
    evaluation = evaluate(parse_spec(binary_spec(url)), WEEK)
    return evaluation, labeled_rows(predictions, labels), path


def test_roc_and_pr_points_are_scikit_learns(binary_run):
    evaluation, rows, _ = binary_run
    curves = evaluation.curves
    assert list(curves.columns) == CURVE_COLUMNS
    checked = 0
    for (slice_name, version, _, _), roc in lines(curves, "roc"):
        part = slice_rows(rows[rows["model_version"] == version], slice_name)
        y, score = part["label"].to_numpy(int), part["output"].to_numpy(float)
        fpr, tpr, thresholds = skm.roc_curve(y, score, drop_intermediate=False)
        np.testing.assert_allclose(roc["x"], fpr, atol=1e-12)
        np.testing.assert_allclose(roc["y"], tpr, atol=1e-12)
        assert np.isinf(roc["threshold"].iloc[0])
        np.testing.assert_allclose(roc["threshold"].iloc[1:], thresholds[1:], atol=1e-9)
        # n: rows predicted positive at each threshold
        expected_n = [(score >= t).sum() for t in thresholds[1:]]
        np.testing.assert_array_equal(roc["n"].iloc[1:], expected_n)

        precision, recall, pr_thresholds = skm.precision_recall_curve(
            y, score, drop_intermediate=False
        )
        pr = curves[
            (curves["curve"] == "pr")
            & (curves["slice"] == slice_name)
            & (curves["model_version"] == version)
        ].sort_values("point")
        np.testing.assert_allclose(pr["x"], recall[::-1], atol=1e-12)
        np.testing.assert_allclose(pr["y"], precision[::-1], atol=1e-12)
        np.testing.assert_allclose(pr["threshold"].iloc[1:], pr_thresholds[::-1], atol=1e-9)
        checked += 1
    # overall, 3 countries and 9 country x device crosses, two versions each
    assert checked == 2 * (1 + 3 + 9)


def test_roc_points_on_continuous_scores_are_points_of_scikit_learns_curve(tmp_path):
    rng = np.random.default_rng(8)
    n = 6000
    y = (rng.random(n) < 0.3).astype(int)
    score = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(0, 1.2, n))))
    predictions, labels = window(rng, n, {"v1": score}, y)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = binary_spec(url, slices=["device"], compare=None)
    curves = evaluate(parse_spec(spec), WEEK).curves
    rows = labeled_rows(predictions, labels)
    for (slice_name, _, _, _), roc in lines(curves, "roc"):
        part = slice_rows(rows, slice_name)
        fpr, tpr, _ = skm.roc_curve(part["label"], part["output"], drop_intermediate=False)
        assert 150 < len(roc) <= 201  # at most 200 runs of fine bins, plus (0, 0)
        distance = np.abs(roc["x"].to_numpy()[:, None] - fpr) + np.abs(
            roc["y"].to_numpy()[:, None] - tpr
        )
        assert distance.min(axis=1).max() < 1e-12  # every point is one of scikit-learn's


def test_reliability_bins_and_score_histograms_are_numpys(binary_run):
    evaluation, rows, _ = binary_run
    curves = evaluation.curves
    edges = np.linspace(0, 1, 51)
    for (slice_name, version, _, _), bins in lines(curves, "reliability"):
        part = slice_rows(rows[rows["model_version"] == version], slice_name)
        score, y = part["output"].to_numpy(float), part["label"].to_numpy(float)
        grouped = (
            pd.DataFrame({"bin": np.clip(np.floor(score * 10), 0, 9), "score": score, "y": y})
            .groupby("bin")
            .agg(x=("score", "mean"), y=("y", "mean"), n=("y", "size"))
        )
        np.testing.assert_allclose(bins["x_low"], grouped.index / 10, atol=1e-12)
        np.testing.assert_allclose(bins["x"], grouped["x"], atol=1e-9)
        np.testing.assert_allclose(bins["y"], grouped["y"], atol=1e-12)
        np.testing.assert_array_equal(bins["n"], grouped["n"])
        for label in (0, 1):
            histogram = curves[
                (curves["curve"] == "score_histogram")
                & (curves["slice"] == slice_name)
                & (curves["model_version"] == version)
                & (curves["series"] == str(label))
            ].sort_values("point")
            counts, _ = np.histogram(score[y == label], bins=edges)
            np.testing.assert_array_equal(histogram["n"], counts)
            np.testing.assert_allclose(histogram["x_low"], edges[:-1], atol=1e-12)
            np.testing.assert_allclose(histogram["y"], counts / counts.sum(), atol=1e-12)


def test_the_table_is_bounded_by_bins_not_rows(tmp_path):
    sizes = []
    for n in (3000, 12000):
        predictions, labels = binary_window(np.random.default_rng(n), n, grid=20)
        url = write_warehouse(tmp_path / f"w{n}.duckdb", predictions, labels)
        spec = binary_spec(url, slices=["device"], drift={"features": ["amount", "country"]})
        curves = evaluate(parse_spec(spec), WEEK).curves
        sizes.append(curves.groupby("curve").size().to_dict())
    assert sizes[0] == sizes[1]
    assert set(sizes[0]) == {"roc", "pr", "reliability", "score_histogram", "drift_histogram"}


def test_curves_parquet_is_written_beside_the_metrics(binary_run, tmp_path):
    evaluation, _, _ = binary_run
    out = write_artifacts(evaluation, evaluation.decide(), tmp_path / "run")
    written = pd.read_parquet(out / "curves.parquet")
    assert list(written.columns) == CURVE_COLUMNS
    assert len(written) == len(evaluation.curves) > 0


def test_drift_histograms_are_numpys(tmp_path):
    rng = np.random.default_rng(5)
    n = 6000
    y = (rng.random(n) < 0.3).astype(int)
    predictions, labels = window(rng, n, {"v1": rng.random(n)}, y, weeks=3)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = base_spec(
        url,
        predictions={"table": "inference_logs", "score": "output"},
        slices=[],
        compare=None,
        drift={"features": ["amount", "country"], "include_score": False, "reference_weeks": 2},
    )
    curves = evaluate(parse_spec(spec), WEEK).curves
    drift = curves[curves["curve"] == "drift_histogram"]
    assert set(drift["facet"]) == {"amount", "country", "label"}
    start = WEEK_START - pd.Timedelta(days=14)
    period = np.where(predictions["ts"] >= WEEK_START, "current", "reference")
    period = np.where(predictions["ts"] < start, "", period)
    amount = predictions["amount"].to_numpy()
    edges = np.linspace(amount[period != ""].min(), amount[period != ""].max(), 51)
    for name in ("reference", "current"):
        bins = drift[(drift["facet"] == "amount") & (drift["series"] == name)]
        bins = bins.sort_values("point")
        counts, _ = np.histogram(amount[period == name], bins=edges)
        np.testing.assert_array_equal(bins["n"], counts)
        np.testing.assert_allclose(bins["x_low"], edges[:-1], rtol=1e-12)
        np.testing.assert_allclose(bins["x_high"], edges[1:], rtol=1e-12)
        np.testing.assert_allclose(bins["y"].sum(), 1.0)
        values = drift[(drift["facet"] == "country") & (drift["series"] == name)]
        expected = pd.Series(predictions["country"][period == name]).value_counts()
        assert dict(zip(values["x_label"], values["n"], strict=True)) == expected.to_dict()


def regression_window(rng: np.random.Generator, n: int):
    y = np.round(rng.gamma(2.0, 20.0, n), 1)
    output = {
        version: y + rng.normal(1.0 - 0.5 * i, 8.0 - 3.0 * i, n)
        for i, version in enumerate(["v1", "v2"])
    }
    return window(rng, n, output, y)


def regression_spec(url: str) -> dict:
    return base_spec(
        url,
        task="regression",
        predictions={"table": "inference_logs", "prediction": "output"},
        slices=["country", ["country", "device"]],
    )


def check_regression_curves(curves: pd.DataFrame, rows: pd.DataFrame) -> int:
    error_all = (rows["output"] - rows["label"]).to_numpy()
    edges = np.linspace(error_all.min(), error_all.max(), 31)
    pred_all = rows["output"].to_numpy()
    pred_edges = np.linspace(pred_all.min(), pred_all.max(), 31)
    checked = 0
    for (slice_name, version, _, _), bins in lines(curves, "residual_histogram"):
        part = slice_rows(rows[rows["model_version"] == version], slice_name)
        error = (part["output"] - part["label"]).to_numpy()
        counts, _ = np.histogram(error, bins=edges)
        np.testing.assert_array_equal(bins["n"], counts)
        np.testing.assert_allclose(bins["x_low"], edges[:-1], rtol=1e-12, atol=1e-12)
        fitted = curves[
            (curves["curve"] == "predicted_vs_actual")
            & (curves["slice"] == slice_name)
            & (curves["model_version"] == version)
        ].sort_values("point")
        position = np.clip(np.searchsorted(pred_edges, part["output"], side="right") - 1, 0, 29)
        grouped = (
            pd.DataFrame({"bin": position, "p": part["output"], "y": part["label"]})
            .groupby("bin")
            .agg(x=("p", "mean"), y=("y", "mean"), n=("y", "size"))
        )
        np.testing.assert_allclose(fitted["x_low"], pred_edges[grouped.index], rtol=1e-12)
        np.testing.assert_allclose(fitted["x"], grouped["x"], rtol=1e-9)
        np.testing.assert_allclose(fitted["y"], grouped["y"], rtol=1e-9)
        np.testing.assert_array_equal(fitted["n"], grouped["n"])
        checked += 1
    return checked


def test_regression_residual_histogram_and_predicted_vs_actual_are_numpys(tmp_path):
    predictions, labels = regression_window(np.random.default_rng(11), 3000)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    curves = evaluate(parse_spec(regression_spec(url)), WEEK).curves
    assert set(curves["curve"]) == {"residual_histogram", "predicted_vs_actual"}
    assert check_regression_curves(curves, labeled_rows(predictions, labels)) == 2 * (1 + 3 + 9)


def ranking_window(rng: np.random.Generator, lists: int):
    sizes = rng.integers(1, 15, lists)
    list_of = np.repeat(np.arange(lists), sizes)
    n = len(list_of)
    position = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    ids = list_of * 100 + position
    relevance = np.where(rng.random(n) < 0.6, 0, rng.integers(1, 4, n))
    ts = WEEK_START + pd.to_timedelta(rng.integers(0, 7 * 86400, lists)[list_of], unit="s")
    device = rng.choice(list(DEVICES), lists)[list_of]
    frames = [
        pd.DataFrame(
            {
                "prediction_id": ids,
                "list_id": np.char.add("q", list_of.astype(str)),
                "ts": ts,
                "model_version": version,
                "score": np.round((0.3 + 0.3 * i) * relevance + rng.normal(0, 1, n), 1),
                "device": device,
            }
        )
        for i, version in enumerate(["v1", "v2"])
    ]
    labeled = rng.random(n) >= 0.15
    labels = pd.DataFrame(
        {
            "prediction_id": ids[labeled],
            "label": relevance[labeled],
            "labeled_at": (ts + pd.to_timedelta(rng.uniform(0, 17, n), unit="D"))[labeled],
        }
    )
    return pd.concat(frames, ignore_index=True), labels


def at_k(gain: np.ndarray, k: int) -> dict[str, float]:
    """One list's metrics at ``k``, ``gain`` in served order, by the documented definitions."""
    relevant = gain > 0
    positions = np.arange(1, len(gain) + 1)
    discount = 1 / np.log2(positions + 1)
    ideal = np.sort(gain)[::-1]
    top = positions <= k
    return {
        "ndcg": (gain * discount)[top].sum() / (ideal * discount)[top].sum(),
        "map": (np.cumsum(relevant) / positions)[top & relevant].sum() / min(k, relevant.sum()),
        "recall": relevant[top].sum() / relevant.sum(),
        "hit_rate": float(relevant[top].any()),
    }


def test_ranking_metric_at_every_k_is_the_per_list_mean(tmp_path):
    predictions, labels = ranking_window(np.random.default_rng(2), 400)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = base_spec(
        url,
        task="ranking",
        predictions={"table": "inference_logs", "list_id": "list_id"},
        slices=["device"],
        ranking={"k": [3, 8]},
        min_label_coverage=0.0,
    )
    curves = evaluate(parse_spec(spec), WEEK).curves
    rows = evaluated_rows(predictions, labels)
    per_list = []
    for (version, _), items in rows.groupby(["model_version", "list_id"]):
        items = items.sort_values(["score", "prediction_id"], ascending=[False, True])
        gain = items["label"].fillna(0).to_numpy(float)
        if (gain > 0).any():
            for k in range(1, 9):
                entry = {"model_version": version, "device": items["device"].iloc[0], "k": k}
                per_list.append(entry | at_k(gain, k))
    oracle = pd.DataFrame(per_list)
    checked = 0
    for (slice_name, version, _, metric), line in lines(curves, "metric_at_k"):
        part = slice_rows(oracle[oracle["model_version"] == version], slice_name)
        expected = part.groupby("k")[metric].agg(["mean", "size"])
        np.testing.assert_array_equal(line["x"], np.arange(1, 9))
        np.testing.assert_allclose(line["y"], expected["mean"], rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(line["n"], expected["size"])
        checked += 1
    assert checked == 2 * (1 + 3) * 4


def test_multiclass_one_vs_rest_roc_is_scikit_learns(tmp_path):
    rng = np.random.default_rng(4)
    n, classes = 3000, ["a", "b", "c"]
    y = rng.integers(0, 3, n)
    raw = rng.dirichlet([1, 1, 1], n) + np.eye(3)[y] * 0.8
    probability = np.round(raw / raw.sum(1, keepdims=True) * 100) / 100 + 0.005  # bin centres
    ids = np.array([f"r{i:07d}" for i in range(n)])
    ts = WEEK_START + pd.to_timedelta(rng.integers(0, 7 * 86400, n), unit="s")
    predictions = pd.DataFrame(
        {
            "prediction_id": ids,
            "ts": ts,
            "model_version": "v1",
            "predicted": np.array(classes)[probability.argmax(1)],
            **{f"p_{c}": probability[:, i] for i, c in enumerate(classes)},
        }
    )
    labels = pd.DataFrame(
        {
            "prediction_id": ids,
            "label": np.array(classes)[y],
            "labeled_at": ts + pd.Timedelta(1, "D"),
        }
    )
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = base_spec(
        url,
        task="multiclass_classification",
        classes=classes,
        predictions={
            "table": "inference_logs",
            "prediction": "predicted",
            "class_scores": {c: f"p_{c}" for c in classes},
        },
        slices=[],
        compare=None,
        score_bins=100,
    )
    curves = evaluate(parse_spec(spec), WEEK).curves
    for (_, _, _, name), roc in lines(curves, "roc_ovr"):
        c = classes.index(name)
        fpr, tpr, _ = skm.roc_curve(y == c, probability[:, c], drop_intermediate=False)
        np.testing.assert_allclose(roc["x"], fpr, atol=1e-12)
        np.testing.assert_allclose(roc["y"], tpr, atol=1e-12)
    assert set(curves.loc[curves["curve"] == "roc_ovr", "series"]) == set(classes)

    # 1000 fine bins: at most 100 points a line, each exact at its threshold
    spec["score_bins"] = 1000
    curves = evaluate(parse_spec(spec), WEEK).curves
    for (_, _, _, name), roc in lines(curves, "roc_ovr"):
        assert len(roc) <= 101
        score, positive = probability[:, classes.index(name)], y == classes.index(name)
        threshold = roc["threshold"].to_numpy()[1:]
        above = score[None, :] >= threshold[:, None]
        np.testing.assert_allclose(roc["y"].iloc[1:], above[:, positive].mean(1), atol=1e-12)
        np.testing.assert_allclose(roc["x"].iloc[1:], above[:, ~positive].mean(1), atol=1e-12)


@pytest.mark.postgres
def test_postgresql_gives_duckdbs_curves(tmp_path, postgres_url):
    path = tmp_path / "w.duckdb"
    predictions, labels = regression_window(np.random.default_rng(12), 2000)
    write_warehouse(path, predictions, labels)
    duck = evaluate(parse_spec(regression_spec(f"duckdb:///{path}")), WEEK).curves
    copy_duckdb_tables(path, postgres_url, ["inference_logs", "labels"], replace=True)
    pg = evaluate(parse_spec(regression_spec(postgres_url)), WEEK).curves
    pd.testing.assert_frame_equal(pg, duck, rtol=1e-12)
    assert check_regression_curves(pg, labeled_rows(predictions, labels)) == 2 * (1 + 3 + 9)
