"""Benchmark: one weekly evaluation with eval-pipelines vs. pandas + scikit-learn vs. a bare scan.

Run it with ``make bench`` (which runs ``.venv/bin/python benchmarks/bench_evaluation.py``), or
directly::

    .venv/bin/python benchmarks/bench_evaluation.py                   # 1M prediction rows
    .venv/bin/python benchmarks/bench_evaluation.py --rows 10000000   # 10M rows
    .venv/bin/python benchmarks/bench_evaluation.py --rows 10000000 --skip-pandas
    .venv/bin/python benchmarks/bench_evaluation.py --profile         # + cProfile of ours
    .venv/bin/python benchmarks/bench_evaluation.py --workdir /tmp/b  # keep/reuse the warehouse

One invocation builds the synthetic demo warehouse (``eval_pipelines.demo``, ``--rows``
prediction rows over 8 weeks, both model versions) in a temporary directory, untimed, and then
measures three approaches to the same week (the demo week, 2026-11-16, with the 4 weeks
before it as the drift reference), each in its own fresh Python subprocess so that the peak
RSS (``VmHWM``, read inside the child) belongs to that approach alone:

``ours``
    ``eval_pipelines.pipeline.evaluate(spec, week)`` plus ``gates.decide(...)``: validation,
    sliced metrics with bucket-bootstrap CIs for every metric and slice, the paired
    comparison and drift, all from aggregate SQL pushed down to DuckDB.
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
``bare scan``
    A floor: DuckDB reads every value of the columns ``ours`` reads (window: id, timestamp,
    version, score, slice columns, drift features; reference weeks: timestamp, version,
    score, drift features; the labels of the window's ids) and aggregates them trivially.

The slices default to the demo spec's plus more crosses (264 slice groups; ``--slices demo``
gives the demo's 39, or pass a JSON list). "wall s" is the work inside the child (imports
excluded); "process s" is the whole child, interpreter start and imports included.

Targets (at 10M rows on 2 cores): ``ours`` at least 50x faster than the pandas version,
within 10x of the bare scan, and peak RSS below 1 GB, roughly flat from 1M to 10M rows
(the aggregate result's size should depend on slices and bins, not on rows).

Timings are wall-clock: on a shared machine other work skews them (the script prints the
load average before and after). A consistency check prints a few overall numbers from ours
next to the pandas version's. This script only prints; it never asserts a time, so it is not
a test.
"""

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_SPEC = ROOT / "evals" / "fraud_detector.yaml"
WEEK = "2026-11-16"
RESULT_MARKER = "BENCH_RESULT "

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
    types = dict(con.execute("SELECT column_name, data_type FROM duckdb_columns()").fetchall())
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


def child_main(approach: str, config_path: str, profile: bool) -> None:
    config = json.loads(Path(config_path).read_text())
    run = {"ours": child_ours, "pandas": child_pandas, "bare": child_bare}[approach]
    if profile:
        import cProfile
        import importlib
        import io
        import pstats

        # Import the engine first so the profile shows the work, not module loading.
        for module in ("eval_pipelines.gates", "eval_pipelines.pipeline", "eval_pipelines.drift"):
            importlib.import_module(module)

        profiler = cProfile.Profile()
        result = profiler.runcall(run, config)
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("cumulative").print_stats(r"eval_pipelines", 25)
        stats.sort_stats("tottime").print_stats(20)
        result["profile"] = text.getvalue()
    else:
        result = run(config)
    result["peak_rss_mb"] = peak_rss_mb()
    emit(result)


# ---------------------------------------------------------------------------- parent
def run_child(approach: str, config_path: Path, profile: bool = False) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", approach]
    command += ["--config", str(config_path)] + (["--profile"] if profile else [])
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
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


