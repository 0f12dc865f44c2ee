"""Deterministic synthetic warehouse for demos, tests and benchmarks.

The evaluation pipeline needs a warehouse whose *answers are known in advance*: a shadow
deployment of a fraud model where the candidate (``v2``) beats the champion (``v1``)
overall, is clearly worse on Android, and where one input feature (``amount``) drifts
at the end of the window.  Generating that data here, instead of shipping a fixture
file, lets tests scale the volume from a few thousand rows up to tens of millions
(benchmarks) while the planted truths stay the same.

Design constraints and why they exist:

* **Deterministic.**  Every chunk of requests draws from its own
  ``numpy.random.default_rng((seed, chunk_index))`` stream, so results never depend on
  global random state, on thread scheduling or on how much was generated before.  The
  same arguments always produce identical table contents, which lets tests pin exact
  numbers and lets a rebuilt demo reproduce yesterday's report.
* **Bounded memory.**  Requests are generated and inserted one chunk at a time (at most
  ``chunk_requests`` requests, i.e. twice as many prediction rows, in memory), so
  ``rows=10_000_000`` needs a few hundred MB rather than several GB.
* **Atomic.**  The DuckDB file is built under a temporary name and moved into place with
  :func:`os.replace`, so a reader (e.g. a running Dagster job) never sees a half-written
  warehouse and a crash never leaves a truncated file at ``path``.

Dates: the rows depend on ``start`` only through the timestamps (shifted by whole weeks), so
``eval-pipelines demo`` builds the window that ends at the last complete week
(:func:`latest_demo_start`, so a newcomer's Dagster calendar has data in every week) while the
tests build the fixed window from :data:`DEMO_START` and pin exact numbers on it.
:func:`read_demo_warehouse` reads the window of a file already written back from its data.

Tables (naive ``TIMESTAMP`` values are UTC):

``inference_logs``
    One row per (request, model version).  Shadow traffic: each request is scored by
    both versions, so every ``prediction_id`` appears exactly twice with identical
    timestamp and features; only ``score`` and ``latency_ms`` differ.
``labels``
    One row per *labelled request* (labels belong to the transaction, not to a model
    version).  Labels arrive 0-14 days after the request; ~5% never arrive.

Planted truths (strong enough to hold in every week at the default 200k rows):

1. ``label ~ Bernoulli(sigmoid(z))`` for a latent logit ``z`` built from amount, account
   age, merchant category, prior transactions, country, device, plan and hour; the
   positive rate is ~12% (~16% in the drifted weeks, because larger amounts are
   riskier: the drift is a real covariate shift, not just a logging artefact).
2. Both versions score a noisy view of ``z``; ``v2`` sees a less noisy one (ROC AUC about
   0.04 higher) except on ``device = 'android'``, where it is noisier and systematically
   lower, so its recall at 0.5 there is far below ``v1``'s while its overall recall is
   still at least as good.
3. ``amount`` is multiplied by :data:`AMOUNT_DRIFT_FACTOR` in the last
   :data:`DRIFT_WEEKS` weeks (PSI vs. earlier weeks well above 0.25); every other feature
   has a time-invariant distribution.
"""

import contextlib
import dataclasses
import datetime as dt
import os
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from eval_pipelines.demos import TABLE_WRITERS
from eval_pipelines.errors import EvalError
from eval_pipelines.windows import last_complete_week

__all__ = [
    "AMOUNT_DRIFT_FACTOR",
    "CANDIDATE_VERSION",
    "CHAMPION_VERSION",
    "COUNTRIES",
    "DEMO_NUM_WEEKS",
    "DEMO_START",
    "DEMO_WEEKS",
    "DEVICES",
    "DRIFT_WEEKS",
    "MAX_LABEL_DELAY",
    "MERCHANT_CATEGORIES",
    "MODEL_NAME",
    "PLANS",
    "UNLABELED_RATE",
    "DemoSummary",
    "build_demo_warehouse",
    "demo_weeks",
    "latest_demo_start",
    "read_demo_warehouse",
    "ui_registry_week",
]

MODEL_NAME = "fraud_detector"
CHAMPION_VERSION = "v1"
CANDIDATE_VERSION = "v2"

DEMO_START = dt.date(2026, 9, 28)
"""A Monday; weeks start on Mondays so they match DuckDB's ``date_trunc('week', ts)``."""
DEMO_NUM_WEEKS = 8

