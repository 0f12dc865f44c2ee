-- Labeled requests both versions predicted (joined on the id), per slice cross: the regression
-- task's paired deltas come from the bucket bootstrap (a request's bucket is the same for both
-- versions), and this count is their n and the pairing check's.
-- NOT MATERIALIZED: each side reads only its version's rows of the window (a table once the
-- input checks made it); materialising both versions first cost more than reading it twice.
WITH win AS {not_materialized}(
{window}
),
baseline AS (
    SELECT * FROM win WHERE model_version = {baseline} AND label IS NOT NULL
),
candidate AS (
    SELECT id FROM win WHERE model_version = {candidate} AND label IS NOT NULL
)
SELECT
    {grouping_id} AS grouping_id,
    {slice_outputs}
    COUNT(*) AS n
FROM baseline
JOIN candidate ON candidate.id = baseline.id
GROUP BY GROUPING SETS (
{grouping_sets}
)
