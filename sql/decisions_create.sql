-- The decision log (eval_pipelines/decisions.py): one row per verdict, append-only, in the
-- results store (never the source warehouse). Times are naive UTC. Portable DDL: DuckDB and
-- PostgreSQL run it as written.
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY,
    decided_at TIMESTAMP NOT NULL,
    model TEXT NOT NULL,
    baseline_version TEXT,
    candidate_version TEXT,
    week_start TIMESTAMP NOT NULL,
    week_end TIMESTAMP NOT NULL,
    decision TEXT NOT NULL,
    reasons TEXT NOT NULL,
    guardrails TEXT NOT NULL,
    trigger TEXT NOT NULL,
    artifacts TEXT,
    report TEXT,
    mlflow_run_id TEXT,
    mlflow_run_url TEXT,
    dagster_run_id TEXT,
    spec_hash TEXT NOT NULL,
    code_version TEXT NOT NULL
)