DRIFT_WEEKS = 2
"""``amount`` drifts in this many trailing weeks (only when the window is longer)."""
AMOUNT_DRIFT_FACTOR = 2.0
"""Multiplier on ``amount`` in the drifted weeks (a shift of ~0.65 sd in log-amount)."""
UNLABELED_RATE = 0.05
MAX_LABEL_DELAY = dt.timedelta(days=14)
_MEAN_LABEL_DELAY_S = 2.0 * 86_400

# Categorical features: (values, sampling shares, contribution to the latent logit).
# Shares are unequal on purpose so slice sizes differ, as in real traffic.
COUNTRIES = ("US", "GB", "DE", "FR", "BR", "IN", "JP", "MX")
_COUNTRY_P = (0.34, 0.12, 0.11, 0.09, 0.10, 0.10, 0.07, 0.07)
_COUNTRY_RISK = (0.0, -0.1, -0.3, -0.15, 0.45, 0.35, -0.4, 0.4)
DEVICES = ("ios", "android", "web")
_DEVICE_P = (0.45, 0.25, 0.30)
_DEVICE_RISK = (0.0, 0.15, 0.25)
_ANDROID = DEVICES.index("android")
PLANS = ("free", "pro", "enterprise")
_PLAN_P = (0.60, 0.30, 0.10)
_PLAN_RISK = (0.3, -0.1, -0.6)
MERCHANT_CATEGORIES = (
    "grocery",
    "electronics",
    "travel",
    "gaming",
    "fashion",
    "restaurants",
    "digital_goods",
    "fuel",
)
_MERCHANT_P = (0.20, 0.14, 0.08, 0.10, 0.14, 0.16, 0.08, 0.10)
_MERCHANT_RISK = (-0.7, 0.8, 0.5, 0.7, 0.1, -0.5, 1.1, -0.6)

# Numeric features.
_AMOUNT_MEDIAN = 45.0
_AMOUNT_LOG_SD = 0.8
_AGE_MEDIAN_DAYS = 400.0
_AGE_LOG_SD = 1.1
_AGE_MAX_DAYS = 7_300

# Latent logit z = _Z_SCALE * risk + _Z_INTERCEPT; the scale makes labels predictable
# enough for AUCs in the 0.8s, the intercept sets the base positive rate (~12%).
_Z_SCALE = 2.2
_Z_INTERCEPT = -5.0

# Model views: logit = slope * (z + noise_sd * eps) + intercept, where (slope, intercept)
# is the logistic calibration of that noisy view (fitted once on a large build), plus
# _SCORE_SHIFT, which makes both versions over-confident (mean score ~1.3-1.6x the
# positive rate, as if trained on down-sampled negatives) so that a 0.5 threshold yields
# a useful recall (~0.45 for v1) instead of the ~0.25 a perfectly calibrated 0.85-AUC
# model has at a ~12% base rate.
_SCORE_SHIFT = 0.8
_V1_VIEW = (2.4, 0.426, -1.051)  # (noise_sd, slope, intercept): ROC AUC ~0.85
_V2_VIEW = (1.0, 0.798, -0.339)  # much less noisy: ROC AUC ~0.9 off Android
# On Android the candidate's view is a bit noisier than the champion's and biased low
# (think: a feature the Android client stopped sending), so v2 misses Android fraud.
_V2_ANDROID_VIEW = (2.6, 0.390, -1.127)
_V2_ANDROID_OFFSET = -0.8
_LOGIT_CLIP = 12.0  # keeps scores strictly inside (0, 1) even in float64

_V1_LATENCY = (np.log(38.0), 0.35)  # log-normal (log-median, log-sd), milliseconds
_V2_LATENCY = (np.log(52.0), 0.40)

_SECONDS_PER_WEEK = 7 * 86_400
_EPOCH = dt.date(1970, 1, 1)
_ID_DIGITS = 9


@dataclasses.dataclass(frozen=True)
class DemoSummary:
    """What :func:`build_demo_warehouse` wrote, for the caller to print or log.

    ``rows`` is the number of prediction rows actually written (``2 * requests``, so an
    odd requested ``rows`` is rounded down).  ``end`` is the exclusive upper bound of the
    timestamps (the Monday after the last week), so ``start <= ts < end``.
    """

    path: Path
    rows: int
    requests: int
    weeks: int
    start: dt.date
    end: dt.date


