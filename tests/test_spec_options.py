"""Spec options that no other test exercised, each through what a user runs (the CLI, or
``evaluate`` where the CLI adds nothing) on a real DuckDB (or PostgreSQL) warehouse.

Expected values come from the rows the test wrote (pandas, scikit-learn, hand-worked
formulas), never from a second run of the engine, except where the option's promise is itself
a comparison ("the same results without a temporary table", "narrower at 80% than at 95%").
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score
from support.data import (
    WEEK,
    WEEK_START,
    base_spec,
    evaluated_rows,
    random_window,
    write_warehouse,
)

from eval_pipelines import cli

CHECKOUT = Path(__file__).resolve().parents[1]
DEMO_SPEC = CHECKOUT / "evals" / "fraud_detector.yaml"
REFERENCE_START = WEEK_START - pd.Timedelta(days=7)


def _write_spec(folder: Path, raw: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _run(spec: Path, out: Path) -> int:
    return cli.main(["run", "--spec", str(spec), "--week", WEEK, "--out", str(out)])


def _row(frame: pd.DataFrame, **where) -> pd.Series:
    mask = np.ones(len(frame), dtype=bool)
    for column, value in where.items():
        mask &= frame[column].to_numpy() == value
    [index] = np.flatnonzero(mask)
    return frame.iloc[index]


# ------------------------------------------------------------------------------ query sources


def test_query_sources_a_sql_file_next_to_the_spec_and_inline_sql(tmp_path, capsys):
    """predictions.query names a SQL file relative to the spec's folder (not the current
    one); labels.query is inline SQL whose columns are renamed through labels.id/label/
    timestamp. The metrics are those of exactly the rows the queries return."""
    rng = np.random.default_rng(11)
    predictions, labels = random_window(rng, 1_200, countries=("US", "GB", "DE"))
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)

    folder = tmp_path / "spec"
    (folder / "queries").mkdir(parents=True)
    (folder / "queries" / "predictions.sql").write_text(
        "-- every country but DE\n"
        "SELECT prediction_id, ts, model_version, score, country, device\n"
        "FROM inference_logs WHERE country <> 'DE';\n"
    )
    raw = base_spec(url, slices=["device"])
    raw["predictions"] = {"query": "queries/predictions.sql"}
    raw["labels"] = {
        "query": "SELECT prediction_id AS request, label AS outcome, labeled_at AS arrived "
        "FROM labels",
        "id": "request",
        "label": "outcome",
        "timestamp": "arrived",
        "max_delay": "14d",
    }
    spec = _write_spec(folder, raw)
    assert not (Path.cwd() / "queries" / "predictions.sql").exists()  # only next to the spec

    out = tmp_path / "out"
    assert _run(spec, out) == 0, capsys.readouterr().err

    rows = evaluated_rows(predictions, labels)
    assert (rows["country"] == "DE").sum() > 100  # the query's filter removes real rows
    kept = rows[(rows["country"] != "DE") & rows["label"].notna()]
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert set(metrics["slice"]) == {"overall", "device=android", "device=ios", "device=web"}
    for version in ("v1", "v2"):
        mine = kept[kept["model_version"] == version]
        y = mine["label"].to_numpy(int)
        predicted = (mine["score"].to_numpy() >= 0.5).astype(int)
        accuracy = _row(metrics, model_version=version, slice="overall", metric="accuracy")
        assert accuracy["n"] == len(mine)
        assert accuracy["value"] == pytest.approx((predicted == y).mean(), abs=1e-12)
        recall = _row(metrics, model_version=version, slice="overall", metric="recall")
        assert recall["value"] == pytest.approx(predicted[y == 1].mean(), abs=1e-12)
    coverage = pd.read_parquet(out / "coverage.parquet")
    v2_rows = rows[(rows["country"] != "DE") & (rows["model_version"] == "v2")]
    assert _row(coverage, model_version="v2", slice="overall")["rows"] == len(v2_rows)

    run = json.loads((out / "run.json").read_text())
    assert "country <> 'DE'" in run["queries"]["window"]  # the file's text, as recorded


# ------------------------------------------------------------------------------ drift options

REFERENCE_CHANNELS = {"A": 250, "B": 150, "C": 100}  # shares 0.5, 0.3, 0.2
# The candidate's current traffic shifts to 0.3, 0.3, 0.4; the baseline's keeps the shares.
CURRENT_CHANNELS = {"v2": {"A": 180, "B": 180, "C": 240}, "v1": {"A": 200, "B": 120, "C": 80}}
# PSI = sum (q - p) ln(q / p) over the categories, by hand for the candidate:
#   (0.3 - 0.5) ln(0.3 / 0.5) + 0 + (0.4 - 0.2) ln(0.4 / 0.2) = 0.2 ln(5/3) + 0.2 ln 2
PLANTED_PSI = 0.2 * math.log(5 / 3) + 0.2 * math.log(2)  # 0.2407946...


def _requests(prefix: str, channels: dict[str, int], start: pd.Timestamp, rng) -> pd.DataFrame:
    values = [value for value, count in channels.items() for _ in range(count)]
    n = len(values)
    return pd.DataFrame(
        {
            "prediction_id": [f"{prefix}{i:05d}" for i in range(n)],
            "ts": start + pd.to_timedelta(np.sort(rng.integers(0, 7 * 86400, n)), unit="s"),
            "channel": values,
        }
    )


@pytest.fixture(scope="module")
def drift_warehouse(tmp_path_factory) -> dict:
    """A reference week and the evaluated week; both versions score the reference requests,
    the current week's traffic differs per version (see CURRENT_CHANNELS)."""
    rng = np.random.default_rng(5)
    reference = _requests("r", REFERENCE_CHANNELS, REFERENCE_START, rng)
    current = {
        version: _requests(f"{version}-c", channels, WEEK_START, rng)
        for version, channels in CURRENT_CHANNELS.items()
    }
    frames = []
    for version in ("v1", "v2"):
        for requests in (reference, current[version]):
            frames.append(
                requests.assign(model_version=version, score=rng.uniform(0.01, 0.99, len(requests)))
            )
    predictions = pd.concat(frames, ignore_index=True)
    ids = predictions.drop_duplicates("prediction_id")
    labels = pd.DataFrame(
        {
            "prediction_id": ids["prediction_id"],
            "label": rng.integers(0, 2, len(ids)),
            "labeled_at": ids["ts"] + pd.Timedelta(hours=1),
        }
    )
    root = tmp_path_factory.mktemp("drift-options")
    url = write_warehouse(root / "w.duckdb", predictions, labels)
    return {"root": root, "url": url}


