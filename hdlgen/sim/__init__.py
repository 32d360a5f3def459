"""Simulation of emitted accelerators: Verilator via cocotb, and Verilator lint.

:func:`build_model` verilates once, :meth:`SimModel.run` streams images through the AXI4-Stream
ports, :func:`simulate` combines a stall-free timing run and a run with random stalls.
"""

from hdlgen.sim.runner import (
    DEFAULT_BUILD_ARGS,
    SimError,
    SimModel,
    SimReport,
    SimResult,
    build_model,
    simulate,
    steady_state_cycles_per_image,
)
from hdlgen.sim.tools import (
    LINT_WAIVERS,
    ensure_verilator_on_path,
    lint,
    verilator_bin_dir,
)

__all__ = [
    "DEFAULT_BUILD_ARGS",
    "LINT_WAIVERS",
    "SimError",
    "SimModel",
    "SimReport",
    "SimResult",
    "build_model",
    "ensure_verilator_on_path",
    "lint",
    "simulate",
    "steady_state_cycles_per_image",
    "verilator_bin_dir",
]
