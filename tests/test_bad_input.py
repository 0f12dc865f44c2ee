"""The bad-input catalogue (docs/bad_input.md): one test per row, ids B01...

Every row drives the real CLI (``eval_pipelines.cli.main``) with an MLflow store, and checks
the exit status, that the message names the spec key / table / column / week / value (stable
substrings only: the input-check wording is being reworked), that no ``--out`` folder and no
``.tmp-*`` sibling is left, that the warehouse file is byte-for-byte unchanged and, in MLflow,
that no run was marked FINISHED: spec errors never reach MLflow; bad input found in the
warehouse leaves a FAILED run whose ``eval.error`` tag carries the message.

Rows whose correct behaviour is not an error (slice values with quotes, newlines and
non-ASCII text; a window without labels yet; a gate on a slice value absent from the week;
mixed time zones) have their own tests at the end.
"""

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from support.mlflow_store import migrated_store

from eval_pipelines.cli import main
from eval_pipelines.demo import build_demo_warehouse

WEEK = "2026-11-16"
DEMO_SPEC = Path(__file__).resolve().parents[1] / "evals" / "fraud_detector.yaml"
CANARY = "canary-pw-4711"
SPEC, WAREHOUSE, OK = "spec", "warehouse", "ok"  # where a row is caught

# A predictions table with one million distinct values of a slice column in the window.
MILLION = (
    "CREATE TABLE wide_logs AS SELECT 'w' || CAST(i AS VARCHAR) AS prediction_id, "
    "TIMESTAMP '2026-11-16' + to_seconds(i % 600000) AS ts, 'v1' AS model_version, "
    "(i % 997) / 997.0 AS score, i AS user_key FROM range(1000000) AS t(i)"
)
IN_WEEK = "SELECT prediction_id FROM inference_logs WHERE ts >= TIMESTAMP '2026-11-16'"


def _some(n: int, version: str | None = None) -> str:
    """The first ``n`` prediction ids of the evaluated week (both versions share them)."""
    where = f" AND model_version = '{version}'" if version else ""
    return f"prediction_id IN ({IN_WEEK}{where} ORDER BY prediction_id LIMIT {n})"


@dataclass(frozen=True)
class Row:
    id: str
    changes: dict[str, Any] = field(default_factory=dict)  # dotted spec keys ("a.b") -> value
    sql: tuple[str, ...] = ()  # run on a copy of the base warehouse
    code: int = 4
    phrases: tuple[str, ...] = ()
    caught: str = WAREHOUSE
    week: str = WEEK
    text: str | None = None  # the spec file's text, verbatim (YAML that does not parse)
    files: dict[str, str] = field(default_factory=dict)  # written next to the spec
    # $EVAL_RESULTS_STORE_URL, the decision log's store; "{warehouse}" is the row's warehouse.
    results_store: str | None = None