def _drift(drift_warehouse: dict, tmp_path: Path, **drift) -> pd.DataFrame:
    settings = {"reference_weeks": 1, "features": ["channel"], "categorical": ["channel"]}
    settings.update(drift)
    raw = base_spec(drift_warehouse["url"], slices=[], drift=settings)
    spec = _write_spec(tmp_path / "spec", raw)
    out = tmp_path / "out"
    assert _run(spec, out) == 0
    return pd.read_parquet(out / "drift.parquet")


def test_drift_defaults_describe_the_candidate_with_every_method_and_the_score(
    drift_warehouse, tmp_path, capsys
):
    drift = _drift(drift_warehouse, tmp_path)
    # include_score and include_label default to true
    assert set(drift["feature"]) == {"channel", "score", "label"}
    channel = drift[drift["feature"] == "channel"]
    # Default methods that apply to a categorical feature (ks and wasserstein are numeric).
    assert set(channel["method"]) == {"psi", "jensen_shannon", "chi_square"}
    psi = _row(channel, method="psi")
    assert psi["statistic"] == pytest.approx(PLANTED_PSI, abs=1e-12)
    assert (psi["n_reference"], psi["n_current"]) == (500, 600)  # the candidate's rows
    assert (psi["threshold"], psi["drifted"]) == (0.1, True)  # default PSI threshold 0.1
    score = drift[drift["feature"] == "score"]
    assert set(score["method"]) == {"psi", "ks", "wasserstein", "jensen_shannon"}


