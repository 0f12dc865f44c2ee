-- The ranking task's one scan of the window (ARCHITECTURE principle 1): per-list values from
-- window functions (sql/ranking_lists.sql), then per slice cross, version and resample bucket
-- (a hash of the list id, the same for both versions) the lists with a relevant item (n),
-- with and without a label (coverage), and the exact sums of the per-list values.
WITH win AS (
{window}
),
{lists}
SELECT
    'ranking' AS family,
    {grouping_id} AS grouping_id,
    {slice_outputs}
    model_version,
    bucket,
    SUM(is_scored) AS n,
    SUM(is_labeled) AS n_labeled,
    COUNT(*) - SUM(is_labeled) AS n_unlabeled{sums}
FROM per_list
GROUP BY GROUPING SETS (
{grouping_sets}
)