CATALOGUE = [
    # ------------------------------------------------------------------ the spec (exit 3)
    Row("B01", text="model: x\npredictions: [unclosed\n", code=3, caught=SPEC,
        phrases=("invalid YAML at line 3",)),
    Row("B02", text="- model: x\n- predictions: {}\n", code=3, caught=SPEC,
        phrases=("expected a mapping of keys",)),
    Row("B03", changes={"gate": []}, code=3, caught=SPEC,
        phrases=("gate: unknown key", "did you mean 'gates'")),
    Row("B04", changes={"labels.max_dealy": "14d"}, code=3, caught=SPEC,
        phrases=("labels.max_dealy: unknown key", "did you mean 'max_delay'")),
    Row("B05", changes={"predictions": None}, code=3, caught=SPEC,
        phrases=("predictions",)),
    Row("B06", changes={"threshold": "high"}, code=3, caught=SPEC,
        phrases=("threshold", "'high'")),
    Row("B07", changes={"predictions.score": "score) OR 1=1 --"}, code=3, caught=SPEC,
        phrases=("predictions.score", "not a plain column")),
    Row("B08", changes={"labels.table": "labels; DROP TABLE labels"}, code=3, caught=SPEC,
        phrases=("labels.table", "not a plain column")),
    Row("B09", changes={"predictions.id": '"x"'}, code=3, caught=SPEC,
        phrases=("predictions.id", '\'"x"\'')),
    Row("B10", changes={"labels.table": 'main"; DROP TABLE labels; --.labels'}, code=3,
        caught=SPEC, phrases=("labels.table", "DROP TABLE")),
    Row("B11", changes={"slices": ["country", ["plan", "device' OR '1'='1"]]}, code=3,
        caught=SPEC, phrases=("slices.1.1", "not a plain column")),
    Row("B12", changes={"drift.features": ["amount", "amount); DROP TABLE labels; --"]},
        code=3, caught=SPEC, phrases=("drift.features.1", "not a plain column")),
    Row("B13", changes={"gates": [{"metric": "roc_acu", "min": 0.5}]}, code=3, caught=SPEC,
        phrases=("gates.0.metric", "did you mean 'roc_auc'")),
    Row("B14", changes={"metrics": ["recall"], "gates": [{"metric": "roc_auc", "min": 0.5}]},
        code=3, caught=SPEC, phrases=("gates.0.metric", "'roc_auc'", "not in metrics")),
    Row("B15", changes={"gates": [{"metric": "recall", "slice": "region=EU", "min": 0.5}]},
        code=3, caught=SPEC, phrases=("gates.0.slice", "'region=EU'")),
    Row("B16", changes={"gates": [{"drift": "psi", "feature": "amnt", "max": 0.2}]}, code=3,
        caught=SPEC, phrases=("gates.0.feature", "'amnt'", "did you mean 'amount'")),
    Row("B17", changes={"compare": {"baseline": "v2", "candidate": "v2"}}, code=3, caught=SPEC,
        phrases=("compare", "different model versions")),
    Row("B18", changes={"warehouse": "duckdb:///${EVAL_BAD_INPUT_UNSET}"}, code=3,
        caught=SPEC, phrases=("warehouse", "EVAL_BAD_INPUT_UNSET is not set")),
    Row("B19", week="2026-11-17", code=3, caught=SPEC,
        phrases=("week", "2026-11-17 is a Tuesday", "2026-11-16")),
    Row("B20", changes={"max_slice_values": 0}, code=3, caught=SPEC,
        phrases=("max_slice_values",)),
    # ------------------------------------------------------ the warehouse's schema
    Row("B21", changes={"predictions.table": "inference_log"}, code=3,
        phrases=("inference_log", "predictions")),
    Row("B22", changes={"predictions.score": "scores"}, phrases=("predictions.score", "'scores'")),
    Row("B23", sql=("ALTER TABLE inference_logs ALTER score TYPE VARCHAR",),
        phrases=("predictions.score", "'score'", "inference_logs", "VARCHAR")),
    Row("B24", sql=("ALTER TABLE labels ALTER label TYPE VARCHAR",
                    "UPDATE labels SET label = CASE label WHEN '1' THEN 'yes' ELSE 'no' END"),
        phrases=("labels.label", "'label'", "VARCHAR")),
    Row("B25", sql=("ALTER TABLE inference_logs ALTER prediction_id TYPE DOUBLE "
                    "USING CAST(substr(prediction_id, 2) AS DOUBLE)",),
        phrases=("predictions.id", "'prediction_id'", "DOUBLE")),
    Row("B26", sql=("ALTER TABLE inference_logs ALTER ts TYPE VARCHAR "
                    "USING strftime(ts, '%Y-%m-%dT%H:%M:%S+02:00')",),
        phrases=("predictions.timestamp", "'ts'", "VARCHAR")),
    Row("B27", changes={"slices": ["country", "region"]}, phrases=("slices", "'region'")),
    Row("B28", changes={"drift.features": ["amount", "txn_amount"]},
        phrases=("drift.features", "'txn_amount'")),
    # ---------------------------------------------------------- the window's contents
    Row("B29", sql=(f"UPDATE inference_logs SET prediction_id = NULL WHERE {_some(3)}",),
        phrases=("predictions.id", "NULL")),
    Row("B30", sql=(f"INSERT INTO inference_logs SELECT * FROM inference_logs "
                    f"WHERE {_some(2)} AND model_version = 'v2'",),
        phrases=("predictions.id", "duplicate")),
    Row("B31", sql=(f"UPDATE inference_logs SET prediction_id = '  ' WHERE {_some(1)}",),
        phrases=("predictions.id", "empty")),
    Row("B32", sql=(f"UPDATE inference_logs SET score = 'nan'::DOUBLE WHERE {_some(3)}",),
        phrases=("predictions.score", "NaN")),
    Row("B33", sql=(f"UPDATE inference_logs SET score = 'inf'::DOUBLE WHERE {_some(3)}",),
        phrases=("predictions.score", "'score'")),
    Row("B34", sql=(f"UPDATE inference_logs SET score = 1.5 WHERE {_some(3, 'v1')}",
                    f"UPDATE inference_logs SET score = -0.1 WHERE {_some(3, 'v2')}"),
        phrases=("predictions.score", "'v1'", "'v2'")),
    Row("B35", sql=(f"UPDATE labels SET label = 2 WHERE {_some(3)}",),
        phrases=("labels.label",)),
    Row("B36", sql=(f"INSERT INTO labels SELECT * FROM labels WHERE {_some(2)}",),
        phrases=("labels.id", "more than one label")),
    Row("B37", week="2020-01-06", phrases=("no predictions", "inference_logs", "2020-01-06")),
    Row("B38", changes={"compare": {"baseline": "v0", "candidate": "v2"}},
        phrases=("compare.baseline", "'v0'")),
    Row("B39", sql=("DELETE FROM inference_logs WHERE model_version = 'v2' "
                    "AND ts >= TIMESTAMP '2026-11-16'",),
        phrases=("compare.candidate", "'v2'")),
    Row("B40", sql=(MILLION,),
        changes={"predictions.table": "wide_logs", "slices": ["user_key"], "compare": None,
                 "drift": None, "gates": [{"metric": "roc_auc", "min": 0.5}]},
        phrases=("slices[0]", "'user_key'", "1,000,000", "max_slice_values")),
    # -------------------------------------------------------- user SQL and connections
    Row("B41", changes={"labels": {"query": "sql/labels.sql"}}, code=3,
        phrases=("sql/labels.sql", "not found")),
    Row("B42", changes={"labels": {"query": "labels.sql"}}, code=3,
        files={"labels.sql": "SELECT * FROM labels; DROP TABLE labels"},
        phrases=("labels", "labels.sql", "syntax error")),
    Row("B43", changes={"warehouse": f"postgresql+psycopg2://eval:{CANARY}@127.0.0.1:9/wh"},
        code=3, phrases=("127.0.0.1", "port 9", "eval:***@")),
    Row("B44", changes={"warehouse": f"postgresql://eval:{CANARY}@127.0.0.1:9/wh"}, code=3,
        phrases=("eval:***@127.0.0.1:9", "port 9")),
    Row("B45", changes={"warehouse": "duckdb:///no/such/warehouse.duckdb"}, code=3,
        phrases=("no/such/warehouse.duckdb", "not found")),
    # The decision log's results store (docs/bad_input.md, "Results store").
    Row("B50", results_store="duckdb:///{warehouse}", code=3, caught=SPEC,
        phrases=("is the source warehouse", "--results-store")),
    Row("B51", results_store=f"postgresql://eval:{CANARY}@127.0.0.1:9/results", code=3,
        caught=SPEC, phrases=("results store postgresql://eval:***@127.0.0.1:9", "port 9")),
    Row("B52", results_store="mysql://eval@127.0.0.1/results", code=3, caught=SPEC,
        phrases=("results store", "'mysql' is not supported")),
]  # fmt: skip

