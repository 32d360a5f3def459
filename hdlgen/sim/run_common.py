"""What the cocotb bench and the compiled harness share around one run: the checked case,
the folder the run's files live in, progress lines and the simulator's messages."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdlgen.errors import HdlgenError

__all__ = [
    "ProgressEcho",
    "RESET_CYCLES",
    "RunCase",
    "check_readmem",
    "log",
    "run_folder",
    "simulator_messages",
    "tail",
]

#: Cycles the design is held in reset before edge 0.
RESET_CYCLES = 4


def log(enabled: bool, message: str) -> None:
    if enabled:
        print(f"hdlgen sim: {message}", file=sys.stderr, flush=True)


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def simulator_messages(log_file: Path) -> list[str]:
    """Verilator's own ``%Warning``/``%Error`` lines from a simulation log."""
    try:
        text = log_file.read_text(errors="replace")
    except OSError:
        return []
    return [ln.strip() for ln in text.splitlines() if ln.startswith(("%Warning", "%Error"))]


def check_readmem(warnings: Sequence[str], work: Path) -> None:
    """A ``$readmem`` file that was not found is a user error (Verilator only warns)."""
    unread = [w for w in warnings if "$readmem file not found" in w]
    if unread:
        files = sorted({w.split(":", 2)[1].strip() for w in unread if w.count(":") >= 2})
        raise HdlgenError(
            f"memory init file(s) {', '.join(files) or '?'} not found in work_dir {work}"
        )


@contextlib.contextmanager
def run_folder(keep_dir: os.PathLike[str] | str | None) -> Iterator[Path]:
    """*keep_dir* (created, kept), or a temporary folder removed afterwards."""
    if keep_dir is not None:
        folder = Path(keep_dir).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="hdlgen-sim-") as name:
        yield Path(name)


@dataclass(frozen=True)
class RunCase:
    """One run's checked inputs (see :meth:`hdlgen.sim.runner.SimModel.run`)."""

    images: np.ndarray
    expected: np.ndarray | None
    lanes: int
    work: Path
    stall_in: float
    stall_out: float
    seed: int
    timeout_cycles: int
    drain_cycles: int

    @property
    def n_images(self) -> int:
        return int(self.images.shape[0])

    @property
    def beats_per_image(self) -> int:
        return int(self.images[0].size) // self.lanes

    @classmethod
    def checked(
        cls,
        images: np.ndarray,
        expected: np.ndarray | Sequence[int] | None,
        *,
        lanes: int,
        work_dir: os.PathLike[str] | str,
        stall_in: float,
        stall_out: float,
        seed: int,
        timeout_cycles: int,
        drain_cycles: int,
    ) -> RunCase:
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise HdlgenError(f"images must be uint8, got {images.dtype}")
        if images.ndim != 4:
            raise HdlgenError(f"images must have shape (N, H, W, C), got {images.shape}")
        n = images.shape[0]
        if n == 0:
            raise HdlgenError("no images to simulate")
        if not isinstance(lanes, (int, np.integer)) or lanes < 1:
            raise HdlgenError(f"lanes must be a positive integer, got {lanes!r}")
        per_image = int(np.prod(images.shape[1:]))
        if per_image % lanes:
            raise HdlgenError(
                f"an image has {per_image} values, not a multiple of lanes={lanes}"
            )
        for name, p in (("stall_in", stall_in), ("stall_out", stall_out)):
            if not 0.0 <= p < 1.0:
                raise HdlgenError(f"{name} must be in [0, 1), got {p}")
        if timeout_cycles < 1:
            raise HdlgenError(f"timeout_cycles must be positive, got {timeout_cycles}")
        exp = None
        if expected is not None:
            exp = np.asarray(expected).astype(np.int64).reshape(-1)
            if exp.shape[0] != n:
                raise HdlgenError(f"{n} images but {exp.shape[0]} expected labels")
        work = Path(work_dir).resolve()
        if not work.is_dir():
            raise HdlgenError(f"work_dir {work} is not a folder")
        return cls(
            images=images, expected=exp, lanes=int(lanes), work=work, stall_in=float(stall_in),
            stall_out=float(stall_out), seed=int(seed), timeout_cycles=int(timeout_cycles),
            drain_cycles=int(drain_cycles),
        )


class ProgressEcho:
    """Copies the progress lines a simulator writes to a file onto stderr while it runs."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pos = 0

    def start(self) -> None:
        if self.enabled:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()

    def _pump(self) -> None:
        try:
            with open(self.path) as f:
                f.seek(self._pos)
                text = f.read()
                self._pos = f.tell()
        except OSError:
            return
        for line in text.splitlines():
            log(True, f"  {line}")

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self._pump()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._pump()

