"""The pipeline's stages in order, each with the module that owns its defaults.

One table for what several places need to agree on: the CLI's ``params`` command,
``inspections run`` and the tests that hold ``params.yaml`` and ``dvc.yaml`` to the
code (every stage is a package of the same name under ``pipeline/``).
"""

from __future__ import annotations

import importlib
from typing import Any

# stage -> module holding its DEFAULTS (None: the stage has no parameters)
STAGES: dict[str, str | None] = {
    "extract": "pipeline.extract.stage",
    "segment": "pipeline.segment.stage",
    "embed": "pipeline.embed.stage",
    "train": "pipeline.train.stage",
    "evaluate": "pipeline.evaluate.stage",
    "classify": None,
    "themes": "pipeline.themes.stage",
    "compare": "pipeline.compare.benchmark",
    "report": None,
}
# Sections of params.yaml that are not stages: where per-report tasks run (local
# processes or a Dask cluster).
SETTINGS: dict[str, str] = {"engine": "pipeline.core.engine"}


def stage_defaults(stage: str) -> dict[str, Any]:
    """The defaults of one stage's parameters (``{}`` for a stage without any)."""
    module = STAGES[stage] if stage in STAGES else SETTINGS[stage]
    if module is None:
        return {}
    return dict(importlib.import_module(module).DEFAULTS)


def all_defaults() -> dict[str, dict[str, Any]]:
    """Every stage that takes parameters, with its defaults, in pipeline order, then the
    settings sections (``engine``)."""
    names = [name for name, module in STAGES.items() if module] + list(SETTINGS)
    return {name: stage_defaults(name) for name in names}
