"""Parallelism per layer, chosen for a target throughput, and the cycle model."""

from .folding import Folding, LayerFold, auto_fold, check, predict, stages
from .plan import (SWU, ArgMax, Decimate, Delay, Fork, GlobalSum, MaxPool, MVAU, Plan, SelectThreshold, Window,
                   plan)

__all__ = ["Folding", "LayerFold", "auto_fold", "check", "predict", "stages", "ArgMax", "Decimate", "Delay", "Fork",
           "GlobalSum", "MaxPool", "MVAU", "Plan", "SelectThreshold", "SWU", "Window", "plan"]
