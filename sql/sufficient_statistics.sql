-- One scan of the window yields every number the metrics need (ARCHITECTURE principle 1).
-- Two families of grouping sets share the scan, for every slice cross:
--   threshold cells: slice x version x label x resample bucket x threshold side, with count,
--                    log-loss sum and squared-error sum: exact accuracy, precision, recall,
--                    F1, log loss and Brier per bucket, for the paired bucket bootstrap;
--   score histogram: slice x version x label x fine score bin, with count and score sum:
--                    ROC AUC, PR AUC and ECE, and their (cell-level) bootstrap.
-- The result size depends on slices, buckets and bins, never on the row count.
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
)
SELECT
    GROUPING({grouping_columns}) AS grouping_id,
    {slice_outputs}
    model_version,
    label,
    bucket,
    above,
    fine_bin,
    COUNT(*) AS n,
    SUM(score) AS score_sum,
    SUM(log_loss_term) AS log_loss_sum,
    SUM(squared_error) AS squared_error_sum
FROM cells
GROUP BY GROUPING SETS (
{grouping_sets}
)
