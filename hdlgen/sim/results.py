"""What a simulation run measured: :class:`SimResult` (one run), :class:`SimReport` (a timing
run and a stalled run), and the steady-state cycles-per-image rule both benches share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = ["SimReport", "SimResult", "steady_state_cycles_per_image"]


def steady_state_cycles_per_image(t_out: Sequence[int] | np.ndarray) -> float | None:
    """Cycles per image once the pipeline is full, from output times of a stall-free run.

    ``(t_out[-1] - t_out[k]) / (n - 1 - k)`` with the warm-up ``k = n // 2`` (``k = 0`` for
    two images, ``None`` for fewer). The first half is dropped because while the pipeline
    fills, outputs may come at irregular spacing (FIFOs and skid buffers take in the first
    images faster than the slowest stage passes them on); by the middle of a back-to-back
    stream the slowest stage has been busy for long enough that outputs leave at its rate.
    Averaging over the second half is exact for a periodic steady state and smooths a
    pattern that repeats every few images.
    """
    t = np.asarray(t_out, dtype=np.int64)
    n = t.shape[0]
    if n < 2:
        return None
    k = 0 if n == 2 else n // 2
    return float(t[-1] - t[k]) / float(n - 1 - k)


def _mismatches(outputs: np.ndarray, expected: np.ndarray) -> tuple[int, ...]:
    m = min(len(outputs), len(expected))
    return tuple(int(i) for i in np.nonzero(outputs[:m] != expected[:m])[0])


@dataclass(frozen=True)
class SimResult:
    """What one run of a bench saw. Cycle numbers count rising edges after reset."""

    n_images: int
    outputs: np.ndarray
    """Output values in arrival order (one per image received; fewer if hung)."""
    expected: np.ndarray | None
    mismatches: tuple[int, ...]
    """Indices of received images whose output differs from *expected*."""
    hung: bool
    t_in_first: np.ndarray
    """Cycle at which each image's first beat was accepted."""
    t_in_last: np.ndarray
    """Cycle at which each image's last beat was accepted."""
    t_out: np.ndarray
    """Cycle of each output beat."""
    cycles: int
    """Cycles from reset release to the last output (or to the hang verdict)."""
    lanes: int
    beats_per_image: int
    stall_in: float
    stall_out: float
    seed: int
    timeout_cycles: int
    extra_outputs: int = 0
    tlast_missing: int = 0
    beats_sent: int = 0
    """Input beats accepted by the design."""
    sim_s: float = 0.0
    """Seconds of the bench's main loop."""
    process_s: float = 0.0
    """Seconds of the whole simulator process (start-up included)."""
    warnings: tuple[str, ...] = ()
    """Verilator's warnings printed while simulating (``$readmem`` trouble and the like)."""
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_bench(
        cls,
        raw: dict,
        *,
        n_images: int,
        expected: np.ndarray | None,
        lanes: int,
        beats_per_image: int,
        stall_in: float,
        stall_out: float,
        seed: int,
        timeout_cycles: int,
        process_s: float,
        warnings: tuple[str, ...] = (),
    ) -> SimResult:
        outputs = np.asarray(raw["outputs"], dtype=np.int64)
        mismatches = () if expected is None else _mismatches(outputs, expected)
        return cls(
            n_images=n_images,
            outputs=outputs,
            expected=expected,
            mismatches=mismatches,
            hung=bool(raw["hung"]),
            t_in_first=np.asarray(raw["t_in_first"], dtype=np.int64),
            t_in_last=np.asarray(raw["t_in_last"], dtype=np.int64),
            t_out=np.asarray(raw["t_out"], dtype=np.int64),
            cycles=int(raw["cycles"]),
            lanes=lanes,
            beats_per_image=beats_per_image,
            stall_in=stall_in,
            stall_out=stall_out,
            seed=seed,
            timeout_cycles=timeout_cycles,
            extra_outputs=int(raw.get("extra_outputs", 0)),
            tlast_missing=int(raw.get("tlast_missing", 0)),
            beats_sent=int(raw.get("beats_sent", 0)),
            sim_s=float(raw.get("wall_s", 0.0)),
            process_s=process_s,
            warnings=warnings,
            raw=raw,
        )

    def compared(self, expected: np.ndarray | Sequence[int]) -> SimResult:
        """This run, its outputs compared with *expected* (one label per image sent)."""
        exp = np.asarray(expected).astype(np.int64).reshape(-1)
        return replace(self, expected=exp, mismatches=_mismatches(self.outputs, exp))

    @property
    def n_out(self) -> int:
        return int(self.outputs.shape[0])

    @property
    def shards(self) -> tuple:
        """A run in one process, read as the one shard of a sharded run."""
        return ((0, self),)

    def timing_source(self) -> dict:
        """Which images the timing figures were measured on (all of this run's)."""
        return {"shard": 1, "of_shards": 1, "first_image": 0, "images": self.n_images,
                "stall_in": self.stall_in, "stall_out": self.stall_out}

    @property
    def completed(self) -> bool:
        """Every beat went in, every image produced an output, and the run did not hang."""
        return (
            not self.hung
            and self.n_out == self.n_images
            and self.beats_sent == self.n_images * self.beats_per_image
        )

    @property
    def passed(self) -> bool:
        """Completed, every output as expected, no extra output beats, ``tlast`` on each."""
        return (
            self.completed
            and not self.mismatches
            and self.extra_outputs == 0
            and self.tlast_missing == 0
        )

    @property
    def stalled(self) -> bool:
        return self.stall_in > 0.0 or self.stall_out > 0.0

    @property
    def latency_cycles(self) -> int | None:
        """Cycles from image 0's first accepted beat to its output beat.

        Image 0 enters an idle pipeline; with input stalls the figure includes the gaps.
        """
        if self.n_out == 0 or self.t_in_first.shape[0] == 0:
            return None
        return int(self.t_out[0] - self.t_in_first[0])

    @property
    def latency_after_last_beat(self) -> int | None:
        """Cycles from image 0's last accepted beat to its output beat."""
        if self.n_out == 0 or self.t_in_last.shape[0] == 0:
            return None
        return int(self.t_out[0] - self.t_in_last[0])

    @property
    def cycles_per_image(self) -> float | None:
        """Steady-state cycles per image (meaningful for stall-free runs); see
        :func:`steady_state_cycles_per_image`."""
        if self.hung:
            return None
        return steady_state_cycles_per_image(self.t_out)

    @property
    def cycles_per_s(self) -> float:
        return self.cycles / self.sim_s if self.sim_s > 0 else 0.0

    @property
    def images_per_s(self) -> float:
        return self.n_out / self.sim_s if self.sim_s > 0 else 0.0

    def summary(self) -> str:
        head = (
            f"{self.n_out}/{self.n_images} images, {self.cycles} cycles in {self.sim_s:.2f} s "
            f"({self.cycles_per_s:,.0f} cycles/s, {self.images_per_s:,.1f} images/s; "
            f"process {self.process_s:.1f} s)"
        )
        parts = [head]
        if self.hung:
            parts.append(f"HUNG: nothing moved for {self.timeout_cycles} cycles")
        elif self.beats_sent != self.n_images * self.beats_per_image:
            parts.append(
                f"all outputs came before the input was done "
                f"({self.beats_sent}/{self.n_images * self.beats_per_image} beats in)"
            )
        if self.expected is not None:
            if self.mismatches:
                shown = ", ".join(str(i) for i in self.mismatches[:10])
                more = "..." if len(self.mismatches) > 10 else ""
                parts.append(f"{len(self.mismatches)} mismatches (images {shown}{more})")
            else:
                parts.append("all outputs match")
        if self.extra_outputs:
            parts.append(f"{self.extra_outputs} extra output beats")
        if self.tlast_missing:
            parts.append(f"{self.tlast_missing} output beats without tlast")
        if not self.stalled and not self.hung:
            cpi = self.cycles_per_image
            if cpi is not None:
                parts.append(f"{cpi:.1f} cycles/image")
            if self.latency_cycles is not None:
                parts.append(f"latency {self.latency_cycles} cycles")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {
            "n_images": self.n_images,
            "n_out": self.n_out,
            "passed": self.passed,
            "hung": self.hung,
            "mismatches": list(self.mismatches),
            "extra_outputs": self.extra_outputs,
            "tlast_missing": self.tlast_missing,
            "beats_sent": self.beats_sent,
            "cycles": self.cycles,
            "cycles_per_image": self.cycles_per_image,
            "latency_cycles": self.latency_cycles,
            "latency_after_last_beat": self.latency_after_last_beat,
            "lanes": self.lanes,
            "beats_per_image": self.beats_per_image,
            "stall_in": self.stall_in,
            "stall_out": self.stall_out,
            "seed": self.seed,
            "sim_s": self.sim_s,
            "process_s": self.process_s,
            "cycles_per_s": self.cycles_per_s,
            "images_per_s": self.images_per_s,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class SimReport:
    """A stall-free timing run and, optionally, a run with random stalls."""

    timing: SimResult
    stalled: SimResult | None

    @property
    def runs(self) -> tuple[SimResult, ...]:
        return (self.timing,) if self.stalled is None else (self.timing, self.stalled)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.runs)

    @property
    def hung(self) -> bool:
        return any(r.hung for r in self.runs)

    @property
    def cycles_per_image(self) -> float | None:
        return self.timing.cycles_per_image

    @property
    def latency_cycles(self) -> int | None:
        return self.timing.latency_cycles

    @property
    def mismatches(self) -> tuple[int, ...]:
        """Image indices that mismatched in any run (indices into the full image array)."""
        return tuple(sorted(set().union(*(r.mismatches for r in self.runs))))

    def compared(self, expected) -> "SimReport":
        """Both runs, their outputs compared with *expected* (one label per image)."""
        exp = np.asarray(expected)
        stalled = None if self.stalled is None else self.stalled.compared(exp[:self.stalled.n_images])
        return SimReport(timing=self.timing.compared(exp[:self.timing.n_images]), stalled=stalled)

    def versus(self, prediction: dict) -> dict:
        """Measured cycles per image and latency next to the cycle model's ``prediction``."""
        measured, predicted = self.cycles_per_image, prediction["cycles_per_image"]
        return {"cycles_per_image": measured, "predicted_cycles_per_image": predicted,
                "model_error_percent": None if measured is None else round(100 * (measured - predicted) / predicted, 2),
                "latency_cycles": self.latency_cycles, "predicted_latency_cycles": prediction["latency_cycles"]}

    def summary(self) -> str:
        lines = [f"timing run: {self.timing.summary()}"]
        if self.stalled is not None:
            lines.append(f"stalled run: {self.stalled.summary()}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "hung": self.hung,
            "cycles_per_image": self.cycles_per_image,
            "latency_cycles": self.latency_cycles,
            "timing": self.timing.to_dict(),
            "stalled": None if self.stalled is None else self.stalled.to_dict(),
        }
