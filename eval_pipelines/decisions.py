"""The decision log: every verdict, appended to the ``decisions`` table of the results store.

The results store is a SQLAlchemy URL, separate from the source warehouse (which is only ever
read, ARCHITECTURE.md principle 6): ``--results-store`` on the CLI, the ``decision_log``
resource's ``url`` in Dagster, else ``$EVAL_RESULTS_STORE_URL``, else the embedded DuckDB file
``out/results.duckdb`` beside the local MLflow store (``out/mlflow``), so the CLI and a local
Dagster write one log. A URL that names the spec's warehouse is refused.

One row per verdict (:class:`DecisionRecord`): when (UTC), the model, baseline and candidate,
the week, the decision, every reason and the guardrails as JSON text, what triggered it
(:data:`TRIGGERS`), where its evidence lives (artifact folder, report, MLflow run, Dagster
run), the spec hash and the code version. Rows are only inserted (``sql/decisions_*.sql``):
a re-run of a week appends a new row, and the log keeps both.

Concurrency: PostgreSQL takes concurrent appends from any number of runs. A DuckDB file takes
one writing process at a time (DuckDB locks the file); every connection here is opened for
one statement and closed at once, and a process that finds the file locked retries for up to
``lock_timeout_s`` (default :data:`LOCK_TIMEOUT_S`) before failing with one sentence. That
suits one machine's runs; a deployment whose runs append concurrently at volume uses
PostgreSQL.
"""

import json
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from eval_pipelines.dialects import dialect_class
from eval_pipelines.errors import EvalError
from eval_pipelines.gates import DECISIONS, Verdict
from eval_pipelines.lineage import code_version
from eval_pipelines.sqlbuild import template
from eval_pipelines.warehouse import safe_url
from eval_pipelines.windows import Window, naive_utc

RESULTS_STORE_ENV = "EVAL_RESULTS_STORE_URL"
DEFAULT_RESULTS_STORE = "duckdb:///out/results.duckdb"
LOCK_TIMEOUT_S = 30.0
# Where the decision log can live: a SQL database we can write through SQLAlchemy.
STORE_ENGINES = ("duckdb", "postgresql")

# What started a verdict: the weekly schedule, a Dagster backfill, the registry sensor, the
# command line, or anything else (a run launched by hand in the Dagster UI, a notebook).
TRIGGERS = ("schedule", "backfill", "sensor", "cli", "manual")
# The run tag that carries the trigger from the caller to run_evaluation (and to MLflow).
TRIGGER_TAG = "eval.trigger"
COLUMNS = (
    "decision_id",
    "decided_at",
    "model",
    "baseline_version",
    "candidate_version",
    "week_start",
    "week_end",
    "decision",
    "reasons",
    "guardrails",
    "trigger",
    "artifacts",
    "report",
    "mlflow_run_id",
    "mlflow_run_url",
    "dagster_run_id",
    "spec_hash",
    "code_version",
)


def results_store_url(url: str | None = None) -> str:
    """The results store: ``url`` if given, else ``$EVAL_RESULTS_STORE_URL``, else the
    default DuckDB file."""
    return url or os.environ.get(RESULTS_STORE_ENV) or DEFAULT_RESULTS_STORE


def trigger_of(run_tags: Mapping[str, str]) -> str:
    """The trigger of a Dagster run, from the tags Dagster sets on it: ``dagster/backfill``
    (a backfill's runs, even of a scheduled job), ``dagster/schedule_name``,
    ``dagster/sensor_name``; none of them: ``manual``."""
    if run_tags.get("dagster/backfill"):
        return "backfill"
    if run_tags.get("dagster/schedule_name"):
        return "schedule"
    if run_tags.get("dagster/sensor_name"):
        return "sensor"
    return "manual"


def describe_code_version() -> str:
    """``<package version>`` and, from a git checkout, `` (git <commit>[, dirty])``."""
    found = code_version()
    text = str(found["package"])
    if found["git_commit"]:
        dirty = ", dirty" if found["git_dirty"] == "yes" else ""
        text += f" (git {found['git_commit']}{dirty})"
    return text


