"""Sources: map each paper data set (from its real Hub schema) and any user data set to Problems."""

from cotforge.recipes.sources.builtin import BUILTIN_SOURCES, BuiltinSource
from cotforge.recipes.sources.loading import LoadedSource, load_problems, load_sources, text_digest
from cotforge.recipes.sources.rows import SourceError, file_batches

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
