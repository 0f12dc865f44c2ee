"""The metric catalogue (`eval-pipelines metrics`, docs/metrics.md), read as a user would.

Every metric a spec may name must be listed with its formula and reference; the defaults it
states must be what a spec without a ``metrics`` list evaluates (checked through the spec
parser, not through the catalogue's own code); docs/metrics.md must be the command's output.
"""

import json
import re
from pathlib import Path

import pytest

from eval_pipelines.catalogue import FORMATS, REGENERATE, catalogue, render
from eval_pipelines.cli import EXIT_USAGE, build_parser, main
from eval_pipelines.estimation import ESTIMABLE
from eval_pipelines.spec import parse_spec
from eval_pipelines.tasks import TASKS

DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
BASE = {"model": "m", "predictions": {"table": "p"}, "labels": {"table": "l"}}
# A concrete name for each placeholder of a parametric name.
PLACEHOLDER_VALUES = {"<k>": "5", "<class>": "cat"}


def concrete(pattern: str) -> str:
    for placeholder, value in PLACEHOLDER_VALUES.items():
        pattern = pattern.replace(placeholder, value)
    return pattern


def as_regex(pattern: str) -> str:
    """``ndcg@<k>`` -> a regular expression matching ``ndcg@10``."""
    return re.sub(r"<\w+>", ".+", re.escape(pattern))


def test_every_registered_metric_of_every_task_is_listed_with_formula_and_reference():
    rows = {(entry.task, entry.metric): entry for entry in catalogue()}
    for task in TASKS.values():
        listed = {metric for (name, metric) in rows if name == task.name}
        for name in task.metrics:
            instance_of = [p for p in listed if re.fullmatch(as_regex(p), name)]
            assert name in listed or instance_of, (task.name, name)
        for pattern in task.patterns:
            assert pattern in listed, (task.name, pattern)
        for name in ESTIMABLE.get(task.name, ()):
            assert f"estimated_{name}" in listed, (task.name, name)
    for entry in rows.values():
        for field in ("title", "formula", "reference", "interval", "test"):
            value = getattr(entry, field)
            assert value.strip() and value.strip() != "-", (entry.task, entry.metric, field)
        assert entry.direction in ("higher is better", "lower is better", "closer to 0 is better")


def test_parametric_names_are_listed_in_their_pattern_form_and_resolve_when_filled_in():
    ranking = {e.metric: e for e in catalogue("ranking")}
    assert "ndcg@10" not in ranking  # the default cutoff is an instance of ndcg@<k>
    assert ranking["ndcg@<k>"].title == "NDCG@<k>"
    assert "<k>" in ranking["ndcg@<k>"].formula and "97" not in ranking["ndcg@<k>"].formula
    multiclass = {e.metric: e for e in catalogue("multiclass_classification")}
    assert multiclass["precision.<class>"].title == "Precision of class <class>"
    assert multiclass["top_<k>_accuracy"].title == "Top-<k> accuracy"
    for task in TASKS.values():
        for pattern in task.patterns:
            assert task.metric(concrete(pattern)).name == concrete(pattern)


def test_interval_and_test_follow_the_metric_family_and_paired_test():
    binary = {e.metric: e for e in catalogue("binary_classification")}
    assert "resample buckets" in binary["recall"].interval
    assert "histogram cells" in binary["roc_auc"].interval
    assert binary["accuracy"].test.startswith("McNemar exact")
    assert binary["log_loss"].direction == "lower is better"
    regression = {e.metric: e for e in catalogue("regression")}
    assert "independent" in regression["median_absolute_error"].interval
    assert regression["bias"].direction == "closer to 0 is better"


@pytest.mark.parametrize("task", ["binary_classification", "regression", "ranking"])
def test_the_metrics_marked_default_are_what_a_spec_without_a_metrics_list_evaluates(task):
    raw = {**BASE, "task": task}
    if task == "ranking":
        raw["predictions"] = {"table": "p", "list_id": "query_id"}
    if task == "regression":
        raw["predictions"] = {"table": "p", "prediction": "y_hat"}
    spec = parse_spec(raw)
    marked = [e for e in catalogue(task) if e.default.startswith("yes")]
    # "yes" on a metric; "yes: ndcg@10" on a pattern names the instances evaluated.
    named = []
    for entry in marked:
        instances = entry.default.partition(": ")[2]
        named += instances.split(", ") if instances else [entry.metric]
    assert sorted(named) == sorted(spec.metrics)


def test_metrics_that_read_another_input_say_which_and_are_evaluated_once_it_is_given():
    regression = {e.metric: e for e in catalogue("regression")}
    assert regression["interval_coverage"].requires == "predictions.interval"
    assert regression["interval_coverage"].default == "with predictions.interval"
    spec = parse_spec(
        {
            **BASE,
            "task": "regression",
            "predictions": {
                "table": "p",
                "prediction": "y_hat",
                "interval": {"lower": "lo", "upper": "hi"},
            },
        }
    )
    assert "interval_coverage" in spec.metrics and "interval_width" in spec.metrics
    multiclass = {e.metric: e for e in catalogue("multiclass_classification")}
    assert multiclass["log_loss"].requires == "predictions.class_scores"
    assert multiclass["estimated_macro_f1"].requires == "estimation, predictions.class_scores"


def test_the_cli_prints_the_catalogue_and_filters_by_task(capsys):
    assert main(["metrics"]) == 0
    everything = capsys.readouterr().out
    for task in TASKS:
        assert f"\n{task}\n" in f"\n{everything}"
    assert "roc_auc" in everything and "ndcg@<k>" in everything

    assert main(["metrics", "--task", "regression"]) == 0
    regression = capsys.readouterr().out
    assert regression.startswith("regression\n")
    assert "median_absolute_error" in regression
    assert "binary_classification" not in regression and "roc_auc" not in regression

    assert main(["metrics", "--task", "ranking", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["task"] for row in rows} == {"ranking"}
    assert {"mrr", "ndcg@<k>"} <= {row["metric"] for row in rows}


def test_the_cli_formats_are_the_catalogue_formats():
    metrics = build_parser()._subparsers._group_actions[0].choices["metrics"]
    (fmt,) = [action for action in metrics._actions if action.dest == "format"]
    assert tuple(fmt.choices) == FORMATS


def test_an_unknown_task_is_a_usage_error_naming_the_valid_tasks(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["metrics", "--task", "regresion"])
    assert exited.value.code == EXIT_USAGE
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "unknown task 'regresion'" in error and "did you mean 'regression'" in error
    assert error.endswith("tasks: " + ", ".join(TASKS))


def test_docs_metrics_md_is_the_generated_catalogue():
    assert DOCS.exists(), f"docs/metrics.md is missing; generate it with `{REGENERATE}`"
    assert DOCS.read_text() == render(fmt="markdown"), (
        f"docs/metrics.md is stale (the registry changed); regenerate it with `{REGENERATE}`"
    )
