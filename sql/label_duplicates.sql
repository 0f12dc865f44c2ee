-- Labels must be unique per prediction id, or the join would count a prediction twice.
-- Read from the labels of the window's predictions (sql/window_labels.sql, or the
-- session-private table holding them). Counted with window functions, which sort and spill
-- to disk under a memory cap, where a GROUP BY over every id (a hash table as large as the
-- ids) ran out of memory (DuckDB capped at 40MB for a 10M-row window).
SELECT COUNT(*) AS n_duplicated_ids
FROM (
    SELECT
        COUNT(*) OVER (PARTITION BY l.{label_id}) AS n_labels,
        -- Which of an id's labels is first does not matter; Spark requires an ORDER BY.
        ROW_NUMBER() OVER (PARTITION BY l.{label_id} ORDER BY l.{label_id}) AS nth
    FROM {window_labels} AS l
) AS counted
WHERE n_labels > 1 AND nth = 1