def _check_window(start: dt.date, weeks: int) -> None:
    """Reject windows that would not line up with ISO (Monday) week partitions."""
    if isinstance(start, dt.datetime) or not isinstance(start, dt.date):
        raise TypeError(f"start must be a datetime.date, got {type(start).__name__}")
    if start.weekday() != 0:
        raise ValueError(f"start must be a Monday, got {start} ({start:%A})")
    if weeks < 1:
        raise ValueError(f"weeks must be >= 1, got {weeks}")


def demo_weeks(start: dt.date = DEMO_START, weeks: int = DEMO_NUM_WEEKS) -> list[dt.date]:
    """Return the Monday that opens each week of a demo window.

    Pipelines partition by week; exposing the dates here keeps partition definitions and
    generated data in sync without hard-coding calendar dates in several places.
    """
    _check_window(start, weeks)
    return [start + dt.timedelta(weeks=i) for i in range(weeks)]


def latest_demo_start(now: dt.datetime | None = None, weeks: int = DEMO_NUM_WEEKS) -> dt.date:
    """The ``start`` whose demo window ends with the last complete week at ``now`` (UTC).

    ``build_demo_warehouse(path, start=latest_demo_start())`` writes the same rows as the
    default build (same seed, same numbers), every timestamp shifted by whole weeks, so the
    demo's last week is last week and the schedule's next tick finds data. Tests pin
    ``DEMO_START`` (or pass ``now``) instead, so their dates never move.
    """
    moment = now or dt.datetime.now(dt.UTC)
    last = dt.date.fromisoformat(last_complete_week(moment))
    return last - dt.timedelta(weeks=weeks - 1)


DEMO_WEEKS: tuple[dt.date, ...] = tuple(demo_weeks(DEMO_START, DEMO_NUM_WEEKS))
"""Week starts of the default demo window (2026-09-28 ... 2026-11-16)."""


def read_demo_warehouse(path: str | os.PathLike[str]) -> DemoSummary | None:
    """Describe a demo warehouse already written at ``path`` (``None`` when there is none).

    The dates are read from the data (the Monday of the first and of the last prediction), so
    they are right whichever ``start`` built the file; ``eval-pipelines demo`` compares them
    with the weeks it wants and rebuilds only when they differ. One read-only connection, one
    aggregate query.
    """
    target = Path(path)
    if not target.is_file():
        return None
    try:
        with duckdb.connect(str(target), read_only=True) as con:
            first, last, rows = con.execute(
                "SELECT CAST(MIN(ts) AS DATE), CAST(MAX(ts) AS DATE), COUNT(*) FROM inference_logs"
            ).fetchone()
    except duckdb.Error as exc:  # not ours: never overwrite it without being asked
        reason = " ".join(str(exc).split())[:200]
        raise EvalError(
            f"{target} is not a readable demo warehouse ({reason}); move it away, or replace "
            "it with `eval-pipelines demo --rebuild`"
        ) from None
    if not rows:
        return None
    start = first - dt.timedelta(days=first.weekday())
    end = last - dt.timedelta(days=last.weekday()) + dt.timedelta(weeks=1)
    return DemoSummary(
        path=target,
        rows=rows,
        requests=rows // 2,
        weeks=(end - start).days // 7,
        start=start,
        end=end,
    )


def ui_registry_week(path: str | os.PathLike[str], now: dt.datetime | None = None) -> str:
    """The week ``make ui`` pins the registry sensor to: the last week of the demo at ``path``.

    Returns ``""`` (the sensor then takes the last complete week) when there is no demo
    warehouse. Writes a one-line note to stderr when there is none, or when its last week is
    not the last complete week at ``now`` (the demo was built an earlier week: ``make demo``
    moves its weeks, otherwise the schedule's next tick asks for a week without data).
    """
    try:
        demo = read_demo_warehouse(path)
    except EvalError as exc:
        print(f"note: {exc}", file=sys.stderr)
        return ""
    if demo is None:
        print(f"note: no demo warehouse at {path}: run `make demo` first", file=sys.stderr)
        return ""
    last = (demo.end - dt.timedelta(weeks=1)).isoformat()
    latest = last_complete_week(now or dt.datetime.now(dt.UTC))
    if last != latest:
        print(
            f"note: the demo's weeks end at {last}, not at last week ({latest}): "
            "`make demo` moves them",
            file=sys.stderr,
        )
    return last


