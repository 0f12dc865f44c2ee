"""Words and number formats that users read, defined once for every output.

The report, the verdict's reasons, alerts and the Dagster metadata all say the interval level
the same way.
"""


def level_label(level: float) -> str:
    """The interval level as a percentage: ``0.95`` -> ``95%``, ``0.975`` -> ``97.5%``."""
    return f"{round(level * 100, 6):g}%"