def test_drift_model_version_picks_whose_traffic_is_described(drift_warehouse, tmp_path, capsys):
    channel = _drift(drift_warehouse, tmp_path, model_version="v1").query("feature == 'channel'")
    psi = _row(channel, method="psi")
    # v1's current shares equal its reference shares: no drift at all, on v1's 400 rows.
    assert psi["statistic"] == pytest.approx(0.0, abs=1e-12)
    assert (psi["n_reference"], psi["n_current"]) == (500, 400)
    assert not channel["drifted"].any()


def test_drift_thresholds_change_the_drifted_flag_of_their_method_only(
    drift_warehouse, tmp_path, capsys
):
    drift = _drift(drift_warehouse, tmp_path, thresholds={"psi": 0.3})
    psi = _row(drift, feature="channel", method="psi")
    assert psi["statistic"] == pytest.approx(PLANTED_PSI, abs=1e-12)
    assert (psi["threshold"], psi["drifted"]) == (0.3, False)  # 0.2408 < 0.3
    chi = _row(drift, feature="channel", method="chi_square")
    assert chi["threshold"] == 0.05  # the other methods keep their defaults
    assert _row(drift, feature="score", method="psi")["threshold"] == 0.3


def test_drift_methods_and_include_score(drift_warehouse, tmp_path, capsys):
    drift = _drift(
        drift_warehouse, tmp_path, methods=["psi"], include_score=False, include_label=False
    )
    assert set(drift["feature"]) == {"channel"}  # no score rows, no label rows
    # Only PSI was asked for; the size-aware default (chi-square: a categorical feature with
    # at most 1000 reference rows and three values) is always reported too.
    rows = drift.set_index("method")
    assert set(rows.index) == {"psi", "chi_square"}
    assert bool(rows.loc["chi_square", "default"]) and not bool(rows.loc["psi", "default"])


# ------------------------------------------------------------------------------ confidence level


@pytest.fixture(scope="module")
def level_runs(tmp_path_factory) -> dict[float, Path]:
    """The same window run at confidence.level 0.95 and 0.80: {level: artifact folder}."""
    root = tmp_path_factory.mktemp("levels")
    rng = np.random.default_rng(3)
    predictions, labels = random_window(rng, 4_000)
    url = write_warehouse(root / "w.duckdb", predictions, labels)
    folders = {}
    for level in (0.95, 0.80):
        raw = base_spec(url, slices=["device"], confidence={"level": level})
        out = root / f"out-{level}"
        assert _run(_write_spec(root / f"spec-{level}", raw), out) == 0
        folders[level] = out
    return folders