def build_demo_warehouse(
    path: str | os.PathLike[str],
    rows: int = 200_000,
    seed: int = 42,
    start: dt.date = DEMO_START,
    weeks: int = DEMO_NUM_WEEKS,
    chunk_requests: int = 500_000,
    other_tasks: bool = True,
) -> DemoSummary:
    """Write the synthetic DuckDB warehouse to ``path`` atomically and describe it.

    ``rows`` counts prediction rows over both versions (``rows // 2`` requests).
    Requests are spread uniformly over ``weeks`` weeks starting at midnight UTC of
    ``start`` (which must be a Monday).  ``chunk_requests`` bounds memory use; note that
    it is part of the random-stream layout, so only builds with the same value (and the
    same other arguments) are guaranteed identical.  ``other_tasks=False`` writes only the
    fraud model's tables, without the other demo models' (whose writers are not chunked, so
    a benchmark of hundreds of millions of rows leaves them out).  Any existing file at
    ``path`` is replaced; nothing is printed.
    """
    _check_window(start, weeks)
    requests = rows // 2
    if requests < 1:
        raise ValueError(f"rows must be >= 2, got {rows}")
    if chunk_requests < 1:
        raise ValueError(f"chunk_requests must be >= 1, got {chunk_requests}")

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    _remove_db_files(tmp)  # leftovers of a crashed build by a process with the same pid
    try:
        con = duckdb.connect(str(tmp))
        try:
            _create_tables(con)
            id_digits = max(_ID_DIGITS, len(str(requests)))
            for index, lo in enumerate(range(0, requests, chunk_requests)):
                hi = min(lo + chunk_requests, requests)
                logs, labels = _generate_chunk(seed, index, lo, hi, requests, start, weeks)
                _insert_chunk(con, logs, labels, id_digits)
                del logs, labels
            for write_tables in TABLE_WRITERS if other_tasks else []:
                write_tables(con, start, weeks, 2 * requests, seed)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        # A stale write-ahead log next to the target would be replayed into the new file.
        _remove_file(Path(f"{target}.wal"))
        os.replace(tmp, target)
    except BaseException:
        _remove_db_files(tmp)
        raise
    return DemoSummary(
        path=target,
        rows=2 * requests,
        requests=requests,
        weeks=weeks,
        start=start,
        end=start + dt.timedelta(weeks=weeks),
    )


