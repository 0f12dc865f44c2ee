-- Paired outcomes: baseline and candidate predictions on the same request (inner join on the
-- prediction id), counted by slice, label, each model's threshold side (McNemar's test) and
-- each model's coarse score bin (joint cells: the paired bootstrap of ROC AUC, PR AUC, ECE).
-- NOT MATERIALIZED: each side reads only its version's rows of the window (a table once the
-- input checks made it); materialising both versions first cost more than reading it twice.
WITH win AS {not_materialized}(
{window}
),
baseline AS (
    SELECT id, label, {slice_passthrough}score,
        CASE WHEN score >= {threshold} THEN 1 ELSE 0 END AS above,
        GREATEST(0, LEAST({joint_bins} - 1, CAST(FLOOR(score * {joint_bins}) AS INTEGER))) AS bin
    FROM win
    WHERE model_version = {baseline} AND label IS NOT NULL
),
candidate AS (
    SELECT id, score,
        CASE WHEN score >= {threshold} THEN 1 ELSE 0 END AS above,
        GREATEST(0, LEAST({joint_bins} - 1, CAST(FLOOR(score * {joint_bins}) AS INTEGER))) AS bin
    FROM win
    WHERE model_version = {candidate}
)
SELECT
    {grouping_id} AS grouping_id,
    {slice_outputs}
    baseline.label AS label,
    baseline.above AS baseline_above,
    candidate.above AS candidate_above,
    baseline.bin AS baseline_bin,
    candidate.bin AS candidate_bin,
    COUNT(*) AS n,
    -- Fixed point, so parallel sums are bit-identical run to run (see sufficient_statistics).
    CAST({baseline_score_sum} AS {double}) / 1e12
        AS baseline_score_sum,
    CAST({candidate_score_sum} AS {double}) / 1e12
        AS candidate_score_sum
FROM baseline
JOIN candidate ON candidate.id = baseline.id
GROUP BY GROUPING SETS (
{grouping_sets}
)
