"""Benchmark: one weekly evaluation with eval-pipelines vs. pandas + scikit-learn vs. a bare scan.

Run it with ``make bench`` (which runs ``.venv/bin/python benchmarks/bench_evaluation.py``), or
directly::

    .venv/bin/python benchmarks/bench_evaluation.py                   # 1M prediction rows
    .venv/bin/python benchmarks/bench_evaluation.py --rows 10000000   # 10M rows over 8 weeks
    .venv/bin/python benchmarks/bench_evaluation.py --rows 10000000 --skip-pandas
    .venv/bin/python benchmarks/bench_evaluation.py --profile         # + cProfile of ours
    .venv/bin/python benchmarks/bench_evaluation.py --workdir /tmp/b  # keep/reuse the warehouse

The 10M and 100M tables of issue 12 (a week of 5M / 50M requests x 2 versions, the demo spec's
4 slice specs, all metrics, 200 replicates, paired comparison, drift, all input checks)::

    .venv/bin/python benchmarks/bench_evaluation.py --workdir /tmp/bw --week-rows 10M 100M
    .venv/bin/python benchmarks/bench_evaluation.py --workdir /tmp/bw --week-rows 10M \
        --skip-pandas --sql-profile                                 # + DuckDB's per-query profile

``--rows N`` builds the synthetic demo warehouse (``eval_pipelines.demo``, ``N`` prediction rows
over 8 weeks, both model versions, ``WORKDIR/warehouse_N.duckdb``). ``--week-rows N [N ...]``
builds, per size, ``WORKDIR/demo_week_N.duckdb``: the evaluated week and the spec's drift
reference weeks before it (4 for the demo spec, so 5 weeks from 2026-10-19), ``N`` prediction
rows in every week. A warehouse that exists in ``--workdir`` is reused; building it is never
timed. Each size then measures three approaches to the same week (the demo week, 2026-11-16,
with the 4 weeks before it as the drift reference), each in its own fresh Python subprocess so
that the peak RSS (``VmHWM``, read inside the child) belongs to that approach alone:

``ours``
    ``eval_pipelines.pipeline.evaluate(spec, week)`` plus ``gates.decide(...)``: validation,
    sliced metrics with bucket-bootstrap CIs for every metric and slice, the paired
    comparison and drift, all from aggregate SQL pushed down to DuckDB, with the default
    settings (DuckDB's memory cap included).
``pandas``
    What a user writes by hand: the window's joined rows (labels within ``max_delay``) read
    into pandas, then for every slice group and both versions the 9 metrics with
    scikit-learn (ECE in numpy), a 200-replicate row-level bootstrap CI of the overall ROC
    AUC per version, and drift of the drift features and the score (candidate version's
    rows), reference weeks against the current week: PSI (reference deciles; categories for
    a categorical feature), KS via ``scipy.stats.ks_2samp`` and Wasserstein via
    ``scipy.stats.wasserstein_distance`` (numeric features). Reasonably vectorised, not
    micro-optimised.
    It does less than ``ours`` (no CIs on sliced metrics, no paired tests, no validation).
    Skipped when the evaluated week has more than ``--pandas-max-rows`` rows (default 20M:
    its rows in pandas would not fit the memory target, nor finish in a useful time).
``bare scan``
    A floor: DuckDB reads every value of the columns ``ours`` reads (window: id, timestamp,
    version, score, slice columns, drift features; reference weeks: timestamp, version,
    score, drift features; the labels of the window's ids) and aggregates them trivially.

The slices default to the demo spec's plus more crosses with ``--rows`` (264 slice groups;
``--slices demo`` gives the demo's 39, or pass a JSON list), and to the demo spec's own 4 slice
specs with ``--week-rows``. "wall s" is the work inside the child (imports excluded); "process
s" is the whole child, interpreter start and imports included. The run ends with one markdown
table, a row per size, and the targets: ``ours`` within 10x the bare scan (wall, and whole
process), at least 50x faster than the pandas version, a 100M-row week within 120 s (whole
process), peak RSS below 1 GB (the aggregate result's size should depend on slices and bins,
not on rows).

``--sql-profile`` runs ``ours`` once more (untimed, in its own subprocess) with DuckDB's JSON
profiler writing one file per statement (ours and Great Expectations', under
``WORKDIR/sql_profile_N/`` or a temporary folder) and prints, for every statement over 0.5 s,
its time, the bytes it spilled, what it is for (the ``query_log`` purpose it ran under) and its
heaviest operators with their row counts: where the remaining seconds go
(``--sql-profile-min-s`` lowers the 0.5 s threshold).

Timings are wall-clock: on a shared machine other work skews them (the script prints the
load average before and after). A consistency check prints a few overall numbers from ours
next to the pandas version's. This script only prints; it never asserts a time, so it is not
a test.
"""

