"""Inference written once over statistic families: the bucket and cell bootstraps, the
resampling they share, and the significance tests."""