def test_confidence_level_80_gives_narrower_intervals_labelled_80(level_runs):
    folders = level_runs

    keys = ["model_version", "slice", "metric"]
    wide = pd.read_parquet(folders[0.95] / "metrics.parquet").set_index(keys)
    narrow = pd.read_parquet(folders[0.80] / "metrics.parquet").set_index(keys)
    assert (wide["value"] == narrow["value"]).all()  # the level changes only the intervals
    ok = wide["status"] == "ok"
    width95 = (wide["ci_high"] - wide["ci_low"])[ok]
    width80 = (narrow["ci_high"] - narrow["ci_low"])[ok]
    assert len(width95) > 50 and (width95 > 0).all()
    assert (width80 < width95).all()
    assert (narrow["ci_low"][ok] >= wide["ci_low"][ok]).all()
    assert (narrow["ci_high"][ok] <= wide["ci_high"][ok]).all()
    # Normal theory: the width ratio is z(0.90) / z(0.975) = 1.2816 / 1.9600 = 0.654.
    assert 0.55 < float(np.median(width80 / width95)) < 0.75

    wide_delta = pd.read_parquet(folders[0.95] / "comparison.parquet")
    narrow_delta = pd.read_parquet(folders[0.80] / "comparison.parquet")
    tested = wide_delta["p_value"].notna()
    assert tested.sum() > 20
    delta95 = (wide_delta["delta_ci_high"] - wide_delta["delta_ci_low"])[tested]
    delta80 = (narrow_delta["delta_ci_high"] - narrow_delta["delta_ci_low"])[tested]
    assert (delta80 < delta95).all()

    report = (folders[0.80] / "report.md").read_text()
    assert "| 80% CI |" in report and "95%" not in report
    assert "Intervals: 80% percentile bootstrap" in report
    assert "delta [80% CI]" in report  # v2 is planted better: there are significant changes
    assert "| 95% CI |" in (folders[0.95] / "report.md").read_text()
    run = json.loads((folders[0.80] / "run.json").read_text())
    assert run["spec"]["confidence"]["level"] == 0.8


def test_p_values_do_not_depend_on_the_interval_level(level_runs):
    """Significance is governed by confidence.alpha; the interval level only sets the width
    of the reported intervals (README: Wald test with the bootstrap standard error)."""
    wide = pd.read_parquet(level_runs[0.95] / "comparison.parquet")
    narrow = pd.read_parquet(level_runs[0.80] / "comparison.parquet")
    for column in ("p_value", "q_value", "outcome"):
        pd.testing.assert_series_equal(wide[column], narrow[column])


# ------------------------------------------------------------------------------ gate exit codes


@pytest.fixture(scope="module")
def gated_warehouse(tmp_path_factory) -> dict:
    rng = np.random.default_rng(21)
    predictions, labels = random_window(rng, 2_000)
    root = tmp_path_factory.mktemp("gate")
    url = write_warehouse(root / "w.duckdb", predictions, labels)
    rows = evaluated_rows(predictions, labels)
    v2 = rows[(rows["model_version"] == "v2") & rows["label"].notna()]
    all_v2 = rows[rows["model_version"] == "v2"]
    return {
        "url": url,
        "auc": roc_auc_score(v2["label"].astype(int), v2["score"]),
        "coverage": len(v2) / len(all_v2),
    }


@pytest.mark.parametrize(
    ("offset", "decision", "code"),
    [(-0.05, "ship", 0), (+0.05, "hold", 1)],
    ids=["bound-below-the-auc", "bound-above-the-auc"],
)
def test_gate_exit_status_follows_the_verdict(
    gated_warehouse, tmp_path, capsys, offset, decision, code
):
    """`eval-pipelines gate DIR` exits 0 on ship and 1 on hold: the candidate's overall ROC AUC
    (scikit-learn on the window's rows) against a bound just below or above it."""
    auc, coverage = gated_warehouse["auc"], gated_warehouse["coverage"]
    assert coverage > 0.5  # above min_label_coverage: the data can support a decision
    bound = round(auc + offset, 4)
    gates = [{"metric": "roc_auc", "slice": "overall", "min": bound}]
    raw = base_spec(gated_warehouse["url"], slices=["device"], gates=gates)
    out = tmp_path / "out"
    assert _run(_write_spec(tmp_path, raw), out) == 0
    capsys.readouterr()

    assert cli.main(["gate", str(out)]) == code
    printed = capsys.readouterr().out
    assert f"verdict: {decision.upper()}" in printed
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["decision"] == decision
    outcomes = {r["gate"]: r["outcome"] for r in verdict["reasons"]}
    [gate] = [name for name in outcomes if name != "min_label_coverage"]
    assert "roc_auc" in gate
    expected = "pass" if decision == "ship" else "hold"
    assert outcomes == {"min_label_coverage": "pass", gate: expected}
    assert cli.main(["gate", "--quiet", str(out)]) == code
    assert capsys.readouterr().out == ""


