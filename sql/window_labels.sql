-- The labels of the window's predictions: every label whose id is the id of a prediction in
-- the window, with the labels source's own columns (checked by the input checks; the window
-- join keeps at most the one label that counts). Past a few million predictions it runs in parts
-- by ranges of the ids, each bounded by the window's least and greatest id (id_ranges.py).
SELECT l.*
FROM {labels} AS l
WHERE l.{label_id} IN (
    SELECT p.{pred_id} FROM {predictions} AS p
    WHERE {pred_ts} >= {window_start} AND {pred_ts} < {window_end}{pred_id_range}
){label_id_range}
