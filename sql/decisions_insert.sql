-- Append one verdict to the decision log; rows are never updated or deleted.
INSERT INTO decisions (
    decision_id, decided_at, model, baseline_version, candidate_version, week_start, week_end,
    decision, reasons, guardrails, trigger, artifacts, report, mlflow_run_id, mlflow_run_url,
    dagster_run_id, spec_hash, code_version
) VALUES (
    :decision_id, :decided_at, :model, :baseline_version, :candidate_version, :week_start,
    :week_end, :decision, :reasons, :guardrails, :trigger, :artifacts, :report, :mlflow_run_id,
    :mlflow_run_url, :dagster_run_id, :spec_hash, :code_version
)
