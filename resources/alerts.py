"""The alert webhook (Slack-compatible) as a resource; unset means no alerts are sent."""

from dagster import ConfigurableResource
from pydantic import Field


class AlertsResource(ConfigurableResource):
    webhook_url: str | None = Field(
        default=None,
        description=(
            "Incoming-webhook URL (Slack or compatible) for hold verdicts, significant "
            "regressions and drift. A secret: set it from EVAL_ALERT_WEBHOOK_URL."
        ),
    )
