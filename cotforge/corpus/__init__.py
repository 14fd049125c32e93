"""The on-disk contracts: a build directory and a student directory, each read and written only through its class."""

from cotforge.corpus.builddir import (
    BuildDir,
    BuildDirError,
    ContaminationSummary,
    group_by_subset,
    recipe_fields,
    rejections_by_subset,
    report_of,
)
from cotforge.corpus.studentdir import EvalDir, StudentDir

__all__ = [
    "BuildDir",
    "BuildDirError",
    "ContaminationSummary",
    "EvalDir",
    "StudentDir",
    "group_by_subset",
    "recipe_fields",
    "rejections_by_subset",
    "report_of",
]
