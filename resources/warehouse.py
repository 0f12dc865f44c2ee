"""The warehouse an evaluation reads, as a Dagster resource.

Thin on purpose: the engine's :class:`~eval_pipelines.warehouse.Warehouse` does the work. The
resource only decides *which* URL to use: the one configured for this deployment (from the
``EVAL_WAREHOUSE_URL`` environment variable, see ``assets/definitions.py``) or, when none is
set, the URL written in each model's spec.
"""

from dagster import ConfigurableResource
from pydantic import Field

from eval_pipelines.spec import EvalSpec
from eval_pipelines.warehouse import Warehouse


class WarehouseResource(ConfigurableResource):
    """Read-only access to the warehouse holding inference logs and labels."""

    url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the warehouse for every model; unset means each spec's own "
            "'warehouse' key."
        ),
    )

    def spec_for(self, spec: EvalSpec) -> EvalSpec:
        """``spec`` with this deployment's warehouse URL, as the CLI's ``--warehouse`` does."""
        if not self.url:
            return spec
        return spec.model_copy(update={"warehouse": self.url})

    def connect(self, spec: EvalSpec) -> Warehouse:
        return Warehouse(self.spec_for(spec).warehouse)