# Rows whose behaviour needs a change in a file this catalogue does not own.
NEEDS: dict[str, str] = {}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("bad-input")
    warehouse = root / "base.duckdb"
    build_demo_warehouse(warehouse, rows=16_000)
    mlflow = migrated_store(root / "mlflow.db")  # the store's tables exist
    return {
        "root": root,
        "warehouse": warehouse,
        "raw": yaml.safe_load(DEMO_SPEC.read_text()),
        "mlflow": mlflow,
    }


@pytest.fixture(autouse=True)
def _mlflow_artifacts_in_tmp(base, monkeypatch):
    """The CLI's MLflow store is SQLite: without an artifact location MLflow would write the
    runs' artifacts to ./mlruns, in the checkout."""
    monkeypatch.setenv("EVAL_MLFLOW_ARTIFACT_LOCATION", str(base["root"] / "mlflow-artifacts"))


def _warehouse_copy(base: dict, folder: Path, sql: tuple[str, ...]) -> Path:
    path = folder / "warehouse.duckdb"
    shutil.copy(base["warehouse"], path)
    if sql:
        con = duckdb.connect(str(path))
        try:  # copies without the NOT NULL constraints, so that bad rows can be written
            for table in ("inference_logs", "labels"):
                con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM {table}")
            for statement in sql:
                con.execute(statement)
            con.execute("CHECKPOINT")
        finally:
            con.close()
    return path


