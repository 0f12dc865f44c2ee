"""Benchmark: input validation of one week, GX suites + SQL checks vs. the SQL-only checks.

    .venv/bin/python benchmarks/bench_validation.py                    # 1M prediction rows
    .venv/bin/python benchmarks/bench_validation.py --rows 10000000    # 10M rows
    .venv/bin/python benchmarks/bench_validation.py --workdir /tmp/b   # keep/reuse the warehouse

Builds (untimed, or reuses ``--workdir/warehouse_<rows>.duckdb``) the synthetic demo warehouse
with ``benchmarks/bench_evaluation.py``'s builder (``eval_pipelines.demo``; ``--rows`` prediction
rows over 8 weeks, both model versions), then validates the demo week in a fresh Python process
per approach, so each peak RSS (``ru_maxrss``) belongs to that approach alone:

``full``
    What ``evaluate()`` runs before any metric: column and type checks, the window materialised
    into a temporary table, the per-version SQL aggregate, the generated Great Expectations
    suites (window, predictions, labels) through GX's SQL execution engine on the same DuckDB
    session, and the label uniqueness check.
``baseline``
    The SQL-only checks before GX (commit 94c94da): columns, the temporary window, the old
    per-version aggregate (ids, distinct ids, bad scores, bad labels, label timing) and label
    uniqueness.

"wall s" is the validation inside the child (imports excluded; the GX import is reported
separately); "process s" is the whole child. Prints only; asserts nothing.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEMO_SPEC = ROOT / "evals" / "fraud_detector.yaml"
WEEK = "2026-11-16"
MARKER = "BENCH_RESULT "

# The per-version aggregate of the SQL-only validation (sql/window_checks.sql before GX).
BASELINE_CHECKS = """
WITH win AS (
{window}
)
SELECT
    model_version,
    COUNT(*) AS n,
    COUNT(id) AS n_id,
    COUNT(DISTINCT id) AS n_distinct_id,
    SUM(CASE WHEN score IS NULL OR NOT (score >= 0 AND score <= 1) THEN 1 ELSE 0 END)
        AS n_bad_score,
    COUNT(label) AS n_labeled,
    SUM(CASE WHEN label IS NOT NULL AND label NOT IN (0, 1) THEN 1 ELSE 0 END) AS n_bad_label,
    SUM(CASE WHEN label_excluded = 'before_prediction' THEN 1 ELSE 0 END)
        AS n_label_before_prediction,
    SUM(CASE WHEN label_excluded = 'too_late' THEN 1 ELSE 0 END) AS n_label_too_late,
    SUM({row_hash}) AS content_hash
