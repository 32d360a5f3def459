"""Parallelism per layer, chosen for a target throughput, and the cycle model."""

from .folding import Folding, LayerFold, auto_fold, check, predict, stages
from .plan import SWU, ArgMax, MaxPool, MVAU, Plan, Window, plan

__all__ = ["Folding", "LayerFold", "auto_fold", "check", "predict", "stages", "ArgMax", "MaxPool", "MVAU", "Plan", "SWU",
           "Window", "plan"]
