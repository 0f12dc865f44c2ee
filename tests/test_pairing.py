"""Paired comparisons: McNemar counts come from requests both versions scored."""

import numpy as np
from scipy import stats
from support.data import WEEK, base_spec, evaluated_rows, random_window, write_warehouse

from eval_pipelines.pipeline import evaluate
from eval_pipelines.report import render_markdown
from eval_pipelines.spec import parse_spec


def test_mcnemar_p_value_matches_an_independent_count(tmp_path):
    rng = np.random.default_rng(11)
    predictions, labels = random_window(rng, 3000)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    result = evaluate(parse_spec(base_spec(url)), WEEK)
    rows = evaluated_rows(predictions, labels).dropna(subset=["label"])
    wide = rows.pivot(index="prediction_id", columns="model_version", values="score")
    y = rows.drop_duplicates("prediction_id").set_index("prediction_id")["label"].loc[wide.index]
    right_1 = (wide["v1"] >= 0.5) == (y == 1)
    right_2 = (wide["v2"] >= 0.5) == (y == 1)
    b, c = int((right_1 & ~right_2).sum()), int((~right_1 & right_2).sum())
    expected = stats.binomtest(b, b + c, 0.5).pvalue
    row = result.comparison.set_index(["slice", "metric"]).loc[("overall", "accuracy")]
    assert row["test"] == "McNemar exact"
    assert row["p_value"] == expected
    check = {r.name: r for r in result.validation.results}["versions_paired"]
    assert check.passed


def test_partly_unpaired_versions_are_flagged_not_blocked(tmp_path):
    rng = np.random.default_rng(12)
    predictions, labels = random_window(rng, 2000)
    drop = (predictions["model_version"] == "v2") & (rng.random(len(predictions)) < 0.3)
    url = write_warehouse(tmp_path / "w.duckdb", predictions[~drop], labels)
    spec = parse_spec(base_spec(url))
    result = evaluate(spec, WEEK)
    check = {r.name: r for r in result.validation.results}["versions_paired"]
    assert not check.passed and not check.blocking
    assert "deltas are partly unpaired" in check.message
    verdict = result.decide()
    assert "Warning" in render_markdown(result, verdict)


def test_versions_that_scored_no_common_request_are_not_tested_on_pairs(tmp_path):
    # Each version scored its own half of the requests: no request was scored by both.
    rng = np.random.default_rng(13)
    predictions, labels = random_window(rng, 2000)
    number = predictions["prediction_id"].str[1:].astype(int)
    own_half = np.where(predictions["model_version"] == "v1", number % 2 == 0, number % 2 == 1)
    url = write_warehouse(tmp_path / "w.duckdb", predictions[own_half], labels)
    gates = [
        {"metric": "roc_auc", "slice": "overall", "max_regression": 0.01},
        {"metric": "recall", "slice": "overall", "max_regression": 0.5},
    ]
    result = evaluate(parse_spec(base_spec(url, gates=gates)), WEEK)
    rows = evaluated_rows(predictions[own_half], labels).dropna(subset=["label"])
    labeled = rows.groupby("model_version").size()
    comparison = result.comparison.set_index(["slice", "metric"])
    # Tests on paired requests (McNemar, joint cells) count the requests both versions scored.
    for metric in ("accuracy", "roc_auc", "pr_auc", "ece"):
        row = comparison.loc[("overall", metric)]
        assert (row["n"], row["outcome"]) == (0, "not tested"), metric
        assert row["test"] == "not tested (slice too small)"
    # The bucket bootstrap compares each version's own labeled rows.
    assert comparison.loc[("overall", "recall"), "n"] == labeled.min()
    verdict = result.decide()
    assert verdict.decision == "hold"
    [held] = verdict.blocking
    assert held.gate.startswith("{metric=roc_auc")
    assert "no labeled rows to compare in this window" in held.message
