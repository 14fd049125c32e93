"""A sweep folder's JSON files, written and read like a build's: each written atomically (a kill or a full disk
leaves the old file or none, never a torn one), each checked against its schema when read, and a path one of them
names refused when it leaves the sweep folder (a cell.json is text anyone can edit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from cotforge.safety.atomic import atomic_write_text
from cotforge.safety.names import UnsafeName, path_inside
from cotforge.sweeps.layout import SweepDir
from cotforge.sweeps.settings import SweepError

Model = TypeVar("Model", bound=BaseModel)


class HeldOut(BaseModel):
    """held_out.json: the hold-out's check (what the report reads), the problems on each side and, for a hold-out
    drawn from the corpus, each test problem's near-variant group, which the statistics resample together."""

    check: dict[str, Any]
    problem_ids: list[str] = Field(min_length=1)
    train_problem_ids: list[str]
    question_groups: list[int] | None = Field(
        default=None, description="One number per test problem, in their order; equal numbers were held out together"
    )


def write_model(path: Path, value: BaseModel) -> None:
    atomic_write_text(path, value.model_dump_json(indent=1) + "\n")


def read_model(path: Path, model: type[Model], advice: str) -> Model:
    """`path` checked as a `model`; SweepError names the file and the first problem (never the file's text) and
    ends with `advice`."""
    try:
        return model.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise SweepError(f"{path}: missing; {advice}") from None
    except OSError as error:
        raise SweepError(f"{path}: cannot be read ({error.strerror}); {advice}") from None
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(map(str, first["loc"]))
        raise SweepError(f"{path}: torn or edited ({field + ': ' if field else ''}{first['msg']}); {advice}") from None


def inside_sweep(sweep: SweepDir, relative: str, field: str) -> Path:
    """The file `relative` names in the sweep folder; SweepError when it would leave the folder."""
    try:
        return path_inside(sweep.path, relative, field, "the sweep folder")
    except UnsafeName as error:
        raise SweepError(str(error)) from None
