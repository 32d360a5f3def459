"""NumPy executor of the integer IR: the reference every other model is checked against."""

from .executor import run, classify

__all__ = ["run", "classify"]
