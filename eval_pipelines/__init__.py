"""eval-pipelines: model evaluation as an engineering discipline.

The engine computes sliced metrics, paired comparisons and drift from sufficient statistics
aggregated in the user's warehouse, turns them into a release verdict, and writes artifacts.
It never imports Dagster; the orchestration layer (``assets/``, ``resources/``) wraps it.
"""

__version__ = "0.1.0"
