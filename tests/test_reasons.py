"""Reasons a human can read: one cause is one line per gate (worst case, then "and N more"),
everywhere people read the verdict, while verdict.json keeps every reason."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from eval_pipelines import cli
from eval_pipelines.alerts import build_alert
from eval_pipelines.gates import decide
from eval_pipelines.reasons import group_reasons
from tests.support.data import WEEK, base_spec, random_window, write_warehouse
from tests.test_gates import AUC_OK, COVERAGE, NO_DRIFT, metrics, spec

COUNTRIES = ("US", "GB", "DE", "BR")


def test_a_min_gate_on_every_slice_is_one_line_per_outcome_with_the_worst_first():
    rows = [
        {"model_version": "v2", "slice": f"s{i:02d}", "metric": "recall", "value": v}
        for i, v in enumerate([0.9, 0.91, 0.55, 0.92, 0.4, 0.93, 0.7, 0.95])
    ]
    verdict = decide(
        spec([{"metric": "recall", "min": 0.8}], slices=[]),
        metrics(rows),
        None,
        NO_DRIFT,
        COVERAGE,
    )
    gate = [g for g in group_reasons(verdict.reasons) if g.gate.startswith("{metric=recall")]
    assert [(g.outcome, g.count) for g in gate] == [("hold", 3), ("pass", 5)]
    hold, passed = gate
    # The worst hold is the furthest below the minimum (0.4 on s04), the others named.
    assert hold.message.startswith("recall on s04 of v2 = 0.4000 is below the minimum 0.8")
    assert hold.message.endswith("; and 2 more slices: 's02', 's06'")
    # The pass shown is the one closest to the bound (0.9 on s00).
    assert passed.message.startswith("recall on s00 of v2 = 0.9000 is within bounds")
    assert "and 4 more slices" in passed.message
    # Nothing is lost: the verdict itself still has a reason per slice.
    assert len([r for r in verdict.reasons if r.gate == hold.gate]) == 8


def test_groups_are_ordered_hold_then_inconclusive_then_pass_and_keep_gate_order():
    reasons = [
        {"gate": "a", "outcome": "pass", "message": "a ok"},
        {"gate": "b", "outcome": "inconclusive", "message": "b small", "slice": "x"},
        {"gate": "c", "outcome": "hold", "message": "c bad", "feature": "f1"},
        {"gate": "c", "outcome": "hold", "message": "c worse", "feature": "f2", "severity": 2},
        {"gate": "d", "outcome": "hold", "message": "d bad"},
    ]
    groups = group_reasons(reasons)
    assert [(g.gate, g.outcome) for g in groups] == [
        ("c", "hold"),
        ("d", "hold"),
        ("b", "inconclusive"),
        ("a", "pass"),
    ]
    assert groups[0].message == "c worse; and 1 more feature: 'f1'"
    assert [g.message for g in groups[1:]] == ["d bad", "b small", "a ok"]


def test_a_long_list_names_five_others_and_counts_the_rest():
    reasons = [
        {"gate": "g", "outcome": "hold", "message": f"m{i}", "slice": f"s{i}"} for i in range(9)
    ]
    (group,) = group_reasons(reasons)
    assert group.message == "m0; and 8 more slices: 's1', 's2', 's3', 's4', 's5', …"


@pytest.fixture(scope="module")
def android_regression(tmp_path_factory):
    """A candidate that is worse on android only: one cause, several slices."""
    folder = tmp_path_factory.mktemp("android")
    rng = np.random.default_rng(7)
    predictions, labels = random_window(rng, 6000, countries=COUNTRIES)
    android = (predictions["model_version"] == "v2") & (predictions["device"] == "android")
    predictions.loc[android, "score"] = rng.uniform(0, 1, int(android.sum()))
    url = write_warehouse(folder / "w.duckdb", predictions, labels)
    raw = base_spec(
        url,
        gates=[
            {"metric": "recall", "max_regression": 0.02},
            {"metric": "roc_auc", "min": 0.65},
        ],
        confidence={"replicates": 200, "seed": 3},
    )
    spec_path = folder / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(raw))
    out = folder / "out"
    code = cli.main(["run", "--spec", str(spec_path), "--week", WEEK, "--out", str(out)])
    return {"code": code, "out": out}


def test_one_cause_is_one_line_per_gate_in_the_report_and_the_cli(android_regression, capsys):
    out = android_regression["out"]
    assert android_regression["code"] == 0
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["decision"] == "hold"
    held = [r for r in verdict["reasons"] if r["outcome"] == "hold"]
    android_slices = {"device=android"} | {f"country={c}, device=android" for c in COUNTRIES}
    # verdict.json keeps one reason per failing slice, and only android slices fail
    assert {r["slice"] for r in held} <= android_slices
    assert len(held) > 2

    report = (out / "report.md").read_text()
    why = report.split("## Why")[1].split("\n## ")[0]
    bullets = [line for line in why.splitlines() if line.startswith("- ")]
    assert len(bullets) == len({r["gate"] for r in held})
    for bullet in bullets:
        gate = bullet.split("(", 1)[1].split("):", 1)[0]
        extra = sum(r["gate"] == gate for r in held) - 1
        if extra:
            assert f"and {extra} more slice" in bullet
    assert f"Every one of the {len(verdict['reasons'])} gate results is listed" in report

    capsys.readouterr()
    assert cli.main(["gate", str(out)]) == 1
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  HOLD")]
    assert len(printed) == len(bullets)


def test_the_alert_has_one_bullet_per_holding_gate(android_regression):
    out = android_regression["out"]
    verdict = json.loads((out / "verdict.json").read_text())
    comparison = pd.read_parquet(out / "comparison.parquet")
    payload = build_alert(verdict, comparison, None)
    section = next(b for b in payload["blocks"] if "Holding reasons" in b["text"]["text"])
    bullets = [line for line in section["text"]["text"].splitlines() if line.startswith("•")]
    held = [r for r in verdict["reasons"] if r["outcome"] == "hold"]
    assert len(bullets) == len({r["gate"] for r in held}) < len(held)


def test_a_drift_gate_shows_the_feature_furthest_past_or_closest_to_its_bound():
    drift = pd.DataFrame(
        [
            {"feature": f, "method": "psi", "statistic": v, "p_value": float("nan")}
            | {"n_reference": 900, "n_current": 300, "default": True, "drifted": v >= 0.1}
            for f, v in [("amount", 0.02), ("age", 0.3), ("country", 0.08), ("score", 0.5)]
        ]
    )
    verdict = decide(spec([{"drift": "psi", "max": 0.1}]), AUC_OK, None, drift, COVERAGE)
    hold, passed = [g for g in group_reasons(verdict.reasons) if g.gate.startswith("{drift")]
    assert hold.message.startswith("score drifted") and hold.message.endswith("'age'")
    assert passed.message.startswith("country stable") and passed.message.endswith("'amount'")
