"""The integer IR: the single source of truth for what the network computes."""

from .graph import Graph, Node
from .ops import OPS, accumulator
from .types import BIPOLAR, DType, TensorType, sint, uint

__all__ = ["Graph", "Node", "OPS", "accumulator", "BIPOLAR", "DType", "TensorType", "sint", "uint"]
