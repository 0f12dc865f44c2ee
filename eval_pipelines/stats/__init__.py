"""Statistic families: the aggregates the warehouse computes, and how each becomes numbers
(:mod:`eval_pipelines.stats.base` describes the interface)."""
