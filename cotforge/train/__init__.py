"""The compact SFT trainer and evaluation: train students on CoT corpora, then measure their accuracy."""

import sys
from types import ModuleType
from typing import NoReturn

from cotforge.train.config import PRESETS, TrainConfig

__all__ = ["PRESETS", "TrainConfig"]


class _TrainerPackage(ModuleType):
    """`cotforge.train(config)` reads like the API's call, but `cotforge.train` is this package (an import of any of
    its modules puts it there): say which function fine-tunes instead of "'module' object is not callable"."""

    def __call__(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("cotforge.train is the trainer's package; to fine-tune a student call cotforge.train_student")


sys.modules[__name__].__class__ = _TrainerPackage
