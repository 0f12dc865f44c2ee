"""``<model>/dashboard``: the model's trend page, rebuilt after each run of its weekly evaluation.

The asset is downstream of ``<model>/report`` and materialized by the weekly evaluation's own
step, right after its weeks are written: that step records each week with an
``AssetMaterialization`` (per-week metadata in a multi-week backfill) rather than an output, so
a separate downstream step in the same run would be skipped by Dagster. The page is built
once per run whatever the number of weeks, from every week folder under the artifact store's
local folder of the model (:func:`eval_pipelines.dashboard.write_dashboard`), not only the
weeks of this run, and each evaluated week's partition of the asset is recorded with it.

With an ``s3://`` artifact root, each run may be a fresh pod with an empty staging folder: the
page is built from the week folders published under ``<root>/<model>/`` (the files the page
reads, fetched into the staging folder when they are not already there) and published as
``<root>/<model>/dashboard.html``, beside the week folders its links point to.
"""

from collections.abc import Callable, Iterator

from dagster import AssetKey, AssetMaterialization, MetadataValue

from eval_pipelines.dashboard import WEEK_FILES, week_folders, write_dashboard
from eval_pipelines.errors import EvalError
from eval_pipelines.object_store import fetch_folders, publish_file
from eval_pipelines.report_artifacts import DASHBOARD_FILE
from eval_pipelines.spec import EvalSpec
from resources import ArtifactStoreResource

DESCRIPTION = (
    "The trend dashboard (dashboard.html beside the week folders): one static page over every "
    "evaluated week, headline metrics with interval bands per version, drift, label coverage "
    "and the verdict history, each week linking its report.html."
)


def dashboard_materializations(
    spec: EvalSpec,
    key: AssetKey,
    artifacts: ArtifactStoreResource,
    weeks: list[str],
    log: Callable[[str], None],
) -> Iterator[AssetMaterialization]:
    """Rebuild the model's dashboard and record it for each of ``weeks`` (those evaluated)."""
    if not weeks:
        return
    root = artifacts.folder(spec.model, weeks[0]).parent.parent
    published = None
    try:
        if artifacts.on_s3:
            model_url = f"{artifacts.root.rstrip('/')}/{spec.model}"
            fetch_folders(
                model_url, root / spec.model, WEEK_FILES, endpoint_url=artifacts.endpoint_url
            )
        path = write_dashboard(root, spec.model)
        if artifacts.on_s3:
            published = publish_file(
                path, f"{model_url}/{DASHBOARD_FILE}", endpoint_url=artifacts.endpoint_url
            )
    except EvalError as exc:  # the weeks are recorded; a missing page must not hide them
        log(f"{spec.model}: dashboard not rebuilt: {exc}")
        return
    shown = [folder.name for folder in week_folders(path.parent)]
    log(f"{spec.model}: dashboard of {len(shown)} weeks at {published or path}")
    metadata = {
        "dashboard": (
            MetadataValue.url(published) if published else MetadataValue.path(str(path.resolve()))
        ),
        "weeks": MetadataValue.int(len(shown)),
        "first_week": MetadataValue.text(shown[0]),
        "last_week": MetadataValue.text(shown[-1]),
        "bytes": MetadataValue.int(path.stat().st_size),
    }
    for week in weeks:
        yield AssetMaterialization(key, partition=week, metadata=metadata)
