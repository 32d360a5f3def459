"""One run split over several simulator processes, each streaming a contiguous slice of the
images from reset, combined into one :class:`ShardedResult`.

Outputs and mismatches are those of the whole image set (indices into it). Timing comes from
the first shard, which is never smaller than the others: its cycles per image at steady state
(second half of its back-to-back stream, as :func:`steady_state_cycles_per_image` defines)
and its image 0's latency, which enters an idle pipeline. A shard gets at least
:data:`MIN_SHARD_IMAGES` images (fewer shards than asked for when there are too few images),
so that its steady state is reached. Shard ``i`` draws its random stalls with seed
``seed + i``.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from hdlgen.errors import HdlgenError
from hdlgen.sim.results import SimResult
from hdlgen.sim.run_common import log

__all__ = ["MIN_SHARD_IMAGES", "ShardedResult", "run_sharded", "shard_bounds"]

MIN_SHARD_IMAGES = 16


def shard_bounds(n_images: int, jobs: int) -> list[tuple[int, int]]:
    """``(first, stop)`` image ranges of the shards: at most *jobs*, each of at least
    :data:`MIN_SHARD_IMAGES` images (one shard when there are fewer), sizes differing by at
    most one, larger ones first."""
    if jobs < 1:
        raise HdlgenError(f"jobs must be at least 1, not {jobs}")
    count = max(1, min(jobs, n_images // MIN_SHARD_IMAGES))
    size, extra = divmod(n_images, count)
    bounds, first = [], 0
    for i in range(count):
        stop = first + size + (1 if i < extra else 0)
        bounds.append((first, stop))
        first = stop
    return bounds


@dataclass(frozen=True)
class ShardedResult:
    """Several :class:`SimResult` of consecutive image slices, read as one run."""

    shards: tuple[tuple[int, SimResult], ...]
    """(index of the shard's first image, its result), in image order."""

    def compared(self, expected: np.ndarray | Sequence[int]) -> ShardedResult:
        """These runs, their outputs compared with *expected* (one label per image)."""
        exp = np.asarray(expected)
        return ShardedResult(tuple((a, r.compared(exp[a:a + r.n_images])) for a, r in self.shards))

    @property
    def timing(self) -> SimResult:
        """The shard that timing figures come from."""
        return self.shards[0][1]

    @property
    def n_images(self) -> int:
        return sum(r.n_images for _, r in self.shards)

    @property
    def n_out(self) -> int:
        return sum(r.n_out for _, r in self.shards)

    @property
    def outputs(self) -> np.ndarray:
        """Outputs of every shard, in image order (a hung shard contributes fewer)."""
        return np.concatenate([r.outputs for _, r in self.shards])

    @property
    def mismatches(self) -> tuple[int, ...]:
        return tuple(first + i for first, r in self.shards for i in r.mismatches)

    @property
    def hung(self) -> bool:
        return any(r.hung for _, r in self.shards)

    @property
    def passed(self) -> bool:
        return all(r.passed for _, r in self.shards)

    @property
    def stall_in(self) -> float:
        return self.timing.stall_in

    @property
    def stall_out(self) -> float:
        return self.timing.stall_out

    @property
    def cycles_per_image(self) -> float | None:
        return self.timing.cycles_per_image

    @property
    def latency_cycles(self) -> int | None:
        return self.timing.latency_cycles

    @property
    def cycles(self) -> int:
        """Cycles simulated by all shards together."""
        return sum(r.cycles for _, r in self.shards)

    @property
    def sim_s(self) -> float:
        """Seconds until the slowest shard's main loop was done."""
        return max(r.sim_s for _, r in self.shards)

    @property
    def cycles_per_s(self) -> float:
        return self.cycles / self.sim_s if self.sim_s > 0 else 0.0

    def timing_source(self) -> dict:
        """Which images the timing figures were measured on."""
        first, r = self.shards[0]
        return {"shard": 1, "of_shards": len(self.shards), "first_image": first,
                "images": r.n_images, "stall_in": r.stall_in, "stall_out": r.stall_out}


def run_sharded(
    model,
    images: np.ndarray,
    expected: np.ndarray | Sequence[int] | None = None,
    *,
    jobs: int,
    seed: int = 0,
    progress: bool = True,
    **run_args,
) -> ShardedResult:
    """Run *images* through *model* (anything with :meth:`hdlgen.sim.runner.SimModel.run`'s
    signature that can run several times at once, such as a
    :class:`hdlgen.sim.harness.HarnessModel`) in up to *jobs* processes; *run_args* go to
    each ``run``. Progress lines come from the first shard."""
    images = np.asarray(images)
    exp = None if expected is None else np.asarray(expected)
    n = images.shape[0] if images.ndim else 0
    if n == 0:
        raise HdlgenError("no images to simulate")
    bounds = shard_bounds(n, jobs)
    if len(bounds) > 1:
        log(progress, f"{n} images in {len(bounds)} processes: "
                      + ", ".join(f"{a}-{b - 1}" for a, b in bounds))

    def one(i: int) -> SimResult:
        a, b = bounds[i]
        return model.run(images[a:b], None if exp is None else exp[a:b], seed=seed + i,
                         progress=progress and i == 0, **run_args)

    if len(bounds) == 1:
        results = [one(0)]
    else:
        with ThreadPoolExecutor(max_workers=len(bounds)) as pool:
            results = list(pool.map(one, range(len(bounds))))
    for i, ((a, b), r) in enumerate(zip(bounds, results)):
        if i > 0:
            log(progress, f"images {a}-{b - 1}: {r.summary()}")
    return ShardedResult(tuple((a, r) for (a, _), r in zip(bounds, results)))
