-- Labeled requests both versions predicted (joined on the id), per slice cross: the pairs
-- only the baseline classified correctly, only the candidate, and all (McNemar's test on
-- accuracy; the n of every paired comparison). The other deltas come from the bucket
-- bootstrap (a request's bucket is the same for both versions).
-- NOT MATERIALIZED: each side reads only its version's rows of the window (a table once the
-- input checks made it); materialising both versions first cost more than reading it twice.
WITH win AS {not_materialized}(
{window}
),
baseline AS (
    SELECT * FROM win WHERE model_version = {baseline} AND label IS NOT NULL
),
candidate AS (
    SELECT id, prediction FROM win WHERE model_version = {candidate}
)
SELECT
    {grouping_id} AS grouping_id,
    {slice_outputs}
    SUM(CASE WHEN baseline.prediction = baseline.label
              AND candidate.prediction <> baseline.label THEN 1 ELSE 0 END) AS baseline_only,
    SUM(CASE WHEN candidate.prediction = baseline.label
              AND baseline.prediction <> baseline.label THEN 1 ELSE 0 END) AS candidate_only,
    COUNT(*) AS n
FROM baseline
JOIN candidate ON candidate.id = baseline.id
GROUP BY GROUPING SETS (
{grouping_sets}
)
