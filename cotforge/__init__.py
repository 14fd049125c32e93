"""cotforge: build, publish and train on chain-of-thought corpora.

    import cotforge
    corpus = cotforge.build("svamp-granularity", sample=True)     # a Recipe, a YAML file or a built-in recipe
    frame = corpus.to_polars()                                    # or .records(), .to_dataset(), .push(repo_id)

The names below are the public API (README.md, "Python API"); they load on first use, so `import cotforge` and the
command line start fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_HOMES = {
    "build": "cotforge.api",
    "plan_build": "cotforge.api",
    "open_build": "cotforge.api",
    "pull": "cotforge.api",
    "import_paper": "cotforge.api",
    "train_student": "cotforge.api",
    "evaluate": "cotforge.api",
    "score": "cotforge.api",
    "sweep": "cotforge.api",
    "judge": "cotforge.api",
    "Rubric": "cotforge.judging",
    "Corpus": "cotforge.api",
    "BuildPlan": "cotforge.api",
    "CustomPrompt": "cotforge.builders.custom",
    "BuildProgress": "cotforge.builders.progress",
    "BuildFailed": "cotforge.builders.build",
    "BuildInterrupted": "cotforge.builders.build",
    "BuildDirError": "cotforge.corpus",
    "Recipe": "cotforge.schemas",
    "SourceSpec": "cotforge.schemas",
    "Problem": "cotforge.schemas",
    "CoTRecord": "cotforge.schemas",
    "Rejection": "cotforge.schemas",
    "BuildReport": "cotforge.schemas",
    "TrainConfig": "cotforge.train.config",
    "SweepSettings": "cotforge.sweeps",
}
__all__ = [
    "BuildDirError",
    "BuildFailed",
    "BuildInterrupted",
    "BuildPlan",
    "BuildProgress",
    "BuildReport",
    "CoTRecord",
    "Corpus",
    "CustomPrompt",
    "Problem",
    "Recipe",
    "Rejection",
    "Rubric",
    "SourceSpec",
    "SweepSettings",
    "TrainConfig",
    "build",
    "evaluate",
    "import_paper",
    "judge",
    "open_build",
    "plan_build",
    "pull",
    "score",
    "sweep",
    "train_student",
]

if TYPE_CHECKING:
    from cotforge.api import (
        BuildPlan,
        Corpus,
        build,
        evaluate,
        import_paper,
        judge,
        open_build,
        plan_build,
        pull,
        score,
        sweep,
        train_student,
    )
    from cotforge.builders.build import BuildFailed, BuildInterrupted
    from cotforge.builders.custom import CustomPrompt
    from cotforge.builders.progress import BuildProgress
    from cotforge.corpus import BuildDirError
    from cotforge.judging import Rubric
    from cotforge.schemas import BuildReport, CoTRecord, Problem, Recipe, Rejection, SourceSpec
    from cotforge.sweeps import SweepSettings
    from cotforge.train.config import TrainConfig


def __getattr__(name: str) -> Any:
    if name == "train":  # the trainer's package, as an import of it would set it (the API's call is train_student)
        return import_module("cotforge.train")
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'cotforge' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return [*__all__, "__version__"]