def test_gate_messages_name_the_spec_interval_level(gated_warehouse, tmp_path, capsys):
    gates = [{"metric": "roc_auc", "slice": "overall", "min": 0.5}]
    raw = base_spec(gated_warehouse["url"], gates=gates, confidence={"level": 0.8})
    out = tmp_path / "out"
    assert _run(_write_spec(tmp_path, raw), out) == 0
    verdict = json.loads((out / "verdict.json").read_text())
    [message] = [r["message"] for r in verdict["reasons"] if "roc_auc" in r["gate"]]
    assert "80% CI" in message and "95%" not in message
    assert "95%" not in (out / "report.md").read_text()


def test_an_internal_error_exits_70_with_one_paragraph_and_writes_nothing(
    gated_warehouse, tmp_path, capsys, monkeypatch
):
    """Exit 70 is reserved for bugs: any exception that is not an input error. Here a fault
    is injected where the run computes the window's statistics."""
    import eval_pipelines.pipeline as pipeline

    def broken(*args, **kwargs):
        raise ZeroDivisionError("injected fault")

    monkeypatch.setattr(pipeline, "collect_statistics", broken)
    spec = _write_spec(tmp_path, base_spec(gated_warehouse["url"]))
    out = tmp_path / "out"
    assert _run(spec, out) == 70
    err = capsys.readouterr().err
    assert err.startswith("internal error: ZeroDivisionError: injected fault\n")
    assert "This is a bug in eval-pipelines, not in your input" in err
    assert "--debug" in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".out.*"))

    with pytest.raises(ZeroDivisionError, match="injected fault"):
        cli.main(["--debug", "run", "--spec", str(spec), "--week", WEEK, "--out", str(out)])


# ------------------------------------------------------------------------------ validate-spec