@dataclass(frozen=True)
class DecisionRecord:
    """One row of the decision log (``sql/decisions_create.sql`` documents the columns)."""

    decided_at: datetime  # naive UTC
    model: str
    baseline_version: str | None
    candidate_version: str | None
    week_start: datetime
    week_end: datetime
    decision: str
    reasons: str  # JSON: every reason of verdict.json
    guardrails: str  # JSON: the failed severity: warn gates
    trigger: str
    artifacts: str | None
    report: str | None
    mlflow_run_id: str | None
    mlflow_run_url: str | None
    dagster_run_id: str | None
    spec_hash: str
    code_version: str
    decision_id: str = ""

    @classmethod
    def of(
        cls,
        verdict: Verdict,
        window: Window,
        *,
        spec_hash: str,
        trigger: str,
        artifacts: str | None = None,
        report: str | None = None,
        mlflow_run_id: str | None = None,
        mlflow_run_url: str | None = None,
        dagster_run_id: str | None = None,
        decided_at: datetime | None = None,
    ) -> "DecisionRecord":
        if trigger not in TRIGGERS:
            raise ValueError(f"trigger {trigger!r} is none of {', '.join(TRIGGERS)}")
        document = verdict.to_dict()
        return cls(
            decision_id=str(uuid.uuid4()),
            decided_at=naive_utc(decided_at or datetime.now(UTC)),
            model=verdict.model,
            baseline_version=verdict.baseline,
            candidate_version=verdict.candidate,
            week_start=naive_utc(window.start),
            week_end=naive_utc(window.end),
            decision=verdict.decision,
            reasons=json.dumps(document["reasons"], default=str),
            guardrails=json.dumps(document["guardrails"], default=str),
            trigger=trigger,
            artifacts=artifacts,
            report=report,
            mlflow_run_id=mlflow_run_id,
            mlflow_run_url=mlflow_run_url,
            dagster_run_id=dagster_run_id,
            spec_hash=spec_hash,
            code_version=describe_code_version(),
        )


T = TypeVar("T")


