"""Benchmark per task: our evaluation vs. pandas + scikit-learn by hand vs. a bare scan.

Run it directly::

    .venv/bin/python benchmarks/bench_tasks.py --task regression --rows 1000000
    .venv/bin/python benchmarks/bench_tasks.py --task all --rows 10000000
    .venv/bin/python benchmarks/bench_tasks.py --task binary_classification --skip-pandas

One invocation builds, untimed, a synthetic DuckDB warehouse for the task: ``--rows``
prediction rows in one week (``--rows / 2`` requests, each scored by two model versions, v1
and v2, as in a shadow deployment), 90% of them labeled within the 14-day maximum delay, with
two slice columns (``segment``: 5 values, ``region``: 8 values); for ``ranking`` a request is
one served item, 20 to a list, and the list carries the time and the slices. Then it measures
three approaches to that week, each in its own fresh Python subprocess so that the peak RSS
(``VmHWM``, read inside the child) belongs to that approach alone:

``ours``
    ``eval_pipelines.pipeline.evaluate(spec, week)`` plus the verdict: input checks, every
    metric of the task on every slice group (overall, segment, region, segment x region: 54
    groups) and version with bootstrap CIs (200 replicates), and the paired v1 -> v2
    comparison with tests and Benjamini-Hochberg; no drift.
``pandas``
    What a user writes by hand: the window's rows joined with their labels (mature within
    14 days) read into pandas, then for every slice group and version the same metrics with
    scikit-learn, and a 200-replicate row-level (list-level for ranking) bootstrap CI of the
    task's headline metric (overall, per version); the largest difference from ours is
    printed. It does less than ``ours`` (no CIs on sliced metrics or on the other metrics, no
    paired tests, no input checks).
``bare scan``
    A floor: DuckDB reads every value of the columns ``ours`` reads (predictions: id,
    timestamp, version, output, slices; labels: id, label, timestamp) and aggregates them
    trivially.

A task plugs in with one function returning its :class:`TaskBench` (how to draw its labels
and outputs, its spec keys, its metrics with scikit-learn), registered in :data:`TASKS`.
"wall s" is the work inside the child (imports excluded); "process s" is the whole child.
Targets (issue 10, at 10M rows on 2 cores): within 1 GB peak RSS. Timings are wall-clock on a
possibly shared machine (the load average is printed); this script only prints, it never
asserts a time.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from bench_evaluation import RESULT_MARKER, emit, machine, peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
WEEK = "2026-11-16"
SLICES = ["segment", "region", ["segment", "region"]]
SEGMENTS = np.array(["consumer", "smb", "enterprise", "public", "partner"])
REGIONS = np.array(["na", "latam", "emea_n", "emea_s", "apac", "anz", "india", "africa"])
REPLICATES = 200
CHUNK = 1_000_000  # requests drawn and written at a time, so building 10M rows stays small

Columns = dict[str, np.ndarray]


@dataclass(frozen=True)
class TaskBench:
    """What the benchmark needs to know about one task.

    * ``draw_labels(rng, n)``: one label per request;
    * ``draw_outputs(rng, labels, version)``: the model's output columns for version 0 or 1
      (version 1, the candidate, is a little better);
    * ``output_types``: each output column's SQL type; ``label_type`` the label's;
    * ``predictions``: the spec's ``predictions`` keys naming the output columns;
    * ``metrics``: the metric names ours computes (the spec's ``metrics``);
    * ``sklearn_metrics(label, outputs)``: the same metrics by hand on one group's rows;
    * ``headline``: the metric the pandas version bootstraps, ``headline_metric(label,
      outputs)`` its (cheaper) function;
    * ``list_size``: for a ranking task, the items per list (0 otherwise): each "request" is
      then one item, ``list_size`` consecutive items form a list (column ``list_id``) whose
      timestamp and slices are the list's, the pandas version treats an unlabeled item as
      not relevant and gets every group's rows sorted by list, score (descending) and id,
      and its bootstrap resamples lists;
    * ``spec_extra``: further spec keys of the task (``ranking: {k: [...]}``).
    """

    task: str
    draw_labels: Callable[[np.random.Generator, int], np.ndarray]
    draw_outputs: Callable[[np.random.Generator, np.ndarray, int], Columns]
    output_types: dict[str, str]
    label_type: str
    predictions: dict[str, Any]
    metrics: list[str]
    sklearn_metrics: Callable[[np.ndarray, Columns], dict[str, float]]
    headline: str
    headline_metric: Callable[[np.ndarray, Columns], float]
    list_size: int = 0
    spec_extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------- tasks
def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


def binary_classification() -> TaskBench:
    def draw_outputs(rng: np.random.Generator, y: np.ndarray, version: int) -> Columns:
        logit = (0.9 + 0.3 * version) * (2 * y - 1) - 1.0 + rng.normal(0, 1.3, len(y))
        return {"score": 1 / (1 + np.exp(-logit))}

    def ece(y: np.ndarray, score: np.ndarray, bins: int = 10) -> float:
        index = np.minimum((score * bins).astype(int), bins - 1)
        gap = np.bincount(index, weights=score - y, minlength=bins)
        return float(np.abs(gap).sum() / len(y))

    def sklearn_metrics(y: np.ndarray, out: Columns) -> dict[str, float]:
        from sklearn import metrics as skm  # not imported by the children that do not use it

        y, score = y.astype(np.int64), out["score"]
        predicted = (score >= 0.5).astype(int)
        both = 0 < y.sum() < len(y)
        return {
            "accuracy": skm.accuracy_score(y, predicted),
            "precision": skm.precision_score(y, predicted, zero_division=np.nan),
            "recall": skm.recall_score(y, predicted, zero_division=np.nan),
            "f1": skm.f1_score(y, predicted, zero_division=np.nan),
            "roc_auc": skm.roc_auc_score(y, score) if both else np.nan,
            "pr_auc": skm.average_precision_score(y, score) if both else np.nan,
            "log_loss": skm.log_loss(y, score, labels=[0, 1]),
            "brier": skm.brier_score_loss(y, score, pos_label=1),
            "ece": ece(y, score),
        }

    return TaskBench(
        task="binary_classification",
        draw_labels=lambda rng, n: (rng.random(n) < 0.2).astype(np.int64),
        draw_outputs=draw_outputs,
        output_types={"score": "DOUBLE"},
        label_type="INTEGER",
        predictions={"score": "score"},
        metrics=[
            "accuracy",
            "precision",
            "recall",
            "f1",
            "roc_auc",
            "pr_auc",
            "log_loss",
            "brier",
            "ece",
        ],
        sklearn_metrics=sklearn_metrics,
        headline="roc_auc",
        headline_metric=lambda y, out: roc_auc(y.astype(np.int64), out["score"]),
    )


def regression() -> TaskBench:
    def draw_labels(rng: np.random.Generator, n: int) -> np.ndarray:
        # A delivery time in minutes; 1% zero (cancelled), which MAPE leaves out.
        y = rng.gamma(4.0, 8.0, n)
        return np.where(rng.random(n) < 0.01, 0.0, y)

    def draw_outputs(rng: np.random.Generator, y: np.ndarray, version: int) -> Columns:
        return {"prediction": y + rng.normal(1.0 - 0.5 * version, 6.0 - version, len(y))}

    def sklearn_metrics(y: np.ndarray, out: Columns) -> dict[str, float]:
        from sklearn import metrics as skm  # not imported by the children that do not use it

        p = out["prediction"]
        nonzero = y != 0
        return {
            "mae": skm.mean_absolute_error(y, p),
            "mse": skm.mean_squared_error(y, p),
            "rmse": float(np.sqrt(skm.mean_squared_error(y, p))),
            "r2": skm.r2_score(y, p) if len(y) >= 2 else np.nan,
            "bias": float(np.mean(p - y)),
            "mape": skm.mean_absolute_percentage_error(y[nonzero], p[nonzero])
            if nonzero.any()
            else np.nan,
        }

    return TaskBench(
        task="regression",
        draw_labels=draw_labels,
        draw_outputs=draw_outputs,
        output_types={"prediction": "DOUBLE"},
        label_type="DOUBLE",
        predictions={"prediction": "prediction"},
        metrics=["mae", "mse", "rmse", "r2", "bias", "mape"],
        sklearn_metrics=sklearn_metrics,
        headline="mae",
        headline_metric=lambda y, out: float(np.mean(np.abs(out["prediction"] - y))),
    )


INTENTS = np.array(["billing", "cancel", "order_status", "other"])  # sorted, as sklearn's


def multiclass_classification() -> TaskBench:
    def draw_outputs(rng: np.random.Generator, y: np.ndarray, version: int) -> Columns:
        # Softmax of noisy logits with a bump on the true class (larger for the candidate).
        logits = rng.normal(0.0, 1.0, (len(y), len(INTENTS)))
        logits[np.arange(len(y)), np.searchsorted(INTENTS, y)] += 1.2 + 0.3 * version
        scores = np.exp(logits)
        scores /= scores.sum(axis=1, keepdims=True)
        columns = {"predicted_intent": INTENTS[scores.argmax(axis=1)]}
        return columns | {f"p_{c}": scores[:, i] for i, c in enumerate(INTENTS)}

    def sklearn_metrics(y: np.ndarray, out: Columns) -> dict[str, float]:
        from sklearn import metrics as skm  # not imported by the children that do not use it

        predicted = out["predicted_intent"]
        scores = np.column_stack([out[f"p_{c}"] for c in INTENTS])
        precision, recall, f1, _ = skm.precision_recall_fscore_support(
            y, predicted, labels=INTENTS, zero_division=0
        )
        every_class = len(np.unique(y)) == len(INTENTS)
        return {
            "accuracy": skm.accuracy_score(y, predicted),
            "macro_f1": skm.f1_score(
                y, predicted, labels=INTENTS, average="macro", zero_division=0
            ),
            **{f"precision.{c}": precision[i] for i, c in enumerate(INTENTS)},
            **{f"recall.{c}": recall[i] for i, c in enumerate(INTENTS)},
            **{f"f1.{c}": f1[i] for i, c in enumerate(INTENTS)},
            "log_loss": skm.log_loss(y, scores, labels=INTENTS),
            "top_2_accuracy": skm.top_k_accuracy_score(y, scores, k=2, labels=INTENTS),
            "roc_auc_ovr": skm.roc_auc_score(
                y, scores, multi_class="ovr", average="macro", labels=INTENTS
            )
            if every_class
            else np.nan,
        }

    return TaskBench(
        task="multiclass_classification",
        draw_labels=lambda rng, n: INTENTS[rng.choice(len(INTENTS), n, p=[0.35, 0.15, 0.3, 0.2])],
        draw_outputs=draw_outputs,
        output_types={"predicted_intent": "VARCHAR"} | {f"p_{c}": "DOUBLE" for c in INTENTS},
        label_type="VARCHAR",
        predictions={
            "prediction": "predicted_intent",
            "class_scores": {c: f"p_{c}" for c in INTENTS},
        },
        metrics=[
            "accuracy",
            "macro_f1",
            *(f"{m}.{c}" for m in ("precision", "recall", "f1") for c in INTENTS),
            "log_loss",
            "top_2_accuracy",
            "roc_auc_ovr",
        ],
        sklearn_metrics=sklearn_metrics,
        headline="accuracy",
        headline_metric=lambda y, out: float(np.mean(y == out["predicted_intent"])),
    )


LIST_SIZE = 20  # items served per search
CUTOFF = 10


def ranking_metrics(gain: np.ndarray) -> dict[str, float]:
    """Our ranking metrics at ``CUTOFF``, vectorised over lists (:mod:`tasks.ranking`).

    ``gain`` holds one list per row in served order (score descending, ties by item id), an
    unlabeled item as 0; lists without a relevant item are left out, as ours does. NDCG is
    scikit-learn's ``ndcg_score`` with the served position as the score, so it ranks exactly
    the served order (no ties left to average).
    """
    from sklearn.metrics import ndcg_score

    gain = gain[(gain > 0).any(axis=1)]
    if not len(gain):
        return dict.fromkeys(
            [f"ndcg@{CUTOFF}", f"map@{CUTOFF}", f"recall@{CUTOFF}", f"hit_rate@{CUTOFF}", "mrr"],
            np.nan,
        )
    relevant = gain > 0
    top = relevant[:, :CUTOFF]
    position = np.arange(1, gain.shape[1] + 1)
    served = np.broadcast_to(-position, gain.shape).astype(float)
    count = relevant.sum(axis=1)
    precision_at = np.cumsum(top, axis=1) / position[:CUTOFF]
    return {
        f"ndcg@{CUTOFF}": float(ndcg_score(gain, served, k=CUTOFF, ignore_ties=True)),
        f"map@{CUTOFF}": float(
            np.mean((precision_at * top).sum(axis=1) / np.minimum(CUTOFF, count))
        ),
        f"recall@{CUTOFF}": float(np.mean(top.sum(axis=1) / count)),
        f"hit_rate@{CUTOFF}": float(np.mean(top.any(axis=1))),
        "mrr": float(np.mean(1.0 / (relevant.argmax(axis=1) + 1))),
    }


def ranking() -> TaskBench:
    def draw_labels(rng: np.random.Generator, n: int) -> np.ndarray:
        # Graded relevance 0-3 from a latent quality: about 21% of items relevant.
        return np.digitize(rng.normal(0.0, 1.0, n), [0.8, 1.5, 2.2]).astype(np.int64)

    def draw_outputs(rng: np.random.Generator, y: np.ndarray, version: int) -> Columns:
        return {"score": (0.8 + 0.3 * version) * y + rng.normal(0.0, 1.5, len(y))}

    def sklearn_metrics(y: np.ndarray, out: Columns) -> dict[str, float]:
        return ranking_metrics(y.reshape(-1, LIST_SIZE).astype(float))

    return TaskBench(
        task="ranking",
        draw_labels=draw_labels,
        draw_outputs=draw_outputs,
        output_types={"score": "DOUBLE"},
        label_type="INTEGER",
        predictions={"list_id": "list_id", "score": "score"},
        metrics=[
            f"ndcg@{CUTOFF}",
            f"map@{CUTOFF}",
            f"recall@{CUTOFF}",
            f"hit_rate@{CUTOFF}",
            "mrr",
        ],
        sklearn_metrics=sklearn_metrics,
        headline=f"ndcg@{CUTOFF}",
        headline_metric=lambda y, out: ranking_metrics(y.reshape(-1, LIST_SIZE).astype(float))[
            f"ndcg@{CUTOFF}"
        ],
        list_size=LIST_SIZE,
        spec_extra={"ranking": {"k": [CUTOFF]}},
    )


# Each task's benchmark: one function and one entry.
TASKS: dict[str, Callable[[], TaskBench]] = {
    "binary_classification": binary_classification,
    "regression": regression,
    "multiclass_classification": multiclass_classification,
    "ranking": ranking,
}


# ---------------------------------------------------------------------------- warehouse
def build_warehouse(db: Path, bench: TaskBench, rows: int, seed: int) -> None:
    """``predictions`` and ``labels`` for ``rows // 2`` requests in the week, two versions."""
    import duckdb
    import pandas as pd

    size = bench.list_size or 1
    requests = rows // 2 // size * size  # whole lists (CHUNK is a multiple of a list's size)
    rng = np.random.default_rng(seed)
    week_start = np.datetime64(f"{WEEK}T00:00:00", "s")
    outputs = ", ".join(f"{name} {kind}" for name, kind in bench.output_types.items())
    if bench.list_size:
        outputs = f"list_id BIGINT, {outputs}"
    con = duckdb.connect(str(db))
    try:
        con.execute(
            "CREATE TABLE predictions (prediction_id BIGINT, ts TIMESTAMP, model_version VARCHAR,"
            f" {outputs}, segment VARCHAR, region VARCHAR)"
        )
        con.execute(
            f"CREATE TABLE labels (prediction_id BIGINT, label {bench.label_type},"
            " labeled_at TIMESTAMP)"
        )
        for first in range(0, requests, CHUNK):
            n = min(CHUNK, requests - first)
            ids = np.arange(first, first + n, dtype=np.int64)
            units = n // size  # requests, or lists of a ranking task
            # Time-ordered ids, as a log would write them; a list's items share its time and
            # slices (slices of a ranking task are list-level).
            ts = week_start + np.sort(rng.integers(0, 7 * 86400, units)).astype("timedelta64[s]")
            segment = SEGMENTS[rng.choice(len(SEGMENTS), units, p=[0.4, 0.25, 0.15, 0.12, 0.08])]
            region = REGIONS[rng.integers(0, len(REGIONS), units)]
            ts, segment, region = (np.repeat(a, size) for a in (ts, segment, region))
            lists = {"list_id": ids // size} if bench.list_size else {}
            y = bench.draw_labels(rng, n)
            for version in (0, 1):
                frame = pd.DataFrame(
                    {
                        "prediction_id": ids,
                        "ts": ts,
                        "model_version": f"v{version + 1}",
                        **lists,
                        **bench.draw_outputs(rng, y, version),
                        "segment": segment,
                        "region": region,
                    }
                )
                con.register("chunk", frame)
                con.execute("INSERT INTO predictions SELECT * FROM chunk")
                con.unregister("chunk")
            labeled = rng.random(n) < 0.9
            delay = rng.uniform(0, 10 * 86400, n).astype("timedelta64[s]")
            frame = pd.DataFrame({"prediction_id": ids, "label": y, "labeled_at": ts + delay})[
                labeled
            ]
            con.register("chunk", frame)
            con.execute("INSERT INTO labels SELECT * FROM chunk")
            con.unregister("chunk")
    finally:
        con.close()


def spec_of(bench: TaskBench, db: Path) -> dict:
    return {
        "model": f"bench_{bench.task}",
        "task": bench.task,
        "warehouse": f"duckdb:///{db}",
        "predictions": {"table": "predictions", **bench.predictions},
        "labels": {"table": "labels", "max_delay": "14d"},
        "slices": SLICES,
        "min_slice_size": 50,
        "metrics": bench.metrics,
        "confidence": {"replicates": REPLICATES, "seed": 7},
        "compare": {"baseline": "v1", "candidate": "v2"},
        **bench.spec_extra,
    }


def window_bounds() -> tuple[str, str]:
    start = np.datetime64(f"{WEEK}T00:00:00", "s")
    return str(start).replace("T", " "), str(start + np.timedelta64(7, "D")).replace("T", " ")


# ---------------------------------------------------------------------------- children
def child_ours(bench: TaskBench, config: dict) -> dict:
    from eval_pipelines.pipeline import evaluate
    from eval_pipelines.spec import parse_spec
    from eval_pipelines.warehouse import Warehouse

    spec = parse_spec(config["spec"])
    started = time.perf_counter()
    with Warehouse(spec.warehouse) as warehouse:
        evaluation = evaluate(spec, WEEK, warehouse)
    verdict = evaluation.decide()
    wall = time.perf_counter() - started
    metrics = evaluation.metrics
    overall = metrics[metrics["slice"] == "overall"].set_index(["model_version", "metric"])
    every = metrics[metrics["metric"].isin(bench.metrics)]
    return {
        "values": {
            f"{s}|{v}|{m}": x
            for s, v, m, x in every[["slice", "model_version", "metric", "value"]].itertuples(
                index=False
            )
        },
        "wall_s": wall,
        "timings": evaluation.timings,
        "input_statements": evaluation.input_statements,
        "slice_groups": int(metrics["slice"].nunique()),
        "decision": verdict.decision,
        "overall": {
            f"{v}/{m}": float(overall.loc[(v, m), "value"])
            for v in ("v1", "v2")
            for m in bench.metrics
        },
        "headline_ci": {
            v: [float(overall.loc[(v, bench.headline), c]) for c in ("ci_low", "ci_high")]
            for v in ("v1", "v2")
        },
    }


def child_pandas(bench: TaskBench, config: dict) -> dict:
    import duckdb

    started = time.perf_counter()
    start, end = window_bounds()
    con = duckdb.connect(config["db"], read_only=True)
    outputs = list(bench.output_types)
    if bench.list_size:
        outputs = ["list_id", "prediction_id", *outputs]
    rows = con.sql(
        f"""
        SELECT p.model_version, {", ".join(f"p.{c}" for c in outputs)}, p.segment, p.region,
               CASE WHEN l.labeled_at >= p.ts AND l.labeled_at <= p.ts + INTERVAL 14 DAY
                    THEN l.label END AS label
        FROM predictions p LEFT JOIN labels l ON l.prediction_id = p.prediction_id
        WHERE p.ts >= TIMESTAMP '{start}' AND p.ts < TIMESTAMP '{end}'
        """
    ).df()
    con.close()
    if bench.list_size:
        # An unlabeled item is not relevant; each list's items in served order.
        rows["label"] = rows["label"].fillna(0)
        labeled = rows.sort_values(
            ["list_id", "score", "prediction_id"], ascending=[True, False, True]
        )
    else:
        labeled = rows[rows["label"].notna()]

    def metrics_of(group) -> dict[str, float]:
        y = group["label"].to_numpy()
        return bench.sklearn_metrics(y, {c: group[c].to_numpy() for c in outputs})

    results = {}
    for cross in [[], *[[s] if isinstance(s, str) else s for s in SLICES]]:
        keys = [*cross, "model_version"]
        for key, group in labeled.groupby(keys, sort=True):
            if len(group) >= 50:
                results[(tuple(cross), key)] = metrics_of(group)
    overall = {
        f"{v}/{m}": float(results[((), (v,))][m]) for v in ("v1", "v2") for m in bench.metrics
    }
    rng = np.random.default_rng(7)
    ci = {}
    for version in ("v1", "v2"):
        part = labeled[labeled["model_version"] == version]
        y = part["label"].to_numpy()
        out = {c: part[c].to_numpy() for c in outputs}
        values = []
        size = bench.list_size or 1  # resample requests, or whole lists of a ranking task
        units = len(y) // size
        for _ in range(REPLICATES):
            pick = (rng.integers(0, units, units)[:, None] * size + np.arange(size)).ravel()
            values.append(bench.headline_metric(y[pick], {c: a[pick] for c, a in out.items()}))
        ci[version] = [float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))]
    wall = time.perf_counter() - started

    def slice_name(cross: tuple[str, ...], values: tuple) -> str:  # ours' slice names
        return ", ".join(f"{c}={v}" for c, v in zip(cross, values, strict=True)) or "overall"

    return {
        "wall_s": wall,
        "values": {
            f"{slice_name(cross, key[:-1])}|{key[-1]}|{m}": float(x)
            for (cross, key), values in results.items()
            for m, x in values.items()
        },
        "slice_groups": len({(cross, key[:-1]) for cross, key in results}),
        "overall": overall,
        "headline_ci": ci,
    }


