"""Where a run's artifacts live: ``<root>/<model>/<week>/`` on the local filesystem.

The evaluation asset writes the folder with the engine's atomic
:func:`~eval_pipelines.artifacts.write_artifacts`; the verdict asset and the input check read
files back from it. Frames never travel through an IO manager.
"""

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field


class ArtifactStoreResource(ConfigurableResource):
    """A folder of per-model, per-week artifact folders."""

    root: str = Field(
        default="out/dagster",
        description="Folder holding <model>/<week>/ artifact folders (relative to the cwd).",
    )

    def folder(self, model: str, week: str) -> Path:
        """The artifact folder of ``model`` for the week starting ``week`` (YYYY-MM-DD)."""
        return Path(self.root) / model / week
