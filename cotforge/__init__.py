"""cotforge: build, publish and train on chain-of-thought corpora."""

__version__ = "0.1.0"
