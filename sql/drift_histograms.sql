-- Drift histograms, one scan for all features: per period (reference / current), counts per
-- (fine grid bin, Evidently bin) for numeric features (n_i, b_i: the Sturges bin or the value
-- itself) and per value for categorical ones (c_j). NULL bins count missing values.
WITH rows AS (
    SELECT
        CASE WHEN {pred_ts} < {current_start} THEN 'reference' ELSE 'current' END AS period,
        {feature_exprs}
    FROM {predictions} AS p
    WHERE {pred_ts} >= {reference_start}
      AND {pred_ts} < {window_end}
      AND p.{pred_version} = {model_version}
)
SELECT
    {grouping_id} AS grouping_id,
    period,
    {feature_outputs}
    COUNT(*) AS n
FROM rows
GROUP BY GROUPING SETS (
{grouping_sets}
)
