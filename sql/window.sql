-- The evaluation window: predictions with timestamp in [window_start, window_end), each joined
-- to its label. A label counts only if it arrived within max_delay of the prediction (label
-- maturity); otherwise the row is unlabeled (label NULL) and only counts toward coverage, and
-- label_excluded says why an existing label was not used.
-- Adapt freely: any query returning these output columns works (the two id ranges bound
-- the ids of one part when the join runs in parts: eval_pipelines/id_ranges.py).
SELECT
    p.{pred_id} AS id,
    p.{pred_version} AS model_version,
    {pred_output},
    {slice_select}
    CASE
        WHEN {label_ts} >= {pred_ts}
         AND {label_ts} <= {pred_ts} + {max_delay}
        THEN {label}
    END AS label,
    -- Why a label that exists does not count: reported by the input checks.
    CASE
        WHEN {label_ts} < {pred_ts} THEN 'before_prediction'
        WHEN {label_ts} > {pred_ts} + {max_delay} THEN 'too_late'
    END AS label_excluded
FROM {predictions} AS p
LEFT JOIN {labels} AS l
    ON l.{label_id} = p.{pred_id}{label_id_range}
WHERE {pred_ts} >= {window_start}
  AND {pred_ts} < {window_end}{pred_id_range}
