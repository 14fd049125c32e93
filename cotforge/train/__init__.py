"""The compact SFT trainer and evaluation: train students on CoT corpora, then measure their accuracy."""

from cotforge.train.config import PRESETS, TrainConfig

__all__ = ["PRESETS", "TrainConfig"]