import argparse
import datetime as dt
import hashlib
import itertools
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEMO_SPEC = ROOT / "evals" / "fraud_detector.yaml"
WEEK = "2026-11-16"
RESULT_MARKER = "BENCH_RESULT "
DEMO_WEEKS = 8  # weeks of the --rows warehouse (eval_pipelines.demo.DEMO_NUM_WEEKS)
PANDAS_MAX_ROWS = 20_000_000
SQL_PROFILE_MIN_S = 0.5  # --sql-profile prints the statements that took at least this long
SQL_PROFILE_OPERATOR_SHARE = 0.05  # ... and their operators over this share of the statement
TARGETS = {"bare": 10.0, "pandas": 50.0, "seconds_100m": 120.0, "rss_mb": 1024.0}

SLICE_PRESETS: dict[str, list] = {
    "demo": ["country", "device", "plan", ["country", "device"]],
    "wide": [
        "country",
        "device",
        "plan",
        "merchant_category",
        ["country", "device"],
        ["country", "plan"],
        ["country", "merchant_category"],
        ["device", "plan"],
        ["device", "merchant_category"],
        ["plan", "merchant_category"],
        ["country", "device", "plan"],
    ],
}


# ---------------------------------------------------------------------------- child helpers
def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def emit(result: dict) -> None:
    print(RESULT_MARKER + json.dumps(result, default=float), flush=True)


def child_ours(config: dict) -> dict:
    import importlib

    from eval_pipelines.pipeline import evaluate
    from eval_pipelines.spec import load_spec
    from eval_pipelines.warehouse import Warehouse

    spec = load_spec(config["spec_path"])
    engine = engine_fingerprint()
    importlib.import_module("duckdb")  # imported lazily by the engine; the others import it early
    started = time.perf_counter()
    with Warehouse(spec.warehouse) as warehouse:
        evaluation = evaluate(spec, config["week"], warehouse)
    verdict = evaluation.decide()
    wall = time.perf_counter() - started
    metrics = evaluation.metrics
    overall = metrics[metrics["slice"] == "overall"].set_index(["model_version", "metric"])
    ci = {
        v: [overall.loc[(v, "roc_auc"), "ci_low"], overall.loc[(v, "roc_auc"), "ci_high"]]
        for v in config["versions"]
    }
    return {
        "wall_s": wall,
        "engine": engine,
        "timings": evaluation.timings,
        "input_statements": evaluation.input_statements,
        "queries": len(evaluation.query_costs),
        "slice_groups": int(metrics["slice"].nunique()),
        "decision": verdict.decision,
        "overall": {
            f"{v}/{m}": float(overall.loc[(v, m), "value"])
            for v in config["versions"]
            for m in ("roc_auc", "recall", "ece")
        },
        "roc_auc_ci": ci,
        "psi": {
            row.feature: float(row.statistic)
            for row in evaluation.drift.itertuples()
            if row.method == "psi"
        },
    }


