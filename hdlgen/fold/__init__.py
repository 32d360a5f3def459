"""Plan (IR nodes -> engines), folding (engine and knobs per layer, chosen for a target
throughput), the cycle model and the resource estimate, over the registered engine kinds."""

from ..engines import ArgMax, Decimate, Delay, Fork, GlobalSum, MaxPool, MVAU, SWU, SelectThreshold, Window
from ..engines.mvau import MvauFold
from .folding import Folding, auto_fold, check
from .plan import Plan, plan
from .timeline import predict, stages

LayerFold = MvauFold

__all__ = ["Folding", "LayerFold", "MvauFold", "auto_fold", "check", "predict", "stages", "ArgMax", "Decimate",
           "Delay", "Fork", "GlobalSum", "MaxPool", "MVAU", "Plan", "SelectThreshold", "SWU", "Window", "plan"]
