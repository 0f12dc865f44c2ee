"""The run layout's vocabulary: the tags this package writes, the table paths and
MLflow's limits (see the package docstring of :mod:`eval_pipelines.tracking`)."""

from __future__ import annotations

RUN_KEY_TAG = "eval.run_key"
ERROR_TAG = "eval.error"
PUBLISH_COUNT_TAG = "eval.publish_count"
PARAM_CONFLICTS_TAG = "eval.param_conflicts"
SPEC_HASH_TAG = "eval.spec_hash"
SUPERSEDED_TAG = "eval.superseded"  # "true" on a run replaced by a newer spec, else "false"
SUPERSEDED_BY_TAG = "eval.superseded_by"  # on the old run: the id of the run replacing it
SUPERSEDES_TAG = "eval.supersedes"  # on the new run: the id of the run it replaced
SUPERSEDED_REASON_TAG = "eval.superseded_reason"  # on a replaced week run: why
RESULTS_DIGEST_TAG = "eval.results_digest"  # SHA-256 of the headline metrics and the tables
KIND_TAG = "eval.kind"  # "week" under a trend run, "trend" on the trend run
TREND_WEEK_TAG = "eval.trend."  # + week label, on the trend run: "<week run id> <digest>"
PARENT_RUN_TAG = "mlflow.parentRunId"  # MLflow's own nesting tag
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"  # MLflow's list of a run's tables
# MLflow 3's UI opens an experiment on the GenAI overview unless this tag says otherwise
# (values from the UI bundle of 3.17: genai_development, custom_model_development, ...).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
RESULTS_CHANGED = "results changed"
TREND_ROUNDS = 10
_OWN_TAGS = frozenset(
    {
        RUN_KEY_TAG,
        SPEC_HASH_TAG,
        SUPERSEDED_TAG,
        SUPERSEDED_BY_TAG,
        SUPERSEDES_TAG,
        SUPERSEDED_REASON_TAG,
        RESULTS_DIGEST_TAG,
        KIND_TAG,
    }
)
# Tags that describe one run's own state, not carried over to the run replacing it.
_RUN_STATE_TAGS = frozenset(
    {
        SUPERSEDED_TAG,
        SUPERSEDED_BY_TAG,
        SUPERSEDES_TAG,
        SUPERSEDED_REASON_TAG,
        RESULTS_DIGEST_TAG,
        PUBLISH_COUNT_TAG,
        PARAM_CONFLICTS_TAG,
        ERROR_TAG,
        LOGGED_ARTIFACTS_TAG,
    }
)
CI_LOW, CI_HIGH = "ci_low", "ci_high"
# The per-slice results as MLflow tables (run-relative paths; MlflowClient.log_table's format).
TABLES = {
    "slices": "tables/slices.json",
    "comparison": "tables/comparison.json",
    "drift": "tables/drift.json",
}

# Limits of the installed MLflow (mlflow/utils/validation.py, 3.17).
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_KEY = 250
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000

# System tags a caller may set; every other ``mlflow.*`` key is MLflow's own.
_CALLER_SYSTEM_TAGS = frozenset(
    {
        "mlflow.runName",
        "mlflow.note.content",
        "mlflow.user",
        "mlflow.source.name",
        "mlflow.source.type",
        "mlflow.source.git.commit",
        "mlflow.source.git.branch",
        "mlflow.source.git.repoURL",
    }
)
