-- Labels must be unique per prediction id, or the join would count a prediction twice.
-- {window_labels}: the labels of the window's predictions (sql/window_labels.sql, or the
-- session-private table holding them).
SELECT COUNT(*) AS n_duplicated_ids
FROM (
    SELECT l.{label_id}
    FROM {window_labels} AS l
    GROUP BY l.{label_id}
    HAVING COUNT(*) > 1
) AS duplicated