def engine_fingerprint() -> str:
    """Short hash of the engine's Python and SQL sources, to tell benchmarked versions apart."""
    digest = hashlib.sha256()
    for path in sorted([*ROOT.glob("eval_pipelines/*.py"), *ROOT.glob("sql/*.sql")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def build_config(args: argparse.Namespace, workdir: Path, db: Path) -> dict:
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


def parse_slices(text: str) -> list:
    if text in SLICE_PRESETS:
        return SLICE_PRESETS[text]
    value = json.loads(text)
    if not isinstance(value, list):
        raise argparse.ArgumentTypeError("--slices: a preset name or a JSON list")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="prediction rows (8 weeks)")
    parser.add_argument("--skip-pandas", action="store_true", help="skip the pandas baseline")
    parser.add_argument(
        "--slices",
        type=parse_slices,
        default=SLICE_PRESETS["wide"],
        help="'wide' (default, 264 groups), 'demo' (39 groups) or a JSON list of slices",
    )
    parser.add_argument("--week", default=WEEK, help="the evaluated week (a Monday)")
    parser.add_argument("--workdir", type=Path, help="keep the warehouse here (default: temp)")
    parser.add_argument("--profile", action="store_true", help="also cProfile ours (extra run)")
    parser.add_argument("--child", choices=["ours", "pandas", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        child_main(args.child, args.config, args.profile)
        return 0

    sys.path.insert(0, str(ROOT))
    from eval_pipelines.demo import build_demo_warehouse

    print(f"machine: {machine()}")
    engine = engine_fingerprint()
    print(f"engine sources: sha256 {engine} (eval_pipelines/*.py, sql/*.sql)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > 0.5:
        print(f"warning: load average {load:.2f} before starting; other work skews the timings")
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        db = workdir / f"warehouse_{args.rows}.duckdb"
        started = time.perf_counter()
        if not db.exists():
            build_demo_warehouse(db, rows=args.rows)
        print(
            f"warehouse: {args.rows:,} prediction rows over 8 weeks, {db.stat().st_size / 1e6:.0f}"
            f" MB, ready in {time.perf_counter() - started:.1f} s (not timed below)"
        )
        config = build_config(args, workdir, db)
        config_path = workdir / "bench_config.json"
        config_path.write_text(json.dumps(config))
        print(
            f"week {args.week} (window {config['window_start']} .. {config['window_end']}, "
            f"drift reference from {config['ref_start']}); slices: {json.dumps(args.slices)}"
        )

        results = {"bare scan": run_child("bare", config_path)}
        results["ours"] = run_child("ours", config_path)
        if not args.skip_pandas:
            results["pandas + sklearn"] = run_child("pandas", config_path)
        profile = run_child("ours", config_path, profile=True) if args.profile else None

    ours = results["ours"]
    if hasattr(os, "getloadavg"):
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load average after the runs (1/5/15 min): {load}")
    print(f"slice groups: {ours['slice_groups']} (ours)", end="")
    if "pandas + sklearn" in results:
        print(f", {results['pandas + sklearn']['slice_groups']} (pandas)", end="")
    print(f"; verdict: {ours['decision']}")
    if ours["engine"] != engine:
        print(f"note: the engine sources changed during the run (ours ran {ours['engine']})")
    print(f"bare scan rows: {results['bare scan']['rows_scanned']}")
    print()
    print(f"| approach | wall s | process s | peak RSS MB |   ({args.rows:,} rows)")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['wall_s']:.2f} | {r['process_s']:.2f} | {r['peak_rss_mb']:.0f} |")
    print()
    bare = results["bare scan"]["wall_s"]
    if "pandas + sklearn" in results:
        speedup = results["pandas + sklearn"]["wall_s"] / ours["wall_s"]
        print(f"pandas / ours (speed-up):  {speedup:.1f}x   (target >= 50x at 10M rows)")
    else:
        print("pandas / ours (speed-up):  skipped (--skip-pandas)")
    print(f"ours / bare scan:          {ours['wall_s'] / bare:.1f}x   (target <= 10x)")
    print(f"ours peak RSS:             {ours['peak_rss_mb']:.0f} MB   (target < 1024 MB)")
    print()
    print("ours, seconds per step (evaluation.timings):")
    for step, seconds in ours["timings"].items():
        print(f"  {step:<14} {seconds:8.2f}")
    print()
    print("consistency check (overall, ours vs pandas):")
    other = results.get("pandas + sklearn")
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
    if profile is not None:
        print()
        print(f"cProfile of ours (separate run, {profile['wall_s']:.1f} s with profiling):")
        print(profile["profile"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