class DecisionLog:
    """The ``decisions`` table of one results store (a SQLAlchemy URL: DuckDB or PostgreSQL).

    The table is created on the first append. Reading a store that holds no log yet gives an
    empty frame, and never creates the file.
    """

    def __init__(self, url: str | None = None, lock_timeout_s: float = LOCK_TIMEOUT_S) -> None:
        written = results_store_url(url)
        try:
            parsed = make_url(written)
        except Exception:
            raise EvalError(
                f"results store: {safe_url(written)!r} is not a SQLAlchemy URL"
            ) from None
        backend = parsed.get_backend_name()
        if backend not in STORE_ENGINES:
            raise EvalError(
                f"results store {safe_url(written)}: the engine {backend!r} is not supported; "
                "use DuckDB (duckdb:///path/results.duckdb) or PostgreSQL (postgresql://...)"
            )
        self.is_duckdb = backend == "duckdb"
        if self.is_duckdb and parsed.database not in (None, "", ":memory:"):
            parsed = parsed.set(database=str(Path(parsed.database).expanduser().resolve()))
        # The warehouse's URL rules: a bare postgresql:// gets the installed driver.
        self.url: URL = dialect_class(parsed).resolve_url(parsed)
        self.safe_url = safe_url(parsed)  # as written (the driver not shown), password masked
        self.lock_timeout_s = lock_timeout_s

    @property
    def path(self) -> Path | None:
        """The DuckDB file, or None for a server."""
        return Path(self.url.database) if self.is_duckdb and self.url.database else None

    def same_database_as(self, warehouse_url: str | URL) -> bool:
        """Whether ``warehouse_url`` names this very database (same file, or same server and
        database), which the decision log must never write into."""
        other = make_url(warehouse_url)
        if self.is_duckdb:
            if other.get_backend_name() != "duckdb" or not other.database:
                return False
            return Path(other.database).expanduser().resolve() == self.path
        return (
            other.get_backend_name() == self.url.get_backend_name()
            and (other.host or "localhost") == (self.url.host or "localhost")
            and (other.port or 5432) == (self.url.port or 5432)
            and other.database == self.url.database
        )

    @contextmanager
    def _connection(self, write: bool) -> Iterator[sa.Connection]:
        """One short-lived connection (no pool: a DuckDB file is unlocked once it closes)."""
        connect_args: dict[str, Any] = {}
        if self.is_duckdb and not write:
            connect_args["read_only"] = True
        engine = sa.create_engine(self.url, poolclass=NullPool, connect_args=connect_args)
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            engine.dispose()

    def _retrying(self, action: str, work: Callable[[], T]) -> T:
        """``work()``, retried while a DuckDB file is locked by another process, up to
        ``lock_timeout_s``; any failure as one sentence naming the store."""
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                return work()
            except EvalError:
                raise
            except Exception as exc:
                text = " ".join(str(exc).split("\n[SQL:")[0].split())
                locked = self.is_duckdb and "lock" in text.lower()
                if locked and time.monotonic() < deadline:
                    time.sleep(delay * (1 + random.random()))  # jitter: writers do not align
                    delay = min(delay * 2, 1.0)
                    continue
                if locked:
                    raise EvalError(
                        f"results store {self.safe_url}: {action} failed: the DuckDB file stayed "
                        f"locked by another process for {self.lock_timeout_s:g} s (DuckDB takes "
                        "one writing process at a time; for runs that append concurrently use "
                        f"a PostgreSQL results store, ${RESULTS_STORE_ENV})"
                    ) from None
                password = self.url.password
                if password:
                    text = text.replace(str(password), "***")
                raise EvalError(
                    f"results store {self.safe_url}: {action} failed: {text[:500]}"
                ) from None

    def check_reachable(self) -> None:
        """Connect once to a results server (EvalError if it cannot be reached), so a run
        fails before it evaluates rather than after its artifacts are written. A DuckDB file
        is not opened: it is created on the first append, and a lock is waited for then."""
        if self.is_duckdb:
            return

        def connect() -> None:
            with self._connection(write=False) as connection:
                connection.execute(sa.text("SELECT 1"))

        self._retrying("connecting", connect)

    def append(self, record: DecisionRecord) -> None:
        """Insert ``record`` (creating the table on first use); never updates a row."""
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

        def work() -> None:
            with self._connection(write=True) as connection:
                self._create(connection)
                connection.execute(sa.text(template("decisions_insert")), asdict(record))
                connection.commit()

        self._retrying("appending the decision", work)

    @staticmethod
    def _create(connection: sa.Connection) -> None:
        if sa.inspect(connection).has_table("decisions"):
            return
        try:
            connection.execute(sa.text(template("decisions_create")))
            connection.commit()
        except sa.exc.DBAPIError:
            # Another run created it meanwhile (PostgreSQL's IF NOT EXISTS can race).
            connection.rollback()
            if not sa.inspect(connection).has_table("decisions"):
                raise

    def read(
        self,
        *,
        model: str | None = None,
        since: date | datetime | None = None,
        decision: str | None = None,
        trigger: str | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """The log, newest first, filtered: ``since`` keeps decisions taken at or after it
        (a date: from its midnight, UTC)."""
        if limit is not None and limit < 1:
            raise EvalError(f"--limit must be a positive number of rows, not {limit}")
        if decision is not None and decision not in DECISIONS:
            raise EvalError(f"--decision {decision!r} is none of {', '.join(DECISIONS)}")
        if trigger is not None and trigger not in TRIGGERS:
            raise EvalError(f"--trigger {trigger!r} is none of {', '.join(TRIGGERS)}")
        if self.path is not None and not self.path.exists():
            return pd.DataFrame(columns=list(COLUMNS))
        filters, params = "", {}
        for column, value in (("model", model), ("decision", decision), ("trigger", trigger)):
            if value is not None:
                filters += f" AND {column} = :{column}"
                params[column] = value
        if since is not None:
            if not isinstance(since, datetime):
                since = datetime(since.year, since.month, since.day)
            filters += " AND decided_at >= :since"
            params["since"] = naive_utc(since)
        sql = template("decisions_select").format(filters=filters, limit=int(limit or 1_000_000))

        def work() -> pd.DataFrame:
            with self._connection(write=False) as connection:
                if not sa.inspect(connection).has_table("decisions"):
                    return pd.DataFrame(columns=list(COLUMNS))
                result = connection.execute(sa.text(sql), params)
                return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

        return self._retrying("reading the decision log", work)


# The columns of ``eval-pipelines decisions`` as a table; JSON and CSV carry every column.
TABLE_COLUMNS = ("decided_at", "model", "week", "versions", "decision", "trigger", "artifacts")


def render_decisions(rows: pd.DataFrame, fmt: str, source: str = "") -> str:
    """The log as ``table`` (one line per decision), ``json`` (a list of objects, reasons and
    guardrails parsed) or ``csv`` (every column, reasons as JSON text)."""
    if fmt == "csv":
        return rows.to_csv(index=False)
    if fmt == "json":
        records = []
        for row in rows.to_dict(orient="records"):
            for key in ("reasons", "guardrails"):
                row[key] = json.loads(row[key]) if isinstance(row[key], str) else row[key]
            records.append({k: _jsonable(v) for k, v in row.items()})
        return json.dumps(records, indent=2) + "\n"
    if rows.empty:
        return f"no decisions recorded in {source}\n" if source else "no decisions recorded\n"
    lines = [
        [
            f"{pd.Timestamp(r.decided_at):%Y-%m-%d %H:%M:%S}",
            r.model,
            f"{pd.Timestamp(r.week_start):%Y-%m-%d}",
            f"{r.baseline_version} -> {r.candidate_version}"
            if r.candidate_version
            else "(every version)",
            r.decision,
            r.trigger,
            r.artifacts or "",
        ]
        for r in rows.itertuples(index=False)
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(TABLE_COLUMNS)]
    text = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [list(TABLE_COLUMNS), *lines]
    ]
    return "\n".join(text) + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, pd.Timestamp)):
        return pd.Timestamp(value).isoformat()
    return value
