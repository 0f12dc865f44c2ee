"""A new model on its own warehouse, the first time: relative paths, its own calendar, and a
first week with no reference data (issue 9)."""

import json

import numpy as np
import pytest
import yaml

from eval_pipelines.cli import main
from eval_pipelines.spec import load_spec, parse_spec, resolve_duckdb_path
from tests.support.data import WEEK, base_spec, random_window, write_warehouse

# ---------------------------------------------------------------- relative paths (item 5)


def test_relative_duckdb_path_resolves_from_the_spec_folder(tmp_path):
    folder = tmp_path / "specs" / "mymodel"
    folder.mkdir(parents=True)
    spec = base_spec("duckdb:///data/w.duckdb")
    (folder / "t4.yaml").write_text(yaml.safe_dump(spec))
    loaded = load_spec(folder / "t4.yaml")
    assert loaded.warehouse == f"duckdb:///{folder.resolve() / 'data' / 'w.duckdb'}"
    # What is hashed and recorded stays as written.
    assert loaded.warehouse_template == "duckdb:///data/w.duckdb"


@pytest.mark.parametrize(
    "url",
    [
        "duckdb:////abs/w.duckdb",
        "duckdb:///:memory:",
        "duckdb://",
        "postgresql://eval@db:5432/wh",
        "sqlite:///relative.db",
    ],
)
def test_absolute_memory_and_other_dialects_are_unchanged(url, tmp_path):
    assert resolve_duckdb_path(url, tmp_path) == url


def test_relative_duckdb_path_keeps_its_query_string(tmp_path):
    assert (
        resolve_duckdb_path("duckdb:///w.duckdb?threads=2", tmp_path)
        == f"duckdb:///{tmp_path.resolve() / 'w.duckdb'}?threads=2"
    )


def test_a_spec_parsed_without_a_file_keeps_the_current_directory():
    spec = parse_spec(base_spec("duckdb:///data/w.duckdb"))
    assert spec.warehouse == "duckdb:///data/w.duckdb"


def test_run_from_another_directory_finds_warehouse_and_query(tmp_path, monkeypatch, capsys):
    elsewhere = tmp_path / "elsewhere"
    folder = elsewhere / "mymodel"
    (folder / "data").mkdir(parents=True)
    predictions, labels = random_window(np.random.default_rng(9), 2_000)
    write_warehouse(folder / "data" / "w.duckdb", predictions, labels)
    (folder / "labels.sql").write_text("SELECT prediction_id, label, labeled_at FROM labels")
    spec = base_spec("duckdb:///data/w.duckdb", labels={"query": "labels.sql", "max_delay": "14d"})
    (folder / "t4.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(elsewhere)

    code = main(["run", "--spec", "mymodel/t4.yaml", "--week", WEEK, "--out", "out"])

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "verdict: " in captured.out
    verdict = json.loads((elsewhere / "out" / "verdict.json").read_text())
    assert verdict["model"] == "test_model"
    assert verdict["window"].startswith(WEEK)
    assert not (elsewhere / "data").exists()
