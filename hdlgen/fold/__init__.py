"""Parallelism per layer, chosen for a target throughput, and the cycle model."""

from .folding import Folding, LayerFold, auto_fold, check, predict, stages
from .plan import ArgMax, MVAU, Plan, plan

__all__ = ["Folding", "LayerFold", "auto_fold", "check", "predict", "stages", "ArgMax", "MVAU", "Plan", "plan"]