def _create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables with explicit types so the schema never depends on inference."""
    con.execute(
        """
        CREATE TABLE inference_logs (
            prediction_id VARCHAR NOT NULL,
            ts TIMESTAMP NOT NULL,
            model_name VARCHAR NOT NULL,
            model_version VARCHAR NOT NULL,
            score DOUBLE NOT NULL,
            latency_ms DOUBLE NOT NULL,
            country VARCHAR NOT NULL,
            device VARCHAR NOT NULL,
            plan VARCHAR NOT NULL,
            amount DOUBLE NOT NULL,
            account_age_days INTEGER NOT NULL,
            merchant_category VARCHAR NOT NULL,
            num_prior_txn INTEGER NOT NULL,
            hour_of_day INTEGER NOT NULL
        )
        """
    )
    con.execute(
        """
        CREATE TABLE labels (
            prediction_id VARCHAR NOT NULL,
            label INTEGER NOT NULL,
            labeled_at TIMESTAMP NOT NULL
        )
        """
    )


def _insert_chunk(
    con: duckdb.DuckDBPyConnection, logs: pa.Table, labels: pa.Table, id_digits: int
) -> None:
    """Append one chunk; ids are formatted in DuckDB to avoid millions of Python strings."""
    pid = f"'p' || lpad(CAST(req_id AS VARCHAR), {id_digits}, '0')"
    con.register("_demo_logs_chunk", logs)
    con.register("_demo_labels_chunk", labels)
    try:
        con.execute(
            f"""
            INSERT INTO inference_logs
            SELECT {pid}, ts, '{MODEL_NAME}', model_version, score, latency_ms, country,
                   device, plan, amount, account_age_days, merchant_category,
                   num_prior_txn, hour_of_day
            FROM _demo_logs_chunk
            """
        )
        con.execute(f"INSERT INTO labels SELECT {pid}, label, labeled_at FROM _demo_labels_chunk")
    finally:
        con.unregister("_demo_logs_chunk")
        con.unregister("_demo_labels_chunk")


def _generate_chunk(
    seed: int, index: int, lo: int, hi: int, total: int, start: dt.date, weeks: int
) -> tuple[pa.Table, pa.Table]:
    """Generate requests ``lo..hi-1`` (0-based) as Arrow tables of logs and labels.

    Chunks are time-contiguous: chunk requests get timestamps in the slice of the window
    proportional to their share of all requests, and ids are assigned in time order, so
    inserting chunks in order yields tables sorted by ``(ts, prediction_id,
    model_version)`` and ``ts`` stays exactly uniform over the window overall.
    """
    rng = np.random.default_rng([seed, index])
    n = hi - lo
    window_s = weeks * _SECONDS_PER_WEEK
    t_lo = lo * window_s // total
    t_hi = max(hi * window_s // total, t_lo + 1)
    offset_s = np.sort(rng.integers(t_lo, t_hi, size=n, dtype=np.int64))
    week = offset_s // _SECONDS_PER_WEEK
    hour = ((offset_s % 86_400) // 3_600).astype(np.int32)
    ts_s = offset_s + (start - _EPOCH).days * 86_400
    req_id = np.arange(lo + 1, hi + 1, dtype=np.int64)

    country = rng.choice(len(COUNTRIES), size=n, p=_COUNTRY_P).astype(np.int8)
    device = rng.choice(len(DEVICES), size=n, p=_DEVICE_P).astype(np.int8)
    plan = rng.choice(len(PLANS), size=n, p=_PLAN_P).astype(np.int8)
    merchant = rng.choice(len(MERCHANT_CATEGORIES), size=n, p=_MERCHANT_P).astype(np.int8)

    drifted = week >= weeks - DRIFT_WEEKS if weeks > DRIFT_WEEKS else np.zeros(n, bool)
    log_amount = rng.normal(np.log(_AMOUNT_MEDIAN), _AMOUNT_LOG_SD, size=n)
    log_amount += np.where(drifted, np.log(AMOUNT_DRIFT_FACTOR), 0.0)
    amount = np.maximum(np.round(np.exp(log_amount), 2), 0.01)
    age = np.exp(rng.normal(np.log(_AGE_MEDIAN_DAYS), _AGE_LOG_SD, size=n))
    age = np.minimum(np.floor(age), _AGE_MAX_DAYS).astype(np.int32)
    prior_rate = np.exp(rng.normal(np.log1p(age * 0.08), 0.5))
    prior = rng.poisson(prior_rate).astype(np.int32)

    risk = (
        0.4 * (np.log(amount) - np.log(_AMOUNT_MEDIAN))
        - 0.8 * (np.log1p(age / 30.0) - np.log1p(_AGE_MEDIAN_DAYS / 30.0))
        - 0.3 * (np.log1p(prior) - np.log1p(_AGE_MEDIAN_DAYS * 0.08))
        + np.take(_MERCHANT_RISK, merchant)
        + np.take(_COUNTRY_RISK, country)
        + np.take(_DEVICE_RISK, device)
        + np.take(_PLAN_RISK, plan)
        + np.where(hour < 6, 0.5, 0.0)  # night-time transactions are riskier
    )
    z = _Z_SCALE * risk + _Z_INTERCEPT
    label = (rng.random(n) < _sigmoid(z)).astype(np.int32)

    android = device == _ANDROID
    v1_logit = _view_logit(z, _V1_VIEW, rng.standard_normal(n))
    eps = rng.standard_normal(n)
    v2_logit = np.where(
        android,
        _view_logit(z, _V2_ANDROID_VIEW, eps) + _V2_ANDROID_OFFSET,
        _view_logit(z, _V2_VIEW, eps),
    )
    v1_score = _sigmoid(np.clip(v1_logit + _SCORE_SHIFT, -_LOGIT_CLIP, _LOGIT_CLIP))
    v2_score = _sigmoid(np.clip(v2_logit + _SCORE_SHIFT, -_LOGIT_CLIP, _LOGIT_CLIP))
    v1_latency = np.round(rng.lognormal(*_V1_LATENCY, size=n), 3)
    v2_latency = np.round(rng.lognormal(*_V2_LATENCY, size=n), 3)

    labeled = rng.random(n) >= UNLABELED_RATE
    delay_s = np.minimum(
        np.floor(rng.exponential(_MEAN_LABEL_DELAY_S, size=n)),
        MAX_LABEL_DELAY.total_seconds(),
    ).astype(np.int64)

    def both(values: np.ndarray) -> np.ndarray:
        return np.repeat(values, 2)

    def interleave(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        return np.column_stack([first, second]).ravel()

    logs = pa.table(
        {
            "req_id": both(req_id),
            "ts": pa.array(both(ts_s), type=pa.timestamp("s")),
            "model_version": _dictionary(
                np.tile(np.array([0, 1], dtype=np.int8), n), (CHAMPION_VERSION, CANDIDATE_VERSION)
            ),
            "score": interleave(v1_score, v2_score),
            "latency_ms": interleave(v1_latency, v2_latency),
            "country": _dictionary(both(country), COUNTRIES),
            "device": _dictionary(both(device), DEVICES),
            "plan": _dictionary(both(plan), PLANS),
            "amount": both(amount),
            "account_age_days": both(age),
            "merchant_category": _dictionary(both(merchant), MERCHANT_CATEGORIES),
            "num_prior_txn": both(prior),
            "hour_of_day": both(hour),
        }
    )
    labels = pa.table(
        {
            "req_id": req_id[labeled],
            "label": label[labeled],
            "labeled_at": pa.array((ts_s + delay_s)[labeled], type=pa.timestamp("s")),
        }
    )
    return logs, labels


def _dictionary(codes: np.ndarray, values: tuple[str, ...]) -> pa.DictionaryArray:
    """Wrap integer codes as an Arrow dictionary array (no per-row Python strings)."""
    return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(values, type=pa.string()))


def _view_logit(z: np.ndarray, view: tuple[float, float, float], eps: np.ndarray) -> np.ndarray:
    """Calibrated logit of a model that sees ``z`` through Gaussian noise ``noise_sd * eps``."""
    noise_sd, slope, intercept = view
    return slope * (z + noise_sd * eps) + intercept


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function; callers clip the input where exact 0/1 must be impossible."""
    return 1.0 / (1.0 + np.exp(-x))


