-- Lists with a relevant item that both versions ranked (joined on the list id), per slice
-- cross of the baseline's list: the ranking task's paired deltas come from the bucket
-- bootstrap (a list's bucket is the same for both versions), and this count is their n.
WITH win AS (
{window}
),
{lists},
baseline AS (
    SELECT * FROM per_list WHERE model_version = {baseline} AND relevant > 0
),
candidate AS (
    SELECT list_id FROM per_list WHERE model_version = {candidate} AND relevant > 0
)
SELECT
    {grouping_id} AS grouping_id,
    {slice_outputs}
    COUNT(*) AS n
FROM baseline
JOIN candidate ON candidate.list_id = baseline.list_id
GROUP BY GROUPING SETS (
{grouping_sets}
)