def _write_spec(base: dict, folder: Path, model: str, changes: dict, warehouse: Path) -> Path:
    raw = json.loads(json.dumps(base["raw"]))
    raw["model"] = model
    raw["warehouse"] = f"duckdb:///{warehouse}"
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        target = raw
        for key in parents:
            target = target[key]
        if value is None:
            target.pop(last, None)
        else:
            target[last] = value
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


def _runs(base: dict, model: str) -> list:
    client = MlflowClient(tracking_uri=base["mlflow"])
    experiment = client.get_experiment_by_name(f"eval-pipelines/{model}")
    if experiment is None:
        return []
    # The model's week runs, not its trend run (the parent of the weeks, tracking.py).
    return client.search_runs([experiment.experiment_id], filter_string="tags.`eval.kind` = 'week'")


def _run(base: dict, folder: Path, spec: Path, week: str = WEEK, out: str = "out") -> int:
    return main(
        [
            "run",
            "--spec",
            str(spec),
            "--week",
            week,
            "--out",
            str(folder / out),
            "--mlflow",
            base["mlflow"],
        ]
    )


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(row, id=row.id, marks=pytest.mark.xfail(strict=True, reason=NEEDS[row.id]))
        if row.id in NEEDS
        else pytest.param(row, id=row.id)
        for row in CATALOGUE
    ],
)
def test_bad_input_fails_cleanly(base, tmp_path, capsys, monkeypatch, row: Row):
    model = f"bad_{row.id}"
    warehouse = _warehouse_copy(base, tmp_path, row.sql)
    if row.results_store is not None:
        store = row.results_store.replace("{warehouse}", str(warehouse))
        monkeypatch.setenv("EVAL_RESULTS_STORE_URL", store)
    fingerprint = _sha256(warehouse)
    spec = _write_spec(base, tmp_path, model, row.changes, warehouse)
    if row.text is not None:
        spec.write_text(row.text)
    for name, text in row.files.items():
        (tmp_path / name).write_text(text)

    code = _run(base, tmp_path, spec, row.week)
    err = capsys.readouterr().err

    assert err.startswith("error: ") and "Traceback" not in err, err
    assert CANARY not in err
    for phrase in row.phrases:
        assert phrase in err, f"{phrase!r} not in: {err}"
    assert code == row.code, err
    # Nothing written: no artifact folder, no staging sibling, the warehouse untouched.
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    assert _sha256(warehouse) == fingerprint
    runs = _runs(base, model)
    if row.caught == SPEC:
        assert runs == []  # a bad spec or week never reaches MLflow
    else:
        assert [r.info.status for r in runs] == ["FAILED"]
        assert row.phrases[0] in runs[0].data.tags["eval.error"]
        assert "eval.verdict" not in runs[0].data.tags


def test_unreachable_warehouse_is_one_sentence(base, tmp_path, capsys):
    """B43 in detail: a single line naming host and port, never the password."""
    spec = _write_spec(base, tmp_path, "bad_B43_detail", {}, base["warehouse"])
    url = f"postgresql+psycopg2://eval:{CANARY}@127.0.0.1:9/wh"
    argv = ["run", "--spec", str(spec), "--week", WEEK, "--out", str(tmp_path / "out")]
    code = main([*argv, "--warehouse", url])
    err = capsys.readouterr().err
    assert code == 3
    assert err.count("\n") == 1 and CANARY not in err, err
    assert "127.0.0.1" in err and "port 9" in err


# ------------------------------------------------------------ rows that are not errors


def _gate(folder: Path) -> int:
    return main(["gate", "--quiet", str(folder)])