FROM win
GROUP BY model_version
ORDER BY model_version
"""


ROW_TEXT = (
    "CAST(id AS VARCHAR) || '|' || CAST(model_version AS VARCHAR) || '|' || "
    "COALESCE(CAST(CAST(ROUND(score * 1000000000) AS BIGINT) AS VARCHAR), '') || '|' || "
    "COALESCE(CAST(label AS VARCHAR), '')"
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def child(approach: str, spec_path: str, week: str) -> dict:
    import duckdb  # noqa: F401  (imported lazily by the engine; keep it out of the timing)

    from eval_pipelines.spec import load_spec
    from eval_pipelines.sqlbuild import SqlBuilder
    from eval_pipelines.validation import (
        CheckContext,
        LabelsUnique,
        RequiredColumns,
        materialize_window,
        validate_window,
    )
    from eval_pipelines.warehouse import Warehouse
    from eval_pipelines.windows import week_window

    import_s = 0.0
    if approach == "full":
        started = time.perf_counter()
        from eval_pipelines.gx_compat import import_gx

        import_gx()
        import_s = time.perf_counter() - started
    spec = load_spec(spec_path)
    window = week_window(week)
    started = time.perf_counter()
    with Warehouse(spec.warehouse) as warehouse:
        builder = SqlBuilder(spec, warehouse.dialect)

        def prepare(reading: SqlBuilder) -> SqlBuilder:
            materialized = materialize_window(warehouse, reading, window)
            assert materialized.window_table is not None
            return materialized

        if approach == "full":
            report, _ = validate_window(spec, window, warehouse, builder, prepare)
            checks = len(report.results)
            passed = report.passed
            rows = int(sum(r["n"] for r in report.per_version))
            timings, statements = report.timings, report.statements
        else:
            context = CheckContext(spec, window, warehouse, builder)
            results = RequiredColumns().run(context)
            context = CheckContext(spec, window, warehouse, prepare(builder))
            sql = BASELINE_CHECKS.format(
                window=context.builder.window(window), row_hash=builder.hash32(ROW_TEXT)
            )
            frame = warehouse.query(sql, "baseline checks")
            results += LabelsUnique().run(context)
            checks = len(results) + 5 * len(frame)
            passed = all(r.passed for r in results) and int(frame["n_bad_score"].sum()) == 0
            rows = int(frame["n"].sum())
            timings, statements = {}, {"warehouse": warehouse.statements}
    wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "gx_import_s": import_s,
        "peak_rss_mb": peak_rss_mb(),
        "checks": checks,
        "passed": passed,
        "window_rows": rows,
        "timings": timings,
        "statements": statements,
    }


def run_child(approach: str, spec_path: Path, week: str) -> dict:
    command = [sys.executable, __file__, "--child", approach, "--spec", str(spec_path)]
    started = time.perf_counter()
    proc = subprocess.run([*command, "--week", week], capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - started
    lines = [x for x in proc.stdout.splitlines() if x.startswith(MARKER)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"{approach}: child failed with exit code {proc.returncode}")
    result = json.loads(lines[-1][len(MARKER) :])
    result["process_s"] = elapsed
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="prediction rows (8 weeks)")
    parser.add_argument("--week", default=WEEK)
    parser.add_argument("--workdir", type=Path, help="keep/reuse the warehouse here")
    parser.add_argument("--repeat", type=int, default=1, help="runs per approach (best wall)")
    parser.add_argument("--child", choices=["full", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    if args.child:
        print(MARKER + json.dumps(child(args.child, args.spec, args.week)), flush=True)
        return 0

    import yaml

    from eval_pipelines.demo import build_demo_warehouse

    with tempfile.TemporaryDirectory(prefix="bench-validation-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        db = workdir / f"warehouse_{args.rows}.duckdb"
        started = time.perf_counter()
        if not db.exists():
            build_demo_warehouse(db, rows=args.rows)
        print(
            f"warehouse: {args.rows:,} prediction rows over 8 weeks, {db.stat().st_size / 1e6:.0f}"
            f" MB, ready in {time.perf_counter() - started:.1f} s (not timed)"
        )
        raw = yaml.safe_load(DEMO_SPEC.read_text())
        raw["warehouse"] = f"duckdb:///{db}"
        spec_path = Path(tmp) / "spec.yaml"
        spec_path.write_text(yaml.safe_dump(raw, sort_keys=False))
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        results = {}
        for approach in ("baseline", "full"):
            runs = [run_child(approach, spec_path, args.week) for _ in range(args.repeat)]
            results[approach] = min(runs, key=lambda r: r["wall_s"])
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        rows = results["full"]["window_rows"]
        print(f"\nweek {args.week}: {rows:,} window rows (predictions x versions)")
        print("| approach | checks | passed | wall s | GX import s | process s | peak RSS MB |")
        print("|---|---|---|---|---|---|---|")
        for name, r in results.items():
            print(
                f"| {name} | {r['checks']} | {r['passed']} | {r['wall_s']:.2f} | "
                f"{r['gx_import_s']:.2f} | {r['process_s']:.1f} | {r['peak_rss_mb']:.0f} |"
            )
        for name, r in results.items():
            steps = ", ".join(f"{k} {v:.2f}" for k, v in r["timings"].items())
            sent = r["statements"]
            print(f"{name}, seconds per check: {steps or '-'}")
            print(
                f"{name}, statements: {sum(sent.values())} "
                f"({', '.join(f'{k} {v}' for k, v in sent.items())})"
            )
        full, base = results["full"], results["baseline"]
        print(
            f"\nfull / baseline: wall x{full['wall_s'] / base['wall_s']:.2f}, "
            f"peak RSS x{full['peak_rss_mb'] / base['peak_rss_mb']:.2f}; "
            f"target peak RSS < 1024 MB: {'met' if full['peak_rss_mb'] < 1024 else 'MISSED'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
