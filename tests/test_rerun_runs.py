"""Re-running a week: the same spec updates the week's MLflow run, a changed spec starts a new one.

MLflow cannot change a run's params, so a re-run with changed gates used to show the old gates
beside the new results. Now the spec hash picks the run (eval_pipelines/tracking.py, "Spec
versions"): a changed hash creates a new run and tags the old one ``eval.superseded = true``
and ``eval.superseded_by = <new run id>``; lookups by run key find the new one.

Everything goes through ``runner.run_evaluation`` (what the CLI, the weekly assets and the
registry candidates call) on a real DuckDB warehouse, into a SQLite MLflow store under
``tmp_path`` read back with a fresh ``MlflowClient``.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from support.data import WEEK, base_spec, random_window, write_warehouse
from support.mlflow_store import migrated_store

from eval_pipelines.runner import Publishing, RunOutcome, run_evaluation
from eval_pipelines.spec import EvalSpec, parse_spec
from eval_pipelines.tracking import Tracker
from eval_pipelines.warehouse import Warehouse

MODEL = "test_model"
EXPERIMENT = f"eval-pipelines/{MODEL}"
RUN_KEY = f"{MODEL}/week/{WEEK}"
# The metric history's timestamps: the week's start in ms (one point however often published).
WEEK_MS = 1_794_787_200_000  # 2026-11-16T00:00:00Z
LENIENT = [{"metric": "roc_auc", "slice": "overall", "min": 0.6}]
STRICT = [{"metric": "roc_auc", "slice": "overall", "min": 0.99}]
# The gates as the flattened spec logs them (compact JSON, sorted keys).
LENIENT_PARAM = '[{"metric":"roc_auc","min":0.6,"slice":"overall"}]'
STRICT_PARAM = '[{"metric":"roc_auc","min":0.99,"slice":"overall"}]'


@pytest.fixture(scope="module")
def warehouse_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    # 4,000 requests scored by v1 and v2; v2's overall ROC AUC is 0.918, labels cover 62%.
    predictions, labels = random_window(np.random.default_rng(7), 4000)
    return write_warehouse(tmp_path_factory.mktemp("rerun") / "w.duckdb", predictions, labels)


def _spec(url: str, gates: list[dict]) -> EvalSpec:
    return parse_spec(base_spec(url, gates=gates, min_label_coverage=0.5))


def _tracker(tmp_path: Path) -> Tracker:
    return Tracker(
        migrated_store(tmp_path / "mlflow.db", exist_ok=True),
        artifact_location=str(tmp_path / "mlartifacts"),
    )


def _run(spec: EvalSpec, tracker: Tracker, out: Path, log=lambda message: None) -> RunOutcome:
    with Warehouse(spec.warehouse) as connection:
        return run_evaluation(
            spec,
            WEEK,
            connection,
            out,
            Publishing(tracker=tracker),
            run_key=RUN_KEY,
            run_name=f"{MODEL} week {WEEK}",
            tags={"eval.trigger": "test"},
            log=log,
        )


def _client(tmp_path: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")


def _week_runs(tmp_path: Path) -> dict:
    """Every run of the week's key, by run id (oldest first), read with a fresh client."""
    client = _client(tmp_path)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`eval.run_key` = '{RUN_KEY}'",
        order_by=["attributes.start_time ASC"],
    )
    return {run.info.run_id: run for run in runs}


def _history(tmp_path: Path, run_id: str) -> list[int]:
    return sorted(m.timestamp for m in _client(tmp_path).get_metric_history(run_id, "roc_auc/v2"))


