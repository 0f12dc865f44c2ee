-- Paired outcomes for McNemar's test: baseline and candidate predictions on the same request
-- (inner join on the prediction id), counted by slice, label and each model's threshold side.
WITH win AS (
{window}
),
baseline AS (
    SELECT id, label, {slice_passthrough}
        CASE WHEN score >= {threshold} THEN 1 ELSE 0 END AS above
    FROM win
    WHERE model_version = {baseline} AND label IS NOT NULL
),
candidate AS (
    SELECT id, CASE WHEN score >= {threshold} THEN 1 ELSE 0 END AS above
    FROM win
    WHERE model_version = {candidate}
)
SELECT
    GROUPING({grouping_columns}) AS grouping_id,
    {slice_outputs}
    baseline.label AS label,
    baseline.above AS baseline_above,
    candidate.above AS candidate_above,
    COUNT(*) AS n
FROM baseline
JOIN candidate ON candidate.id = baseline.id
GROUP BY GROUPING SETS (
{grouping_sets}
)
