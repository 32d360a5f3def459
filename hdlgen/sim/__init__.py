"""Simulation of emitted accelerators under Verilator, and Verilator lint.

:func:`build_model` verilates for the cocotb bench, :func:`build_harness` compiles the design
with the C++ stream harness; the models' ``run`` streams images through the AXI4-Stream ports
(same arguments, same :class:`SimResult`), :func:`verify` combines a stall-free timing run
and a run with random stalls, :func:`run_sharded` splits one run over several processes.
"""

from hdlgen.sim.harness import HarnessModel, build_harness
from hdlgen.sim.runner import (
    DEFAULT_BUILD_ARGS,
    SimError,
    SimModel,
    SimResult,
    build_model,
    steady_state_cycles_per_image,
)
from hdlgen.sim.results import SimReport
from hdlgen.sim.shards import ShardedResult, run_sharded
from hdlgen.sim.verify import verify
from hdlgen.sim.tools import (
    LINT_WAIVERS,
    ensure_verilator_on_path,
    lint,
    verilator_bin_dir,
)

__all__ = [
    "DEFAULT_BUILD_ARGS",
    "LINT_WAIVERS",
    "HarnessModel",
    "ShardedResult",
    "SimError",
    "SimModel",
    "SimReport",
    "SimResult",
    "build_harness",
    "build_model",
    "ensure_verilator_on_path",
    "lint",
    "run_sharded",
    "steady_state_cycles_per_image",
    "verify",
    "verilator_bin_dir",
]