def _remove_file(file: Path) -> None:
    """Delete ``file`` if present (missing is fine: this is best-effort cleanup)."""
    with contextlib.suppress(FileNotFoundError):
        file.unlink()


def _remove_db_files(db: Path) -> None:
    """Delete a DuckDB file and its write-ahead log."""
    _remove_file(db)
    _remove_file(Path(f"{db}.wal"))


def register_demo_models(tracker, spec) -> list[str]:
    """Register a demo model's baseline (alias ``champion``) and candidate once.

    The registry versions carry no model files: the demo's predictions are already in the
    warehouse, and the ``eval.log_version`` tag says which ``model_version`` rows are theirs
    (the spec's ``compare.baseline`` and ``compare.candidate``). Nothing is registered when
    the model already has versions (a re-run of the demo) or the spec compares none.
    """
    if spec.compare is None:
        return []
    name = spec.registered_model
    existing = tracker.model_versions(name)
    if existing:
        listed = ", ".join(
            f"{v.version}{' (' + ','.join(v.aliases) + ')' if v.aliases else ''}" for v in existing
        )
        return [f"registry:  {name!r} already has versions {listed}"]
    source = _placeholder_model(Path("out/mlflow/demo-model"))
    alias = spec.registry.champion_alias
    baseline, candidate = spec.compare.baseline, spec.compare.candidate
    champion = tracker.register_version(
        name, source=source, tags={"eval.log_version": baseline}, aliases=[alias]
    )
    challenger = tracker.register_version(name, source=source, tags={"eval.log_version": candidate})
    return [
        f"registry:  registered {name!r} version {champion.version} (alias {alias!r}, logs "
        f"{baseline}) and version {challenger.version} (candidate, logs {candidate})"
    ]


def _placeholder_model(folder: Path) -> str:
    """A one-file folder standing in for model files the demo does not have."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(
        "Demo registry version without model files: its predictions are already in the demo\n"
        "warehouse, under the model_version named by the version's eval.log_version tag.\n"
    )
    return str(folder.resolve())
