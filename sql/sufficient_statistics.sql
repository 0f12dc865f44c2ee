-- One scan of the window yields every number the metrics need (ARCHITECTURE principle 1).
-- Two families share the scan, each over every slice cross:
--   threshold cells: slice x version x label x resample bucket x threshold side, with count,
--                    log-loss sum and squared-error sum: exact accuracy, precision, recall,
--                    F1, log loss and Brier per bucket, for the paired bucket bootstrap;
--   score histogram: slice x version x label x fine score bin, with count and score sum:
--                    ROC AUC, PR AUC and ECE, and their (cell-level) bootstrap.
-- Each family first aggregates at its finest grain (every slice column at once), then forms
-- the slice crosses from that smaller result: the same numbers as grouping the rows directly,
-- in less time. The result size depends on slices, buckets and bins, never on the row count.
-- Sums of doubles are fixed point (integers of 1e-12, converted back at the end): a parallel
-- floating-point SUM adds in a different order on each run, and results must be bit-identical.
WITH win AS (
{window}
),
cells AS (
    SELECT
        model_version,
        label,
        {slice_passthrough}
        {bucket_expr} AS bucket,
        CASE WHEN score >= {threshold} THEN 1 ELSE 0 END AS above,
        GREATEST(0, LEAST({fine_bins} - 1, CAST(FLOOR(score * {fine_bins}) AS INTEGER)))
            AS fine_bin,
        score,
        -(label * LN(GREATEST(score, {eps})) + (1 - label) * LN(GREATEST(1 - score, {eps})))
            AS log_loss_term,
        (score - label) * (score - label) AS squared_error
    FROM win
),
threshold_cells AS (
    SELECT {slice_passthrough}model_version, label, bucket, above,
        COUNT(*) AS n,
        {log_loss_sum} AS log_loss_sum,
        {squared_error_sum} AS squared_error_sum
    FROM cells
    GROUP BY {slice_passthrough}model_version, label, bucket, above
),
histogram_cells AS (
    SELECT {slice_passthrough}model_version, label, fine_bin, COUNT(*) AS n,
        {score_sum} AS score_sum
    FROM cells
    GROUP BY {slice_passthrough}model_version, label, fine_bin
)
SELECT
    'threshold' AS family,
    {grouping_id} AS grouping_id,
    {slice_outputs}
    model_version,
    label,
    bucket,
    above,
    CAST(NULL AS INTEGER) AS fine_bin,
    SUM(n) AS n,
    CAST(NULL AS DOUBLE PRECISION) AS score_sum,
    CAST({total_log_loss_sum} AS DOUBLE PRECISION) / 1e12 AS log_loss_sum,
    CAST({total_squared_error_sum} AS DOUBLE PRECISION) / 1e12 AS squared_error_sum
FROM threshold_cells
GROUP BY GROUPING SETS (
{threshold_sets}
)
UNION ALL
SELECT
    'histogram' AS family,
    {grouping_id} AS grouping_id,
    {slice_outputs}
    model_version,
    label,
    CAST(NULL AS BIGINT) AS bucket,
    CAST(NULL AS INTEGER) AS above,
    fine_bin,
    SUM(n) AS n,
    CAST({total_score_sum} AS DOUBLE PRECISION) / 1e12 AS score_sum,
    CAST(NULL AS DOUBLE PRECISION) AS log_loss_sum,
    CAST(NULL AS DOUBLE PRECISION) AS squared_error_sum
FROM histogram_cells
GROUP BY GROUPING SETS (
{histogram_sets}
)
