-- Labels must be unique per prediction id, or the join would count a prediction twice.
SELECT COUNT(*) AS n_duplicated_ids
FROM (
    SELECT l.{label_id}
    FROM {labels} AS l
    WHERE l.{label_id} IN (
        SELECT p.{pred_id} FROM {predictions} AS p
        WHERE {pred_ts} >= {window_start} AND {pred_ts} < {window_end}
    )
    GROUP BY l.{label_id}
    HAVING COUNT(*) > 1
) AS duplicated