def child_pandas(config: dict) -> dict:
    import duckdb
    import numpy as np
    import pandas as pd
    from scipy import stats
    from sklearn import metrics as skm

    def ece(y: np.ndarray, score: np.ndarray, bins: int) -> float:
        """Expected calibration error over equal-width bins."""
        index = np.minimum((score * bins).astype(int), bins - 1)
        score_sum = np.bincount(index, weights=score, minlength=bins)
        positives = np.bincount(index, weights=y, minlength=bins)
        return float(np.abs(score_sum - positives).sum() / len(y)) if len(y) else float("nan")

    started = time.perf_counter()
    con = duckdb.connect(config["db"], read_only=True)
    slice_columns = config["slice_columns"]
    threshold = config["threshold"]
    start, end, ref_start = config["window_start"], config["window_end"], config["ref_start"]

    # 1. The window's rows joined with their labels (mature within max_delay).
    rows = con.sql(
        f"""
        SELECT p.model_version, p.score, {", ".join(f"p.{c}" for c in slice_columns)},
               CASE WHEN l.labeled_at >= p.ts
                     AND l.labeled_at <= p.ts + INTERVAL '{config["max_delay_s"]} seconds'
                    THEN l.label END AS label
        FROM inference_logs p LEFT JOIN labels l ON l.prediction_id = p.prediction_id
        WHERE p.ts >= TIMESTAMP '{start}' AND p.ts < TIMESTAMP '{end}'
        """
    ).df()
    labeled = rows[rows["label"].notna()].copy()
    labeled["label"] = labeled["label"].astype(int)
    labeled["predicted"] = (labeled["score"] >= threshold).astype(int)

    def all_metrics(y: np.ndarray, score: np.ndarray, predicted: np.ndarray) -> dict:
        out = {
            "accuracy": skm.accuracy_score(y, predicted),
            "precision": skm.precision_score(y, predicted, zero_division=np.nan),
            "recall": skm.recall_score(y, predicted, zero_division=np.nan),
            "f1": skm.f1_score(y, predicted, zero_division=np.nan),
            "log_loss": skm.log_loss(y, score, labels=[0, 1]),
            "brier": skm.brier_score_loss(y, score, pos_label=1),
            "ece": ece(y, score, config["calibration_bins"]),
        }
        if 0 < y.sum() < len(y):
            out["roc_auc"] = skm.roc_auc_score(y, score)
            out["pr_auc"] = skm.average_precision_score(y, score)
        else:
            out["roc_auc"] = out["pr_auc"] = float("nan")
        return out

    # 2. Nine metrics per slice group and version.
    results = []
    groups = set()
    for cross in config["slice_crosses"]:
        keys = [*cross, "model_version"]
        for key, part in labeled.groupby(keys, observed=True, sort=False):
            key = key if isinstance(key, tuple) else (key,)
            groups.add((tuple(cross), key[:-1]))
            y = part["label"].to_numpy()
            values = all_metrics(y, part["score"].to_numpy(), part["predicted"].to_numpy())
            results.append({"cross": cross, "key": key, "n": len(part), **values})
    table = pd.DataFrame(results)

    # 3. Row-level bootstrap CI of the overall ROC AUC per version.
    rng = np.random.default_rng(config["seed"])
    tail = (1 - config["level"]) / 2 * 100
    ci = {}
    for version, part in labeled.groupby("model_version", observed=True):
        y, score = part["label"].to_numpy(), part["score"].to_numpy()
        replicates = []
        for _ in range(config["replicates"]):
            index = rng.integers(0, len(y), len(y))
            replicates.append(skm.roc_auc_score(y[index], score[index]))
        ci[str(version)] = np.percentile(replicates, [tail, 100 - tail]).tolist()

    # 4. Drift of the features and the score: reference weeks vs. the current week.
    features = config["drift_features"]
    drift_rows = con.sql(
        f"""
        SELECT ts < TIMESTAMP '{start}' AS is_reference, {", ".join(features)}
        FROM inference_logs
        WHERE ts >= TIMESTAMP '{ref_start}' AND ts < TIMESTAMP '{end}'
          AND model_version = '{config["drift_version"]}'
        """
    ).df()
    reference = drift_rows[drift_rows["is_reference"]]
    current = drift_rows[~drift_rows["is_reference"]]

    def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
        p = np.clip(ref_counts / ref_counts.sum(), 1e-4, None)
        q = np.clip(cur_counts / cur_counts.sum(), 1e-4, None)
        return float(np.sum((q - p) * np.log(q / p)))

    drift = {}
    for feature in features:
        ref, cur = reference[feature], current[feature]
        if pd.api.types.is_numeric_dtype(ref):
            edges = np.unique(np.quantile(ref, np.linspace(0, 1, 11)))
            edges[0], edges[-1] = -np.inf, np.inf
            drift[feature] = {
                "psi": psi(np.histogram(ref, edges)[0], np.histogram(cur, edges)[0]),
                "ks": stats.ks_2samp(ref, cur).statistic,
                "wasserstein": stats.wasserstein_distance(ref, cur) / (ref.std(ddof=0) or 1.0),
            }
        else:
            counts = pd.concat([ref.value_counts(), cur.value_counts()], axis=1).fillna(0)
            drift[feature] = {
                "psi": psi(counts.iloc[:, 0].to_numpy(), counts.iloc[:, 1].to_numpy())
            }
    wall = time.perf_counter() - started

    overall = table[table["cross"].map(len) == 0]
    overall = overall.set_index(overall["key"].map(lambda k: k[-1]))
    return {
        "wall_s": wall,
        "slice_groups": len(groups),
        "overall": {
            f"{v}/{m}": float(overall.loc[v, m])
            for v in config["versions"]
            for m in ("roc_auc", "recall", "ece")
        },
        "roc_auc_ci": ci,
        "psi": {f: d["psi"] for f, d in drift.items()},
    }


def child_bare(config: dict) -> dict:
    import duckdb

    def touch(column: str, kind: str) -> str:
        # Aggregates that need every value: a hash sum for strings, sums/maxima otherwise.
        if kind in ("VARCHAR",):
            return f"sum(hash({column}))"
        if kind.startswith("TIMESTAMP"):
            return f"max({column})"
        return f"sum({column})"

    con = duckdb.connect(config["db"], read_only=True)
    # The demo warehouse holds other tasks' tables too (some with a BIGINT prediction_id).
    types = dict(
        con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE table_name = 'inference_logs'"
        ).fetchall()
    )
    start, end, ref_start = config["window_start"], config["window_end"], config["ref_start"]
    window_columns = list(
        dict.fromkeys(
            ["prediction_id", "ts", "model_version", "score"]
            + config["slice_columns"]
            + config["drift_features"]
        )
    )
    reference_columns = list(dict.fromkeys(["ts", "model_version", *config["drift_features"]]))
    queries = {
        "window": f"""
            SELECT count(*), {", ".join(touch(c, types[c]) for c in window_columns)}
            FROM inference_logs
            WHERE ts >= TIMESTAMP '{start}' AND ts < TIMESTAMP '{end}'""",
        "reference": f"""
            SELECT count(*), {", ".join(touch(c, types[c]) for c in reference_columns)}
            FROM inference_logs
            WHERE ts >= TIMESTAMP '{ref_start}' AND ts < TIMESTAMP '{start}'""",
        # Labels of the window's ids (ids are time-ordered, so DuckDB prunes row groups).
        "labels": f"""
            WITH ids AS (
                SELECT min(prediction_id) AS lo, max(prediction_id) AS hi FROM inference_logs
                WHERE ts >= TIMESTAMP '{start}' AND ts < TIMESTAMP '{end}')
            SELECT count(*), sum(hash(prediction_id)), sum(label), max(labeled_at)
            FROM labels, ids WHERE prediction_id BETWEEN ids.lo AND ids.hi""",
    }
    started = time.perf_counter()
    counts = {name: con.execute(sql).fetchone()[0] for name, sql in queries.items()}
    return {"wall_s": time.perf_counter() - started, "rows_scanned": counts}