def test_B46_slice_values_with_quotes_newlines_and_unicode_are_data(base, tmp_path, capsys):
    """Evaluated like any value; exact in metrics.parquet; escaped in report.md."""
    odd = {"US": 'O\'Brien "quoted" | pipe', "GB": "line\nbreak", "DE": "Zürich 東京 🚀"}
    renames = [
        f"UPDATE inference_logs SET country = $${new}$$ WHERE country = '{old}'"
        for old, new in odd.items()
    ]
    # Make the candidate much worse on the quoted slice, so it shows in the changes table.
    invert = (
        f"UPDATE inference_logs SET score = 1 - score WHERE model_version = 'v2' "
        f"AND country = $${odd['US']}$$"
    )
    warehouse = _warehouse_copy(base, tmp_path, (*renames, invert))
    gates = [
        {"metric": "recall", "max_regression": 0.02},
        {"metric": "roc_auc", "slice": f"country={odd['GB']}", "min": 0.5},
        {"metric": "roc_auc", "slice": f"country={odd['DE']}", "min": 0.5},
    ]
    spec = _write_spec(base, tmp_path, "bad_B46", {"gates": gates}, warehouse)
    assert _run(base, tmp_path, spec) == 0, capsys.readouterr().err
    out = tmp_path / "out"

    slices = set(pd.read_parquet(out / "metrics.parquet")["slice"])
    for value in odd.values():
        assert f"country={value}" in slices
    report = (out / "report.md").read_text()
    assert "Zürich 東京 🚀" in report
    assert "line\\nbreak" in report and not any(
        line.startswith("break") for line in report.splitlines()
    )
    assert 'O\'Brien "quoted" \\| pipe' in report
    for line in report.splitlines():  # every table row has as many cells as its header
        if line.startswith("| "):
            cells = line.replace("\\|", "").count("|")
            assert cells in {8, 6, 7}, line
    assert [r.info.status for r in _runs(base, "bad_B46")] == ["FINISHED"]


def test_B47_window_without_labels_yet_is_inconclusive(base, tmp_path, capsys):
    week = "2026-11-02"  # before the planted drift, so only the labels are missing
    warehouse = _warehouse_copy(
        base,
        tmp_path,
        (
            "DELETE FROM labels WHERE prediction_id IN (SELECT prediction_id FROM "
            "inference_logs WHERE ts >= TIMESTAMP '2026-11-02')",
        ),
    )
    spec = _write_spec(base, tmp_path, "bad_B47", {}, warehouse)
    assert _run(base, tmp_path, spec, week) == 0, capsys.readouterr().err
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    assert verdict["decision"] == "inconclusive"
    waiting = [r for r in verdict["reasons"] if "no labeled predictions" in r["message"]]
    assert len(waiting) == 2 and all(r["outcome"] == "inconclusive" for r in waiting)
    assert _gate(tmp_path / "out") == 2


def test_B48_gate_on_a_slice_value_absent_from_the_week_holds(base, tmp_path, capsys):
    gates = [{"metric": "recall", "slice": "country=XX", "min": 0.1}]
    spec = _write_spec(base, tmp_path, "bad_B48", {"gates": gates}, base["warehouse"])
    assert _run(base, tmp_path, spec) == 0, capsys.readouterr().err
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    held = [r for r in verdict["reasons"] if r["outcome"] == "hold"]
    assert held and held[0]["slice"] == "country=XX" and "'country=XX'" in held[0]["message"]
    assert _gate(tmp_path / "out") == 1


def test_B49_mixed_time_zones_evaluate_as_utc(base, tmp_path, capsys, monkeypatch):
    """TIMESTAMPTZ predictions, naive (UTC) labels, a machine in New York: same numbers."""
    naive = _write_spec(base, tmp_path, "bad_B49_naive", {"drift": None, "gates": []},
                        base["warehouse"])  # fmt: skip
    assert _run(base, tmp_path, naive, out="naive") == 0
    mixed_folder = tmp_path / "mixed"
    mixed_folder.mkdir()
    warehouse = _warehouse_copy(
        base,
        mixed_folder,
        ("SET TimeZone = 'UTC'", "ALTER TABLE inference_logs ALTER ts TYPE TIMESTAMPTZ"),
    )
    spec = _write_spec(base, mixed_folder, "bad_B49", {"drift": None, "gates": []}, warehouse)

    # DuckDB's session time zone defaults to the machine's: simulate a machine in New York
    # (without the engine's own SET TimeZone this evaluates 1,884 instead of 1,938 rows).
    connect = duckdb.connect

    def new_york(*args, **kwargs):
        con = connect(*args, **kwargs)
        con.execute("SET TimeZone = 'America/New_York'")
        return con

    monkeypatch.setattr(duckdb, "connect", new_york)
    assert _run(base, mixed_folder, spec) == 0, capsys.readouterr().err
    for name in ("metrics.parquet", "coverage.parquet"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "naive" / name), pd.read_parquet(mixed_folder / "out" / name)
        )