def test_same_spec_twice_updates_one_run(warehouse_url, tmp_path):
    spec = _spec(warehouse_url, LENIENT)
    tracker = _tracker(tmp_path)
    first = _run(spec, tracker, tmp_path / "out")
    second = _run(spec, tracker, tmp_path / "out")

    assert second.mlflow_run == first.mlflow_run
    assert first.mlflow_run.superseded is None and second.mlflow_run.superseded is None
    [(run_id, run)] = _week_runs(tmp_path).items()
    assert run_id == first.mlflow_run.run_id
    tags = run.data.tags
    assert run.info.status == "FINISHED"
    assert tags["eval.publish_count"] == "2"
    assert tags["eval.spec_hash"] == spec.fingerprint()
    assert tags["eval.superseded"] == "false"
    assert "eval.superseded_by" not in tags and "eval.supersedes" not in tags
    assert "eval.param_conflicts" not in tags
    assert run.data.params["gates"] == LENIENT_PARAM
    assert _history(tmp_path, run_id) == [WEEK_MS]  # the same numbers: one point


def test_changed_gates_start_a_new_run_and_supersede_the_old(warehouse_url, tmp_path):
    lenient, strict = _spec(warehouse_url, LENIENT), _spec(warehouse_url, STRICT)
    assert lenient.fingerprint() != strict.fingerprint()
    tracker = _tracker(tmp_path)
    old = _run(lenient, tracker, tmp_path / "out")
    messages: list[str] = []
    new = _run(strict, tracker, tmp_path / "out", log=messages.append)

    old_id, new_id = old.mlflow_run.run_id, new.mlflow_run.run_id
    assert new_id != old_id
    assert new.mlflow_run.superseded == old_id
    assert messages[0] == (
        f"the spec changed since MLflow run {old_id} of {RUN_KEY!r}: new run {new_id} "
        "(the old run is tagged eval.superseded_by)"
    )
    runs = _week_runs(tmp_path)
    assert list(runs) == [old_id, new_id]

    # The old run keeps what the old spec decided, and points at its successor.
    before = runs[old_id]
    assert before.info.status == "FINISHED"
    assert before.data.tags["eval.superseded"] == "true"
    assert before.data.tags["eval.superseded_by"] == new_id
    assert before.data.tags["eval.spec_hash"] == lenient.fingerprint()
    assert before.data.tags["eval.decision"] == "ship"
    assert before.data.tags["eval.publish_count"] == "1"
    assert before.data.params["gates"] == LENIENT_PARAM

    # The new run: the new spec's params beside the new spec's results, no conflicts.
    after = runs[new_id]
    assert after.info.status == "FINISHED"
    assert after.data.tags["eval.superseded"] == "false"
    assert after.data.tags["eval.supersedes"] == old_id
    assert "eval.superseded_by" not in after.data.tags
    assert after.data.tags["eval.spec_hash"] == strict.fingerprint()
    assert after.data.tags["eval.decision"] == "hold"
    assert after.data.tags["eval.publish_count"] == "1"
    assert after.data.tags["eval.week"] == WEEK
    assert after.data.tags["eval.trigger"] == "test"
    assert "eval.param_conflicts" not in after.data.tags
    assert after.data.params["gates"] == STRICT_PARAM
    assert json.loads((new.folder / "verdict.json").read_text())["decision"] == "hold"
    assert _history(tmp_path, new_id) == [WEEK_MS]
    assert _history(tmp_path, old_id) == [WEEK_MS]
    assert {a.path for a in _client(tmp_path).list_artifacts(new_id)} >= {"verdict.json"}