def child_bare(bench: TaskBench, config: dict) -> dict:
    import duckdb

    start, end = window_bounds()
    con = duckdb.connect(config["db"], read_only=True)
    touched = ["sum(prediction_id)", "max(ts)", "sum(hash(model_version))"]
    touched += [
        f"sum(hash({c}))" if kind == "VARCHAR" else f"sum({c})"
        for c, kind in bench.output_types.items()
    ]
    touched += ["sum(list_id)"] if bench.list_size else []
    touched += ["sum(hash(segment))", "sum(hash(region))"]
    queries = {
        "window": f"""SELECT count(*), {", ".join(touched)} FROM predictions
            WHERE ts >= TIMESTAMP '{start}' AND ts < TIMESTAMP '{end}'""",
        "labels": "SELECT count(*), sum(prediction_id), "
        + ("sum(hash(label))" if bench.label_type == "VARCHAR" else "sum(label)")
        + ", max(labeled_at) FROM labels",
    }
    started = time.perf_counter()
    counts = {name: con.sql(sql).fetchall()[0][0] for name, sql in queries.items()}
    return {"wall_s": time.perf_counter() - started, "rows_scanned": counts}


def child_main(approach: str, task: str, config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    run = {"ours": child_ours, "pandas": child_pandas, "bare": child_bare}[approach]
    result = run(TASKS[task](), config)
    result["peak_rss_mb"] = peak_rss_mb()
    emit(result)


# ---------------------------------------------------------------------------- parent
def run_child(approach: str, task: str, config_path: Path) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", approach]
    command += ["--task", task, "--config", str(config_path)]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - started
    lines = [x for x in proc.stdout.splitlines() if x.startswith(RESULT_MARKER)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"{task} {approach}: child failed with exit code {proc.returncode}")
    result = json.loads(lines[-1][len(RESULT_MARKER) :])
    result["process_s"] = elapsed
    return result


def bench_task(task: str, args: argparse.Namespace, workdir: Path) -> None:
    bench = TASKS[task]()
    db = workdir / f"{task}_{args.rows}.duckdb"
    started = time.perf_counter()
    if not db.exists():
        build_warehouse(db, bench, args.rows, args.seed)
    print(
        f"\n## {task}: {args.rows:,} prediction rows in week {WEEK} "
        f"({db.stat().st_size / 1e6:.0f} MB, ready in {time.perf_counter() - started:.1f} s, "
        "not timed)"
    )
    config_path = workdir / f"{task}_config.json"
    config_path.write_text(json.dumps({"db": str(db), "spec": spec_of(bench, db)}))
    results = {"bare scan": run_child("bare", task, config_path)}
    results["ours"] = run_child("ours", task, config_path)
    if not args.skip_pandas:
        results["pandas + sklearn"] = run_child("pandas", task, config_path)

    ours, bare = results["ours"], results["bare scan"]["wall_s"]
    print(f"slice groups: {ours['slice_groups']}; verdict: {ours['decision']}")
    print(f"| approach | wall s | process s | peak RSS MB |   ({task}, {args.rows:,} rows)")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['wall_s']:.2f} | {r['process_s']:.2f} | {r['peak_rss_mb']:.0f} |")
    other = results.get("pandas + sklearn")
    if other:
        print(f"pandas / ours (speed-up): {other['wall_s'] / ours['wall_s']:.1f}x")
    print(f"ours / bare scan:         {ours['wall_s'] / bare:.1f}x")
    print(f"ours peak RSS:            {ours['peak_rss_mb']:.0f} MB (target < 1024 MB)")
    timings = ours["timings"]
    steps = ", ".join(f"{k} {v:.2f}" for k, v in timings.items() if "." not in k)
    print(f"ours, seconds per step: {steps}")
    checks = ", ".join(
        f"{k.split('.', 1)[1]} {v:.2f}" for k, v in timings.items() if k.startswith("input_checks.")
    )
    print(f"ours, input checks (s): {checks}")
    sent = ours["input_statements"]
    statements = ", ".join(f"{k} {v}" for k, v in sent.items())
    print(f"ours, input checks statements: {sum(sent.values())} ({statements})")
    print("consistency (overall; ours, pandas, |difference|):")
    width = max(len(key) for key in ours["overall"])
    for key, value in ours["overall"].items():
        theirs = (
            f"{other['overall'][key]:.6f}  {abs(value - other['overall'][key]):.2e}"
            if other
            else "-"
        )
        print(f"  {key:<{width}} {value:.6f}  {theirs}")
    if other:
        gaps = {k: abs(v - other["overall"][k]) for k, v in ours["overall"].items()}
        worst = max(gaps, key=gaps.__getitem__)
        print(f"max |ours - pandas| over {len(gaps)} overall values: {gaps[worst]:.2e} ({worst})")
        ours_values, their_values = ours["values"], other["values"]
        gaps = {
            k: abs(ours_values[k] - x)
            for k, x in their_values.items()
            if np.isfinite(x) and np.isfinite(ours_values.get(k, np.nan))
        }
        worst = max(gaps, key=gaps.__getitem__)
        print(
            f"max |ours - pandas| over {len(gaps)} values of every slice group and version: "
            f"{gaps[worst]:.2e} ({worst}); not compared (in one only, or NaN): "
            f"ours {len(ours_values) - len(gaps)}, pandas {len(their_values) - len(gaps)}"
        )
    for version, (low, high) in ours["headline_ci"].items():
        theirs = "[{:.4f}, {:.4f}]".format(*other["headline_ci"][version]) if other else "-"
        print(f"  {version}/{bench.headline} 95% CI [{low:.4f}, {high:.4f}]  {theirs}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--task", default="all", choices=["all", *TASKS])
    parser.add_argument("--rows", type=int, default=1_000_000, help="prediction rows (one week)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-pandas", action="store_true", help="skip the pandas baseline")
    parser.add_argument("--workdir", type=Path, help="keep the warehouses here (default: temp)")
    parser.add_argument("--child", choices=["ours", "pandas", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child, args.task, args.config)
        return 0

    sys.path.insert(0, str(ROOT))
    print(f"machine: {machine()}")
    if hasattr(os, "getloadavg") and os.getloadavg()[0] > 0.5:
        print(f"warning: load average {os.getloadavg()[0]:.2f}; other work skews the timings")
    tasks = list(TASKS) if args.task == "all" else [args.task]
    with tempfile.TemporaryDirectory(prefix="bench-tasks-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for task in tasks:
            bench_task(task, args, workdir)
    if hasattr(os, "getloadavg"):
        print("\nload average after the runs: " + " / ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
