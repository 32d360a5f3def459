"""How a core is verified in simulation, in one place for ``sim``, ``make bench`` and the tests:
a timing run without stalls, then a run with random stalls, each compared with the golden
model's labels, and the measured cycles set against the cycle model's
(:meth:`SimReport.versus`).

The timing run streams the first *timing_images* images (all when None) back to back with
``tready`` always high: it gives the cycles per image at steady state and the latency. The
stalled run streams the first *stall_images* images (all when None) with ``tvalid`` and
``tready`` dropped at random (probabilities *stall_in*, *stall_out*; seed *seed*). Each run may
be split over *jobs* simulator processes (:func:`hdlgen.sim.shards.run_sharded`).
"""

from __future__ import annotations

import numpy as np

from hdlgen.sim.results import SimReport
from hdlgen.sim.shards import run_sharded

#: Probability of a stall cycle on each stream in the stalled run.
STALL_PROBABILITY = 0.3


def verify(model, images, expected=None, *, lanes: int, work_dir, stalls: bool = True,
           stall_in: float = STALL_PROBABILITY, stall_out: float = STALL_PROBABILITY, seed: int = 0,
           timing_images: int | None = None, stall_images: int | None = None, jobs: int = 1,
           timeout_cycles: int = 100_000, progress: bool = True, log=None) -> SimReport:
    """Timing run, then (if *stalls* and the timing run did not hang) the stalled run, of
    *model* (a Verilator model or harness: anything with ``run``). Without *expected* the
    outputs are compared later (:meth:`SimReport.compared`)."""
    images = np.asarray(images)
    exp = None if expected is None else np.asarray(expected)
    n = len(images)
    common = dict(lanes=lanes, work_dir=work_dir, timeout_cycles=timeout_cycles, progress=progress, seed=seed)

    def run(count, stall, label):
        count = n if count is None else max(1, min(n, count))
        if log is not None:
            log(f"simulating {count} images {label} (up to {jobs} process(es))")
        args = (images[:count], None if exp is None else exp[:count])
        if jobs == 1:   # one process: the model's own result, with every per-run detail
            return model.run(*args, stall_in=stall[0], stall_out=stall[1], **common)
        return run_sharded(model, *args, jobs=jobs, stall_in=stall[0], stall_out=stall[1], **common)

    timing = run(timing_images, (0.0, 0.0), "without stalls (timing)")
    stalled = None
    if stalls and not timing.hung:
        stalled = run(stall_images, (stall_in, stall_out), "with random input stalls and output backpressure")
    return SimReport(timing=timing, stalled=stalled)