def test_a_third_run_with_the_second_spec_reuses_the_second_run(warehouse_url, tmp_path):
    lenient, strict = _spec(warehouse_url, LENIENT), _spec(warehouse_url, STRICT)
    tracker = _tracker(tmp_path)
    old = _run(lenient, tracker, tmp_path / "out")
    new = _run(strict, tracker, tmp_path / "out")
    third = _run(strict, _tracker(tmp_path), tmp_path / "out")  # a fresh process, as it were

    old_id, new_id = old.mlflow_run.run_id, new.mlflow_run.run_id
    assert third.mlflow_run == new.mlflow_run
    assert third.mlflow_run.superseded is None
    runs = _week_runs(tmp_path)
    assert list(runs) == [old_id, new_id]
    assert runs[new_id].data.tags["eval.publish_count"] == "2"
    assert runs[new_id].data.tags["eval.superseded"] == "false"
    assert runs[new_id].data.tags["eval.supersedes"] == old_id
    assert runs[new_id].data.params["gates"] == STRICT_PARAM
    assert "eval.param_conflicts" not in runs[new_id].data.tags
    assert _history(tmp_path, new_id) == [WEEK_MS]
    assert runs[old_id].data.tags["eval.superseded_by"] == new_id
    assert runs[old_id].data.tags["eval.publish_count"] == "1"
    assert _history(tmp_path, old_id) == [WEEK_MS]


def test_lookups_by_run_key_find_the_current_run(warehouse_url, tmp_path):
    from assets.metadata import mlflow_link

    lenient, strict = _spec(warehouse_url, LENIENT), _spec(warehouse_url, STRICT)
    tracker = _tracker(tmp_path)
    old = _run(lenient, tracker, tmp_path / "out")
    assert tracker.find_run(RUN_KEY, model=MODEL) == old.mlflow_run
    new = _run(strict, tracker, tmp_path / "out")

    # The week's run, for a fresh tracker (a re-run, the CLI) and for the Dagster metadata.
    assert _tracker(tmp_path).find_run(RUN_KEY, model=MODEL) == new.mlflow_run
    assert mlflow_link(new)["mlflow_run_id"].value == new.mlflow_run.run_id

    # Going back to the first spec does not revive the superseded run: a third run.
    back = _run(lenient, tracker, tmp_path / "out")
    ids = [old.mlflow_run.run_id, new.mlflow_run.run_id, back.mlflow_run.run_id]
    assert len(set(ids)) == 3
    assert back.mlflow_run.superseded == ids[1]
    assert _tracker(tmp_path).find_run(RUN_KEY, model=MODEL) == back.mlflow_run
    runs = _week_runs(tmp_path)
    assert list(runs) == ids
    assert [runs[i].data.tags["eval.superseded"] for i in ids] == ["true", "true", "false"]
    assert [runs[i].data.tags.get("eval.superseded_by") for i in ids] == [ids[1], ids[2], None]
    assert [runs[i].data.tags["eval.decision"] for i in ids] == ["ship", "hold", "ship"]


def test_a_failure_while_superseding_still_leaves_the_new_run_current(
    warehouse_url, tmp_path, monkeypatch
):
    """The new run is created before the old one is tagged: if tagging fails, the newest
    non-superseded run (the new one) is still the one every lookup finds."""
    lenient, strict = _spec(warehouse_url, LENIENT), _spec(warehouse_url, STRICT)
    tracker = _tracker(tmp_path)
    old = _run(lenient, tracker, tmp_path / "out")

    broken = _tracker(tmp_path)
    log_tags = broken._log_tags

    def fail_on_supersede(run_id, tags):
        if "eval.superseded_by" in tags:
            raise OSError("tracking server went away")
        log_tags(run_id, tags)

    monkeypatch.setattr(broken, "_log_tags", fail_on_supersede)
    with pytest.raises(Exception, match="tracking server went away"):
        _run(strict, broken, tmp_path / "out")
    runs = _week_runs(tmp_path)
    old_id = old.mlflow_run.run_id
    [new_id] = [run_id for run_id in runs if run_id != old_id]
    assert runs[old_id].data.tags["eval.superseded"] == "false"  # the tag never arrived
    assert runs[new_id].data.tags["eval.supersedes"] == old_id

    again = _run(strict, _tracker(tmp_path), tmp_path / "out")
    assert again.mlflow_run.run_id == new_id
    assert again.mlflow_run.superseded is None
    assert list(_week_runs(tmp_path)) == [old_id, new_id]
    assert _tracker(tmp_path).find_run(RUN_KEY, model=MODEL).run_id == new_id
