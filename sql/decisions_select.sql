-- The decision log, newest first; {filters} is built from bound parameters only
-- (eval_pipelines/decisions.py), {limit} is an integer.
SELECT
    decision_id, decided_at, model, baseline_version, candidate_version, week_start, week_end,
    decision, reasons, guardrails, trigger, artifacts, report, mlflow_run_id, mlflow_run_url,
    dagster_run_id, spec_hash, code_version
FROM decisions
WHERE 1 = 1{filters}
ORDER BY decided_at DESC, decision_id DESC
LIMIT {limit}
