"""``eval-pipelines demo`` dates its eight weeks to end at the last complete week (issue 9,
item 2), and ``make ui``'s registry week is read back from the data.

Every test pins its dates: ``--end-week``, or a fixed clock for the default. The demo runs in
a scratch folder holding a copy of the demo spec (its warehouse, ``../data/warehouse.duckdb``,
and the MLflow store, ``out/mlflow``, are relative to it), never in the checkout.
"""

import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from assets.specs import PROJECT_ROOT
from eval_pipelines import demo
from eval_pipelines.cli import main
from eval_pipelines.demo import build_demo_warehouse, read_demo_warehouse, ui_registry_week
from eval_pipelines.spec import load_spec

ROWS = "20000"
WAREHOUSE = Path("data/warehouse.duckdb")


@pytest.fixture
def demo_folder(tmp_path, monkeypatch) -> Path:
    """A folder laid out like the checkout for the demo (evals/ only), as the working dir."""
    (tmp_path / "evals").mkdir()
    shutil.copy(PROJECT_ROOT / "evals" / "fraud_detector.yaml", tmp_path / "evals")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _demo(capsys, *args: str, weeks: str = "1") -> tuple[int, str, str]:
    code = main(["demo", "--rows", ROWS, "--weeks", weeks, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _verdict(folder: Path, week: str) -> dict:
    path = folder / "out" / "demo" / "fraud_detector" / week / "verdict.json"
    return json.loads(path.read_text())


def test_the_demo_ends_at_the_last_complete_week_and_moves_when_the_week_does(
    demo_folder, monkeypatch, capsys
):
    # Wednesday 2026-11-25: the last complete week is the one of Monday 2026-11-16.
    wednesday = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)
    at_wednesday = demo.latest_demo_start
    monkeypatch.setattr(demo, "latest_demo_start", lambda: at_wednesday(wednesday))

    code, out, err = _demo(capsys)

    assert code == 0, err
    assert "8 weeks 2026-09-28 to 2026-11-16" in out
    assert "(fraud_detector, week 2026-11-16)" in out
    assert _verdict(demo_folder, "2026-11-16")["window"] == "2026-11-16"
    built = read_demo_warehouse(WAREHOUSE)
    assert (built.start, built.end, built.rows) == (date(2026, 9, 28), date(2026, 11, 23), 20_000)

    # The same week again: the warehouse is kept, only the evaluation runs.
    code, out, err = _demo(capsys)
    assert code == 0, err
    assert "demo warehouse:" not in out
    assert "week 2026-11-16" in out

    # A week later the demo moves: same eight weeks, one week on.
    code, out, err = _demo(capsys, "--end-week", "2026-11-23")
    assert code == 0, err
    assert "8 weeks 2026-10-05 to 2026-11-23" in out
    assert _verdict(demo_folder, "2026-11-23")["window"] == "2026-11-23"
    assert read_demo_warehouse(WAREHOUSE).start == date(2026, 10, 5)


def test_a_demo_dated_later_gives_the_same_numbers(tmp_path, monkeypatch, capsys):
    """Same seed, same numbers: only the dates move (the planted truths hold every time)."""
    folders = {}
    for end_week in ("2026-11-16", "2027-01-18"):
        folder = tmp_path / end_week
        (folder / "evals").mkdir(parents=True)
        shutil.copy(PROJECT_ROOT / "evals" / "fraud_detector.yaml", folder / "evals")
        monkeypatch.chdir(folder)
        code, out, err = _demo(capsys, "--end-week", end_week)
        assert code == 0, err
        assert f"week {end_week})" in out
        folders[end_week] = folder / "out" / "demo" / "fraud_detector" / end_week

    fixed, moved = folders["2026-11-16"], folders["2027-01-18"]
    for name in ("metrics", "comparison", "drift", "coverage"):
        expected = pd.read_parquet(fixed / f"{name}.parquet")
        assert len(expected) > 0
        pd.testing.assert_frame_equal(pd.read_parquet(moved / f"{name}.parquet"), expected)
    before, after = (json.loads((f / "verdict.json").read_text()) for f in (fixed, moved))
    assert (before.pop("window"), after.pop("window")) == ("2026-11-16", "2027-01-18")
    assert after == before


def test_a_bad_end_week_fails_in_one_sentence_before_anything_is_written(demo_folder, capsys):
    code, _out, err = _demo(capsys, "--end-week", "2026-11-17")
    assert code == 3
    assert "2026-11-17 is a Tuesday" in err and "did you mean 2026-11-16" in err
    assert not (demo_folder / "data").exists()


def test_make_ui_pins_the_registry_sensor_to_the_demos_last_week(tmp_path, capsys):
    path = tmp_path / "warehouse.duckdb"
    monday_after = datetime(2026, 11, 23, 6, tzinfo=UTC)  # the demo's last week has just ended

    assert ui_registry_week(path, monday_after) == ""
    assert "no demo warehouse" in capsys.readouterr().err

    build_demo_warehouse(path, rows=2_000)  # 2026-09-28 .. the week of 2026-11-16
    assert ui_registry_week(path, monday_after) == "2026-11-16"
    assert capsys.readouterr().err == ""

    # A week later, the demo is a week behind: the week is still the data's, with a note.
    assert ui_registry_week(path, datetime(2026, 12, 1, tzinfo=UTC)) == "2026-11-16"
    note = capsys.readouterr().err
    assert "end at 2026-11-16, not at last week (2026-11-23)" in note and "make demo" in note


def test_a_file_that_is_not_a_demo_warehouse_is_kept_unless_rebuild_is_asked(demo_folder, capsys):
    (demo_folder / "data").mkdir()
    with duckdb.connect(str(demo_folder / WAREHOUSE)) as con:
        con.execute("CREATE TABLE my_table AS SELECT 42 AS answer")

    code, _out, err = _demo(capsys, "--end-week", "2026-11-16")
    assert code == 3
    assert "data/warehouse.duckdb is not a readable demo warehouse" in err and "--rebuild" in err
    with duckdb.connect(str(demo_folder / WAREHOUSE), read_only=True) as con:
        assert con.execute("SELECT answer FROM my_table").fetchone() == (42,)
    assert ui_registry_week(WAREHOUSE) == ""
    assert "not a readable demo warehouse" in capsys.readouterr().err

    code, _out, err = _demo(capsys, "--end-week", "2026-11-16", "--rebuild")
    assert code == 0, err
    assert read_demo_warehouse(WAREHOUSE).start == date(2026, 9, 28)


def test_the_demo_evaluates_every_spec_of_evals_and_prints_each_verdict(demo_folder, capsys):
    """Every demo spec is evaluated into its own folder and listed with its verdict; a broken
    spec is reported and does not hide the others' verdicts (the exit code says it failed)."""
    fraud = (demo_folder / "evals" / "fraud_detector.yaml").read_text()
    shadow = fraud.replace("model: fraud_detector", "model: fraud_shadow").replace(
        "{metric: roc_auc, slice: overall, min: 0.80}",
        "{metric: roc_auc, slice: overall, min: 0.5}",
    )
    (demo_folder / "evals" / "fraud_shadow.yaml").write_text(shadow)
    (demo_folder / "evals" / "broken.yaml").write_text("model: broken\ntask: binary\n")

    code, out, err = _demo(capsys, "--end-week", "2026-11-16")

    assert code == 3
    assert "broken.yaml" in err and "task" in err
    table = out[out.index("demo verdicts, week 2026-11-16:") :].splitlines()[1:4]
    # The README's model first, then the others by file name.
    assert [line.split()[:3] for line in table] == [
        ["fraud_detector", "binary_classification", "HOLD"],
        ["broken", "?", "ERROR"],
        ["fraud_shadow", "binary_classification", "HOLD"],
    ]
    for model in ("fraud_detector", "fraud_shadow"):
        week = demo_folder / "out" / "demo" / model / "2026-11-16"
        verdict = json.loads((week / "verdict.json").read_text())
        assert verdict["model"] == model and verdict["window"] == "2026-11-16"
        assert str(Path("out/demo") / model / "2026-11-16" / "report.md") in out
    # Each verdict line ends with the report.html to open, and that page exists.
    for line in (table[0], table[2]):
        page = Path(line.split()[-1])
        assert page.name == "report.html" and (demo_folder / page).is_file()


def test_the_demo_evaluates_its_last_weeks_and_builds_each_models_trend_dashboard(
    demo_folder, capsys, monkeypatch
):
    """Issue 11's "Done when": the demo's weeks each get an artifact folder, the trend
    dashboard covers them with interval bands, every report links it, and the decision log
    lists every week's decision."""
    # A results store of this test's own (the session's is shared by every test).
    monkeypatch.setenv("EVAL_RESULTS_STORE_URL", f"duckdb:///{demo_folder}/results.duckdb")
    code, out, err = _demo(capsys, "--end-week", "2026-11-16", weeks="3")
    assert code == 0, err

    root = demo_folder / "out" / "demo" / "fraud_detector"
    weeks = ["2026-11-02", "2026-11-09", "2026-11-16"]
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == weeks
    for week in weeks:
        assert json.loads((root / week / "verdict.json").read_text())["window"] == week
        assert 'href="../dashboard.html"' in (root / week / "report.html").read_text()
    assert "trend dashboards, weeks 2026-11-02 to 2026-11-16:" in out
    dashboard = root / "dashboard.html"
    assert str(Path("out/demo/fraud_detector/dashboard.html")) in out and dashboard.is_file()
    page = dashboard.read_text()
    for week in weeks:  # each week in the verdict history, linking its report
        assert f'href="{week}/report.html"' in page
    # A shaded interval band per headline metric and version (v1, v2), across the weeks.
    headline = load_spec(demo_folder / "evals" / "fraud_detector.yaml").metrics
    assert page.count("<polygon") == 2 * len(headline)

    code = main(["decisions", "--model", "fraud_detector", "--format", "json"])
    assert code == 0
    logged = json.loads(capsys.readouterr().out)
    assert sorted(row["week_start"][:10] for row in logged) == weeks
    assert {row["trigger"] for row in logged} == {"cli"}


def test_demo_weeks_out_of_range_is_a_usage_error(demo_folder, capsys):
    with pytest.raises(SystemExit) as exited:
        _demo(capsys, weeks="9")
    err = capsys.readouterr().err
    assert exited.value.code == 64 and "--weeks" in err and "from 1 to 8" in err
    assert not (demo_folder / "data").exists()
