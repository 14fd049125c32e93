"""The on-disk contracts: a build directory and a student directory, each read and written only through its class,
and the layout of a corpus's repo on the Hub."""

from cotforge.corpus.builddir import (
    BuildDir,
    BuildDirError,
    ContaminationSummary,
    group_by_subset,
    recipe_fields,
    rejections_by_subset,
    report_of,
)
from cotforge.corpus.hublayout import HubLayout
from cotforge.corpus.studentdir import EvalDir, StudentDir

__all__ = [
    "BuildDir",
    "BuildDirError",
    "ContaminationSummary",
    "EvalDir",
    "HubLayout",
    "StudentDir",
    "group_by_subset",
    "recipe_fields",
    "rejections_by_subset",
    "report_of",
]