def test_validate_spec_accepts_a_good_spec_without_touching_the_warehouse(
    tmp_path, capsys, monkeypatch
):
    raw = yaml.safe_load(DEMO_SPEC.read_text())
    raw["warehouse"] = "postgresql://eval:${EVAL_TEST_SPEC_PASSWORD}@127.0.0.1:9/nowhere"
    spec = _write_spec(tmp_path, raw)
    hashes = []
    for password in ("first", "second"):  # the unexpanded text is what is hashed
        monkeypatch.setenv("EVAL_TEST_SPEC_PASSWORD", password)
        assert cli.main(["validate-spec", str(spec), str(DEMO_SPEC)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert [line.split(":")[0] for line in lines] == [str(spec), str(DEMO_SPEC)]
        match = re.fullmatch(
            rf"{re.escape(str(spec))}: ok \(model fraud_detector, spec hash ([0-9a-f]{{12}})\)",
            lines[0],
        )
        assert match, lines[0]
        hashes.append(match.group(1))
    assert hashes[0] == hashes[1]

    raw["threshold"] = 0.6
    assert cli.main(["validate-spec", str(_write_spec(tmp_path / "changed", raw))]) == 0
    assert capsys.readouterr().out.split("spec hash ")[1][:12] != hashes[0]


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        (
            lambda raw: raw.update(confidnce=raw.pop("confidence")),
            "confidnce: unknown key; did you mean 'confidence'?",
        ),
        (lambda raw: raw["confidence"].update(level=1.5), "confidence.level"),
        (
            lambda raw: raw["drift"].update(methods=["psi", "kolmogorov"]),
            "drift.methods",
        ),
    ],
    ids=["misspelt-key", "level-out-of-range", "unknown-drift-method"],
)
def test_validate_spec_rejects_a_bad_spec_in_one_sentence(tmp_path, capsys, change, phrase):
    raw = yaml.safe_load(DEMO_SPEC.read_text())
    change(raw)
    spec = _write_spec(tmp_path, raw)
    assert cli.main(["validate-spec", str(spec)]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and phrase in captured.err
    assert "Traceback" not in captured.err


# ------------------------------------------------------------------------------ no temp tables


@pytest.mark.postgres
def test_a_warehouse_refusing_temporary_tables_gives_the_same_results(postgres_url, tmp_path):
    """A PostgreSQL role without the TEMPORARY privilege (a common read-only grant): the
    window join cannot be materialized, every query reads the sources instead, and the
    results are those of a DuckDB copy of the same rows, where the temporary table is used."""
    import psycopg2
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url
    from support.postgres import copy_duckdb_tables

    from eval_pipelines.pipeline import evaluate
    from eval_pipelines.spec import parse_spec

    rng = np.random.default_rng(17)
    predictions, labels = random_window(rng, 1_500)
    duck_path = tmp_path / "w.duckdb"
    duck_url = write_warehouse(duck_path, predictions, labels)

    admin_url = make_url(postgres_url)
    admin = psycopg2.connect(
        admin_url.set(drivername="postgresql", database="postgres").render_as_string(False)
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("DROP DATABASE IF EXISTS no_temp")
        cursor.execute("CREATE DATABASE no_temp")
        cursor.execute("REVOKE TEMPORARY ON DATABASE no_temp FROM PUBLIC")
        cursor.execute("DROP ROLE IF EXISTS eval_reader")
        cursor.execute("CREATE ROLE eval_reader LOGIN")
    admin.close()
    owner_url = admin_url.set(database="no_temp").render_as_string(False)
    copy_duckdb_tables(duck_path, owner_url, ["inference_logs", "labels"])
    engine = sa.create_engine(owner_url)
    with engine.begin() as connection:
        connection.execute(sa.text("GRANT SELECT ON inference_logs, labels TO eval_reader"))
    engine.dispose()
    reader_url = admin_url.set(database="no_temp", username="eval_reader")
    reader_url = reader_url.render_as_string(False)

    # The premise: this role really cannot create a temporary table.
    reader = sa.create_engine(reader_url)
    with reader.connect() as connection, pytest.raises(sa.exc.ProgrammingError, match="temp"):
        connection.execute(sa.text("CREATE TEMPORARY TABLE probe AS SELECT 1 AS x"))
    reader.dispose()

    def run(url: str):
        spec = parse_spec(base_spec(url, slices=["device"]), source="spec.yaml")
        evaluation = evaluate(spec, WEEK)
        return evaluation, evaluation.decide()

    duck, duck_verdict = run(duck_url)
    pg, pg_verdict = run(reader_url)

    assert "FROM eval_window_" in duck.queries["sufficient_statistics"]  # DuckDB: temp table
    assert "eval_window_" not in pg.queries["sufficient_statistics"]  # the fallback
    assert "eval_window_" not in json.dumps(pg.queries)
    assert pg.fingerprint == duck.fingerprint
    for name in ("metrics", "comparison", "drift", "coverage"):
        left, right = getattr(duck, name), getattr(pg, name)
        if left is None:
            assert right is None
            continue
        pd.testing.assert_frame_equal(left, right, check_exact=False, rtol=1e-9, atol=1e-12)
    assert pg_verdict.to_dict() == duck_verdict.to_dict()

    # And the numbers are the rows' own: accuracy of v1 over the labeled rows, by pandas.
    rows = evaluated_rows(predictions, labels)
    v1 = rows[(rows["model_version"] == "v1") & rows["label"].notna()]
    expected = ((v1["score"] >= 0.5).astype(int) == v1["label"].astype(int)).mean()
    accuracy = _row(pg.metrics, model_version="v1", slice="overall", metric="accuracy")
    assert (accuracy["n"], accuracy["value"]) == (len(v1), pytest.approx(expected, abs=1e-12))
