"""``severity: warn`` gates: a failed warn gate ships with guardrails, never holds."""

import json

import pandas as pd
import pytest

from eval_pipelines.alerts import build_alert
from eval_pipelines.cli import main
from eval_pipelines.errors import SpecError
from eval_pipelines.gates import decide
from eval_pipelines.spec import parse_spec

COVERAGE = pd.DataFrame(
    [
        {"model_version": v, "slice": "overall", "rows": 1000, "labeled": 900, "coverage": 0.9}
        for v in ("v1", "v2")
    ]
)
NO_DRIFT = pd.DataFrame(
    columns=["feature", "method", "statistic", "p_value", "n_reference", "n_current"]
)


def spec(gates):
    return parse_spec(
        {
            "model": "m",
            "warehouse": "duckdb:///:memory:",
            "predictions": {"table": "p"},
            "labels": {"table": "l"},
            "compare": {"baseline": "v1", "candidate": "v2"},
            "slices": ["country"],
            "gates": gates,
        }
    )


def metrics(values: dict[str, float]) -> pd.DataFrame:
    """Overall metrics of the candidate v2, every one with enough data."""
    return pd.DataFrame(
        [
            {
                "model_version": "v2",
                "slice": "overall",
                "metric": metric,
                "value": value,
                "ci_low": value - 0.01,
                "ci_high": value + 0.01,
                "n": 900,
                "n_positive": 100,
                "status": "ok",
                "error_bound": 0.0,
            }
            for metric, value in values.items()
        ]
    )


RECALL_WARN = {"metric": "recall", "min": 0.8, "severity": "warn"}


def decide_on(gates: list[dict], values: dict[str, float]):
    """The verdict of ``gates`` on all-traffic candidate metrics ``values``, no comparison,
    no drift, full label coverage."""
    return decide(spec(gates), metrics(values), None, NO_DRIFT, COVERAGE)


AUC_BLOCK = {"metric": "roc_auc", "min": 0.85}


def test_a_failed_warn_gate_ships_with_the_guardrail_listed():
    verdict = decide_on([AUC_BLOCK, RECALL_WARN], {"roc_auc": 0.9, "recall": 0.7})
    assert verdict.decision == "ship_with_guardrails"
    guardrails = verdict.to_dict()["guardrails"]
    assert len(guardrails) == 1
    assert guardrails[0]["gate"] == "{metric=recall, min=0.8, severity=warn}"
    assert "recall on overall of v2 = 0.7000 is below the minimum 0.8" in guardrails[0]["message"]
    # Block gates keep the names they had before severities existed.
    assert "{metric=roc_auc, min=0.85}" in {r.gate for r in verdict.reasons}


def test_a_failed_warn_gate_beside_a_failed_block_gate_holds():
    verdict = decide_on([AUC_BLOCK, RECALL_WARN], {"roc_auc": 0.8, "recall": 0.7})
    assert verdict.decision == "hold"
    assert [r["gate"] for r in verdict.to_dict()["guardrails"]] == [
        "{metric=recall, min=0.8, severity=warn}"
    ]
    assert [r.gate for r in verdict.blocking] == ["{metric=roc_auc, min=0.85}"]


def test_passing_warn_gates_ship():
    verdict = decide_on([AUC_BLOCK, RECALL_WARN], {"roc_auc": 0.9, "recall": 0.9})
    assert verdict.decision == "ship" and verdict.to_dict()["guardrails"] == []


def test_a_missing_metric_holds_on_a_block_gate_and_is_a_guardrail_on_a_warn_gate():
    named = {"metric": "recall", "slice": "country=FR", "min": 0.8}
    only_auc = metrics({"roc_auc": 0.9})
    blocked = decide(spec([AUC_BLOCK, named]), only_auc, None, NO_DRIFT, COVERAGE)
    assert blocked.decision == "hold"
    warned = decide(
        spec([AUC_BLOCK, {**named, "severity": "warn"}]), only_auc, None, NO_DRIFT, COVERAGE
    )
    assert warned.decision == "ship_with_guardrails"
    assert "no labeled data in this window" in warned.guardrails[0].message


def test_low_label_coverage_stays_inconclusive_beside_a_failed_warn_gate():
    sparse = COVERAGE.assign(labeled=100)
    verdict = decide(spec([RECALL_WARN]), metrics({"recall": 0.7}), None, NO_DRIFT, sparse)
    assert verdict.decision == "inconclusive"


def test_an_unknown_severity_is_a_spec_error_naming_the_key():
    with pytest.raises(SpecError, match=r"gates\.1\.severity") as error:
        spec([AUC_BLOCK, {**RECALL_WARN, "severity": "warning"}])
    assert "'block'" in str(error.value) and "'warn'" in str(error.value)


def test_gate_exits_5_on_ship_with_guardrails_and_prints_the_guardrail(tmp_path, capsys):
    verdict = decide_on([AUC_BLOCK, RECALL_WARN], {"roc_auc": 0.9, "recall": 0.7})
    (tmp_path / "verdict.json").write_text(json.dumps(verdict.to_dict()))
    assert main(["gate", str(tmp_path)]) == 5
    out = capsys.readouterr().out
    assert "verdict: SHIP_WITH_GUARDRAILS" in out
    assert "WARN  {metric=recall, min=0.8, severity=warn}" in out


def test_the_alert_lists_the_guardrails():
    verdict = decide_on([AUC_BLOCK, RECALL_WARN], {"roc_auc": 0.9, "recall": 0.7})
    payload = build_alert(verdict.to_dict(), None, NO_DRIFT)
    assert payload is not None
    text = json.dumps(payload)
    assert "Guardrails (1)" in text and "below the minimum 0.8" in text
