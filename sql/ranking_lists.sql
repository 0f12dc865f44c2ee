-- The ranking task's per-list values (a fragment: CTEs after "win", used by
-- ranking_statistics.sql and ranking_pairs.sql). One row per (list, item) as served; an item's
-- gain is its graded relevance, 0 when it has no (matured) label: implicit feedback.
items AS (
    SELECT
        id,
        model_version,
        list_id,
        score,
        {slice_passthrough}
        label,
        CASE WHEN label > 0 THEN CAST(label AS {double}) ELSE 0.0 END AS gain
    FROM win
),
-- pos: the served rank (score descending, ties by item id ascending); ideal_pos: the rank in
-- the ideal order (gain descending); hits_so_far: relevant items at or above pos.
ranked AS (
    SELECT
        model_version,
        list_id,
        {slice_passthrough}
        label,
        gain,
        ROW_NUMBER() OVER (
            PARTITION BY model_version, list_id ORDER BY score DESC NULLS LAST, id
        ) AS pos,
        ROW_NUMBER() OVER (PARTITION BY model_version, list_id ORDER BY gain DESC, id)
            AS ideal_pos,
        SUM(CASE WHEN gain > 0 THEN 1 ELSE 0 END) OVER (
            PARTITION BY model_version, list_id ORDER BY score DESC NULLS LAST, id
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS hits_so_far
    FROM items
),
-- Per list and version: labels, relevant items R, the first relevant position, and at each
-- cutoff c the DCG@c, ideal DCG@c, hits in the top c and the sum of precision@i over the
-- relevant positions i <= c. Slice columns are list-level: a list takes its smallest value.
lists AS (
    SELECT
        model_version,
        list_id,
        {slice_first}
        COUNT(label) AS n_labels,
        SUM(CASE WHEN gain > 0 THEN 1 ELSE 0 END) AS relevant,
        MIN(CASE WHEN gain > 0 THEN pos END) AS first_relevant{cutoff_sums}
    FROM ranked
    GROUP BY model_version, list_id
),
-- Each list's values (NULL when it has no relevant item; such lists are counted apart).
per_list AS (
    SELECT
        model_version,
        list_id,
        {slice_passthrough}
        {bucket_expr} AS bucket,
        relevant,
        CASE WHEN n_labels > 0 THEN 1 ELSE 0 END AS is_labeled,
        CASE WHEN relevant > 0 THEN 1 ELSE 0 END AS is_scored,
        CASE WHEN relevant > 0 THEN CAST(1 AS {double}) / first_relevant END AS rr{cutoff_values}
    FROM lists
)