class SqlProfiler:
    """DuckDB's JSON profiler writing one file per statement of an evaluation, each named by
    the :class:`~eval_pipelines.warehouse.Warehouse` purpose it ran under.

    :meth:`install` patches, for this process only, ``Warehouse._duckdb`` (every query of ours
    takes the connection from it: the profiler is switched on and pointed at a new file just
    before the statement), ``Warehouse._measured`` and ``Warehouse.measured`` (they name the
    purpose: a query of ours, or a Great Expectations validation) and ``duckdb_engine``'s
    ``CursorWrapper.execute`` (Great Expectations' queries go through SQLAlchemy on the same
    DuckDB session, so they get a file each too). ``$EVAL_DUCKDB_PROFILING`` must be off, or
    the Warehouse's own lightweight profiler would narrow the metrics DuckDB records.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.purposes: dict[str, str] = {}  # file name -> purpose
        self._numbers = itertools.count()
        self._purpose: list[str] = []
        self._enabled: set[int] = set()

    def point(self, connection: Any) -> None:
        """Profile ``connection``'s next statement into a new file."""
        if id(connection) not in self._enabled:
            connection.execute("PRAGMA enable_profiling = 'json'")
            self._enabled.add(id(connection))
        name = f"{next(self._numbers):04d}.json"
        self.purposes[name] = self._purpose[-1] if self._purpose else "(outside a query)"
        connection.execute(f"PRAGMA profiling_output = '{self.directory / name}'")

    def install(self) -> None:
        import duckdb_engine

        from eval_pipelines.warehouse import Warehouse

        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob("*.json"):
            stale.unlink()
        profiler = self
        connect = contextmanager(Warehouse._duckdb.__wrapped__)

        @contextmanager
        def profiled_duckdb(warehouse: Warehouse) -> Iterator[Any]:
            with connect(warehouse) as connection:
                profiler.point(connection)
                yield connection

        def named(method: Any) -> Any:
            original = contextmanager(method.__wrapped__)

            @contextmanager
            def wrapper(warehouse: Warehouse, purpose: str, *args: Any) -> Iterator[Any]:
                profiler._purpose.append(purpose)
                try:
                    with original(warehouse, purpose, *args) as value:
                        yield value
                finally:
                    profiler._purpose.pop()

            return wrapper

        Warehouse._duckdb = profiled_duckdb  # type: ignore[method-assign]
        Warehouse._measured = named(Warehouse._measured)  # type: ignore[method-assign]
        Warehouse.measured = named(Warehouse.measured)  # type: ignore[method-assign]
        execute = duckdb_engine.CursorWrapper.execute

        def profiled_execute(cursor: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
            profiler.point(cursor._CursorWrapper__c)
            return execute(cursor, statement, *args, **kwargs)

        duckdb_engine.CursorWrapper.execute = profiled_execute

    def statements(
        self,
        min_seconds: float = SQL_PROFILE_MIN_S,
        operator_share: float = SQL_PROFILE_OPERATOR_SHARE,
    ) -> list[dict]:
        """Every profiled statement that took at least ``min_seconds``, in the order run, with
        its operators that took at least ``operator_share`` of its time (DuckDB 2.x JSON: a
        ``query``, ``system`` and ``operator`` tree; 1.x's flat layout read where it differs)."""
        found = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                profile = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # a statement still writing, or a profile DuckDB left empty
            query = profile.get("query", profile)
            system = profile.get("system", profile)
            seconds = float(query.get("total_time") or query.get("latency") or 0.0)
            if seconds < min_seconds:
                continue
            operators: list[dict] = []
            for root in profile.get("operator", profile.get("children", [])):
                _walk_operators(root, 0, operators)
            found.append(
                {
                    "file": path.name,
                    "purpose": self.purposes.get(path.name, "?"),
                    "seconds": seconds,
                    "cpu_s": float(query.get("cpu_time") or 0.0),
                    "spilled_bytes": int(system.get("total_bytes_spilled") or 0),
                    "peak_buffer_bytes": int(system.get("peak_buffer_memory") or 0),
                    "sql": " ".join(str(query.get("sql", query.get("query_name", ""))).split()),
                    "operators": [o for o in operators if o["seconds"] >= operator_share * seconds],
                }
            )
        return found


def _walk_operators(node: dict, depth: int, into: list[dict]) -> None:
    rows = node.get("operator_cardinality", node.get("intermediate_rows"))
    into.append(
        {
            "seconds": float(node.get("timing", node.get("operator_timing")) or 0.0),
            "depth": depth,
            "name": node.get("name", node.get("operator_name", node.get("operator_type", "?"))),
            "rows": rows,
            "detail": _operator_detail(node.get("extra_info") or {}),
        }
    )
    for child in node.get("children", []):
        _walk_operators(child, depth + 1, into)


def _operator_detail(extra: dict) -> str:
    """The few facts that identify an operator: its table, join, CTE or grouping."""
    parts = []
    for key in ("Table", "CTE Name", "Join Type", "Conditions", "Filters"):
        if key in extra:
            value = extra[key]
            value = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            parts.append(f"{key.lower()}: {value}")
    if "Groups" in extra:
        groups = extra["Groups"]
        parts.append(f"{len(groups) if isinstance(groups, list) else 1} group keys")
    if "Aggregates" in extra and isinstance(extra["Aggregates"], list):
        parts.append(f"{len(extra['Aggregates'])} aggregates")
    text = "; ".join(parts)
    return text if len(text) <= 110 else text[:107] + "..."


def child_main(
    approach: str, config_path: str, profile: bool, sql_profile: str | None = None
) -> None:
    config = json.loads(Path(config_path).read_text())
    run = {"ours": child_ours, "pandas": child_pandas, "bare": child_bare}[approach]
    profiler = SqlProfiler(Path(sql_profile)) if sql_profile else None
    if profiler is not None:
        profiler.install()
    if profile:
        import cProfile
        import importlib
        import io
        import pstats

        # Import the engine first so the profile shows the work, not module loading.
        for module in ("eval_pipelines.gates", "eval_pipelines.pipeline", "eval_pipelines.drift"):
            importlib.import_module(module)

        cprofile = cProfile.Profile()
        result = cprofile.runcall(run, config)
        text = io.StringIO()
        stats = pstats.Stats(cprofile, stream=text)
        stats.sort_stats("cumulative").print_stats(r"eval_pipelines", 25)
        stats.sort_stats("tottime").print_stats(20)
        result["profile"] = text.getvalue()
    else:
        result = run(config)
    if profiler is not None:
        result["sql_profile"] = profiler.statements(min_seconds=0.0)
    result["peak_rss_mb"] = peak_rss_mb()
    emit(result)


# ---------------------------------------------------------------------------- parent
def run_child(
    approach: str, config_path: Path, profile: bool = False, sql_profile: Path | None = None
) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", approach]
    command += ["--config", str(config_path)] + (["--profile"] if profile else [])
    env = None
    if sql_profile is not None:
        command += ["--sql-profile-dir", str(sql_profile)]
        # The Warehouse's own profiler would narrow DuckDB's metrics to rows and bytes scanned.
        env = {**os.environ, "EVAL_DUCKDB_PROFILING": "off"}
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    elapsed = time.perf_counter() - started
    lines = [x for x in proc.stdout.splitlines() if x.startswith(RESULT_MARKER)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"{approach}: child failed with exit code {proc.returncode}")
    result = json.loads(lines[-1][len(RESULT_MARKER) :])
    result["process_s"] = elapsed
    return result


def machine() -> str:
    import duckdb
    import numpy
    import pandas

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = ""
    try:
        total_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {total_kb / 1024**2:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{usable} cores ({cpu}){memory}; Python {platform.python_version()}, "
        f"duckdb {duckdb.__version__}, pandas {pandas.__version__}, numpy {numpy.__version__}; "
        f"{platform.system()} {platform.release()}"
    )


def engine_sources() -> tuple[Path, Path]:
    """The folders of the engine this interpreter imports: its Python package and its SQL
    templates (``eval_pipelines.sql``; an editable install may map it to another checkout)."""
    import importlib.resources

    import eval_pipelines

    return (
        Path(eval_pipelines.__file__).resolve().parent,
        Path(str(importlib.resources.files("eval_pipelines.sql"))).resolve(),
    )


def engine_fingerprint() -> str:
    """Short hash of the imported engine's Python and SQL sources, to tell benchmarked
    versions apart."""
    package, sql = engine_sources()
    digest = hashlib.sha256()
    for path in sorted([*package.glob("*.py"), *sql.glob("*.sql")], key=lambda p: p.name):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def build_config(args: argparse.Namespace, workdir: Path, db: Path) -> dict:
    """The children's configuration for one warehouse; the spec (the demo's, pointed at ``db``,
    with ``args.slices``) is written to ``workdir``."""
    import yaml

    from eval_pipelines.spec import load_spec
    from eval_pipelines.windows import reference_window, week_window

    raw = yaml.safe_load(DEMO_SPEC.read_text())
    raw["warehouse"] = f"duckdb:///{db}"
    raw["slices"] = args.slices
    spec_path = workdir / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    spec = load_spec(spec_path)
    assert spec.drift is not None and spec.compare is not None
    window = week_window(args.week)
    reference = reference_window(window, spec.drift.reference_weeks)
    drift_features = list(dict.fromkeys([*spec.drift.features, spec.predictions.score]))
    stamp = "%Y-%m-%d %H:%M:%S"
    return {
        "db": str(db),
        "spec_path": str(spec_path),
        "week": args.week,
        "window_start": window.start.strftime(stamp),
        "window_end": window.end.strftime(stamp),
        "ref_start": reference.start.strftime(stamp),
        "max_delay_s": int(spec.labels.max_delay.total_seconds()),
        "threshold": spec.threshold,
        "slice_crosses": [list(c) for c in spec.slice_crosses],
        "slice_columns": spec.slice_columns,
        "drift_features": drift_features,
        "drift_version": spec.compare.candidate,
        "versions": [spec.compare.baseline, spec.compare.candidate],
        "calibration_bins": spec.calibration_bins,
        "replicates": spec.confidence.replicates,
        "seed": spec.confidence.seed,
        "level": spec.confidence.level,
    }


def week_warehouse_layout(week: str) -> tuple[dt.date, int]:
    """``(start, weeks)`` of a ``--week-rows`` warehouse: the demo spec's drift reference weeks
    and the evaluated week after them (2026-10-19 and 5 for the demo week)."""
    from eval_pipelines.spec import load_spec
    from eval_pipelines.windows import reference_window, week_window

    spec = load_spec(DEMO_SPEC)
    assert spec.drift is not None
    window = week_window(week)
    reference = reference_window(window, spec.drift.reference_weeks)
    return reference.start.date(), spec.drift.reference_weeks + 1


def prepare_warehouse(week_rows: int | None, rows: int, week: str, workdir: Path) -> Path:
    """The warehouse of one size in ``workdir``, reused when it exists, else built (untimed):
    ``--week-rows`` (``week_rows`` rows in every week of the evaluated week and its drift
    reference) or ``--rows`` (``rows`` rows over the demo's 8 weeks)."""
    from eval_pipelines.demo import build_demo_warehouse

    start, weeks = week_warehouse_layout(week)
    started = time.perf_counter()
    if week_rows is not None:
        db = workdir / f"demo_week_{week_rows}.duckdb"
        if not db.exists():
            build_demo_warehouse(
                db, rows=week_rows * weeks, start=start, weeks=weeks, other_tasks=False
            )
        shape = f"{week_rows:,} prediction rows in each of {weeks} weeks from {start}"
    else:
        db = workdir / f"warehouse_{rows}.duckdb"
        if not db.exists():
            build_demo_warehouse(db, rows=rows)
        shape = f"{rows:,} prediction rows over {DEMO_WEEKS} weeks"
    print(
        f"warehouse {db.name}: {shape}, {db.stat().st_size / 1e6:.0f} MB, ready in "
        f"{time.perf_counter() - started:.1f} s (not timed below)"
    )
    return db


def parse_count(text: str) -> int:
    """A row count: ``10000000``, ``10_000_000``, ``10M``, ``200k``, ``1.5M``, ``1G``."""
    match = re.fullmatch(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*([kKmMgG]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: a row count such as 10000000 or 10M")
    scale = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[match.group(2).lower()]
    value = float(match.group(1).replace("_", "")) * scale
    if value < 2 or value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of rows, at least 2")
    return int(value)


def parse_slices(text: str) -> list:
    if text in SLICE_PRESETS:
        return SLICE_PRESETS[text]
    value = json.loads(text)
    if not isinstance(value, list):
        raise argparse.ArgumentTypeError("--slices: a preset name or a JSON list")
    return value


def bench_size(
    args: argparse.Namespace, week_rows: int | None, workdir: Path, scratch: Path, engine: str
) -> dict:
    """Measure one size (``week_rows``, or ``--rows`` when None), print its details and return
    its row of the summary table."""
    size = week_rows if week_rows is not None else args.rows
    in_week = week_rows if week_rows is not None else args.rows // DEMO_WEEKS
    print()
    print(
        f"## {size:,} rows"
        + (" in the evaluated week" if week_rows else f" over {DEMO_WEEKS} weeks")
    )
    db = prepare_warehouse(week_rows, args.rows, args.week, workdir)
    folder = scratch / f"size_{size}"
    folder.mkdir(parents=True, exist_ok=True)
    config = build_config(args, folder, db)
    config_path = folder / "bench_config.json"
    config_path.write_text(json.dumps(config))
    print(
        f"week {args.week} (window {config['window_start']} .. {config['window_end']}, "
        f"drift reference from {config['ref_start']}); slices: {json.dumps(args.slices)}"
    )

    results = {"bare scan": run_child("bare", config_path)}
    results["ours"] = run_child("ours", config_path)
    skipped = None
    if args.skip_pandas:
        skipped = "--skip-pandas"
    elif in_week > args.pandas_max_rows:
        skipped = (
            f"{in_week:,} rows in the week > --pandas-max-rows {args.pandas_max_rows:,}: its "
            "rows in pandas would not fit the 1 GB memory target nor finish in a useful time"
        )
    else:
        results["pandas + sklearn"] = run_child("pandas", config_path)
    profile = run_child("ours", config_path, profile=True) if args.profile else None
    sql_profile = None
    if args.sql_profile:
        directory = (workdir if args.workdir else scratch) / f"sql_profile_{size}"
        sql_profile = run_child("ours", config_path, sql_profile=directory)
        sql_profile["directory"] = str(directory)

    ours = results["ours"]
    print(f"slice groups: {ours['slice_groups']} (ours)", end="")
    if "pandas + sklearn" in results:
        print(f", {results['pandas + sklearn']['slice_groups']} (pandas)", end="")
    print(f"; verdict: {ours['decision']}")
    if ours["engine"] != engine:
        print(f"note: the engine sources changed during the run (ours ran {ours['engine']})")
    print(f"bare scan rows: {results['bare scan']['rows_scanned']}")
    if skipped:
        print(f"pandas + sklearn: skipped ({skipped})")
    print()
    print(f"| approach | wall s | process s | peak RSS MB |   ({size:,} rows)")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['wall_s']:.2f} | {r['process_s']:.2f} | {r['peak_rss_mb']:.0f} |")
    print()
    print_steps(ours)
    print_consistency(ours, results.get("pandas + sklearn"))
    if profile is not None:
        print()
        print(f"cProfile of ours (separate run, {profile['wall_s']:.1f} s with profiling):")
        print(profile["profile"])
    if sql_profile is not None:
        print_sql_profile(sql_profile, args.sql_profile_min_s)

    bare, pandas = results["bare scan"], results.get("pandas + sklearn")
    return {
        "size": size,
        "week_rows": week_rows,
        "bare_s": bare["wall_s"],
        "bare_process_s": bare["process_s"],
        "ours_s": ours["wall_s"],
        "ours_process_s": ours["process_s"],
        "pandas_s": pandas["wall_s"] if pandas else None,
        "pandas_skipped": skipped,
        "rss_mb": ours["peak_rss_mb"],
    }


def print_steps(ours: dict) -> None:
    timings = ours["timings"]
    print("ours, seconds per step (evaluation.timings):")
    for step, seconds in timings.items():
        if "." not in step:
            print(f"  {step:<22} {seconds:8.2f}")
    checks = {k.split(".", 1)[1]: v for k, v in timings.items() if k.startswith("input_checks.")}
    if checks:
        print("ours, input checks, seconds per part (input_checks.*):")
        for part, seconds in checks.items():
            print(f"  {part:<22} {seconds:8.2f}")
    sent = ours.get("input_statements") or {}
    if sent:
        counts = ", ".join(f"{k} {v}" for k, v in sent.items())
        print(f"ours, input checks statements: {sum(sent.values())} ({counts})")
    if "queries" in ours:
        print(f"ours, warehouse queries in the query log: {ours['queries']}")
    print()


def print_consistency(ours: dict, other: dict | None) -> None:
    print("consistency check (overall, ours vs pandas):")
    for key, value in ours["overall"].items():
        theirs = f"{other['overall'][key]:.4f}" if other else "-"
        print(f"  {key:<14} {value:.4f}  {theirs}")
    for version, (low, high) in ours["roc_auc_ci"].items():
        theirs = "-"
        if other:
            theirs = "[{:.4f}, {:.4f}]".format(*other["roc_auc_ci"][version])
        print(f"  {version}/roc_auc CI [{low:.4f}, {high:.4f}]  {theirs}")
    for feature, value in ours["psi"].items():
        theirs = f"{other['psi'][feature]:.4f}" if other and feature in other["psi"] else "-"
        print(f"  psi {feature:<18} {value:.4f}  {theirs}")


def print_sql_profile(run: dict, min_seconds: float) -> None:
    every = run["sql_profile"]
    statements = [s for s in every if s["seconds"] >= min_seconds]
    total = sum(s["seconds"] for s in statements)
    print()
    print(
        f"DuckDB profile of ours (separate run, {run['wall_s']:.1f} s with profiling, "
        f"{len(every)} statements profiled, {sum(s['seconds'] for s in every):.1f} s in all, "
        f"files in {run['directory']}): {len(statements)} over {min_seconds} s, {total:.1f} s; "
        f"operators over {SQL_PROFILE_OPERATOR_SHARE:.0%} of their statement"
    )
    for statement in statements:
        sql = statement["sql"]
        print(
            f"- {statement['seconds']:.2f} s (cpu {statement['cpu_s']:.2f} s), spilled "
            f"{statement['spilled_bytes'] / 1e6:.0f} MB, peak buffers "
            f"{statement['peak_buffer_bytes'] / 1e6:.0f} MB: {statement['purpose']}"
        )
        print(f"    sql: {sql[:100]}{'...' if len(sql) > 100 else ''}")
        for operator in statement["operators"]:
            rows = f"{operator['rows']:,}" if isinstance(operator["rows"], int) else "?"
            detail = f"  ({operator['detail']})" if operator["detail"] else ""
            indent = "  " * min(operator["depth"], 12)
            print(
                f"    {operator['seconds']:6.2f} s {indent}{operator['name']} rows={rows}{detail}"
            )


def print_summary(rows: list[dict], week_mode: bool) -> None:
    """One markdown table, a row per size, then each target met or not."""
    print()
    head = "week rows" if week_mode else f"rows ({DEMO_WEEKS} weeks)"
    print(
        f"| {head} | bare scan s | bare process s | ours s | ours process s | ours / bare | "
        "ours / bare (process) | pandas s | pandas / ours | ours peak RSS MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        pandas = f"{r['pandas_s']:.1f}" if r["pandas_s"] is not None else "skipped"
        speedup = f"{r['pandas_s'] / r['ours_s']:.1f}x" if r["pandas_s"] is not None else "-"
        print(
            f"| {r['size']:,} | {r['bare_s']:.2f} | {r['bare_process_s']:.2f} | "
            f"{r['ours_s']:.2f} | {r['ours_process_s']:.2f} | {r['ours_s'] / r['bare_s']:.1f}x | "
            f"{r['ours_process_s'] / r['bare_process_s']:.1f}x | {pandas} | {speedup} | "
            f"{r['rss_mb']:.0f} |"
        )
    print()
    print(
        f"targets (issue 12): ours <= {TARGETS['bare']:.0f}x the bare scan (wall and whole "
        f"process), pandas >= {TARGETS['pandas']:.0f}x ours, a 100M-row week within "
        f"{TARGETS['seconds_100m']:.0f} s (whole process), peak RSS < {TARGETS['rss_mb']:.0f} MB"
    )
    for r in rows:
        checks = []
        ratio = r["ours_s"] / r["bare_s"]
        checks.append(f"ours / bare {ratio:.1f}x {_met(ratio <= TARGETS['bare'])}")
        ratio = r["ours_process_s"] / r["bare_process_s"]
        checks.append(f"process {ratio:.1f}x {_met(ratio <= TARGETS['bare'])}")
        if r["pandas_s"] is not None:
            speedup = r["pandas_s"] / r["ours_s"]
            checks.append(f"pandas / ours {speedup:.1f}x {_met(speedup >= TARGETS['pandas'])}")
        else:
            checks.append("pandas / ours not measured (skipped)")
        if r["week_rows"] is not None and r["week_rows"] >= 100_000_000:
            seconds = r["ours_process_s"]
            checks.append(f"{seconds:.0f} s {_met(seconds <= TARGETS['seconds_100m'])}")
        checks.append(f"RSS {r['rss_mb']:.0f} MB {_met(r['rss_mb'] < TARGETS['rss_mb'])}")
        print(f"- {r['size']:,}: " + "; ".join(checks))


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--rows", type=parse_count, default=1_000_000, help="prediction rows (8 weeks)"
    )
    parser.add_argument(
        "--week-rows",
        type=parse_count,
        nargs="+",
        metavar="N",
        help="prediction rows in the evaluated week (and in each drift reference week), one "
        "measurement per size, e.g. 10M 100M; replaces --rows",
    )
    parser.add_argument("--skip-pandas", action="store_true", help="skip the pandas baseline")
    parser.add_argument(
        "--pandas-max-rows",
        type=parse_count,
        default=PANDAS_MAX_ROWS,
        metavar="N",
        help="skip the pandas baseline when the evaluated week has more rows (default 20M)",
    )
    parser.add_argument(
        "--slices",
        type=parse_slices,
        default=None,
        help="'wide' (default with --rows, 264 groups), 'demo' (the demo spec's 4 slice specs, "
        "39 groups; default with --week-rows) or a JSON list of slices",
    )
    parser.add_argument("--week", default=WEEK, help="the evaluated week (a Monday)")
    parser.add_argument("--workdir", type=Path, help="keep the warehouse here (default: temp)")
    parser.add_argument("--profile", action="store_true", help="also cProfile ours (extra run)")
    parser.add_argument(
        "--sql-profile",
        action="store_true",
        help="also profile every DuckDB statement of ours (extra run) and print the slow ones",
    )
    parser.add_argument(
        "--sql-profile-min-s",
        type=float,
        default=SQL_PROFILE_MIN_S,
        metavar="S",
        help=f"--sql-profile prints the statements that took at least S s ({SQL_PROFILE_MIN_S})",
    )
    parser.add_argument("--child", choices=["ours", "pandas", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--sql-profile-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        child_main(args.child, args.config, args.profile, args.sql_profile_dir)
        return 0
    if args.slices is None:
        args.slices = SLICE_PRESETS["demo" if args.week_rows else "wide"]

    # After $PYTHONPATH and the installed package, as in the children (which do not add it).
    sys.path.append(str(ROOT))
    print(f"machine: {machine()}")
    engine = engine_fingerprint()
    package, sql = engine_sources()
    print(f"engine sources: sha256 {engine} ({package}/*.py, {sql}/*.sql)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > 0.5:
        print(f"warning: load average {load:.2f} before starting; other work skews the timings")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for week_rows in args.week_rows or [None]:
            rows.append(bench_size(args, week_rows, workdir, Path(tmp), engine))

    if hasattr(os, "getloadavg"):
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
        print()
        print(f"load average after the runs (1/5/15 min): {load}")
    print_summary(rows, week_mode=bool(args.week_rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
