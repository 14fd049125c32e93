"""Sources: map each paper data set (from its real Hub schema) and any user data set to Problems."""

from cotforge.recipes.sources.builtin import BUILTIN_SOURCES, BuiltinSource
from cotforge.recipes.sources.loading import (
    LoadedSource,
    SourceError,
    file_batches,
    load_problems,
    load_sources,
    text_digest,
)

__all__ = [
    "BUILTIN_SOURCES",
    "BuiltinSource",
    "LoadedSource",
    "SourceError",
    "file_batches",
    "load_problems",
    "load_sources",
    "text_digest",
]
