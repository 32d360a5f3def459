"""Verilate an accelerator once, then stream images through it with cocotb.

:func:`build_model` compiles the Verilog with Verilator through cocotb's runner and returns a
:class:`SimModel` that can be run many times. :meth:`SimModel.run` streams a batch of uint8
images through the AXI4-Stream ports (bench: ``sim/bench_axis.py``) and returns a
:class:`SimResult`; :func:`hdlgen.sim.verify.verify` combines a stall-free timing run and a
run with random stalls of any such model. The compiled harness
(:mod:`hdlgen.sim.harness`) runs the same case much faster, with the same results.

The design under test has ports ``clk``, ``rst`` (active-high, synchronous),
``s_axis_tdata`` (``8 * lanes`` bits, lane 0 in bits 7:0), ``s_axis_tvalid``,
``s_axis_tready``, ``s_axis_tlast`` (last beat of each image), ``m_axis_tdata`` (the class
index of one image per beat), ``m_axis_tvalid``, ``m_axis_tready`` and ``m_axis_tlast``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
from hdlgen.sim.results import SimResult, steady_state_cycles_per_image
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
from hdlgen.sim.tools import ensure_verilator_on_path


__all__ = [
    "DEFAULT_BUILD_ARGS",
    "SimError",
    "SimModel",
    "SimResult",
    "build_model",
    "steady_state_cycles_per_image",
]

#: Verilator options for simulation builds.
#: ``--x-assign 0``/``--x-initial 0``: undefined values and uninitialized state read as 0,
#: deterministic from run to run (the block RAMs of an FPGA also start at 0);
#: ``-Wno-fatal -Wno-lint -Wno-style``: linting is :func:`hdlgen.sim.tools.lint`'s job, a
#: simulation build must not stop on warnings; ``--threads 1``: one simulation thread per
#: process (the machines have 2 cores; the compiled harness uses them by running shards of the
#: images in separate processes). For the cocotb bench, Verilator's optimization level and its
#: makefile's C++ flags (``-Os``) stay at their defaults: a lower C++ level compiles the
#: runtime library no faster overall, and that library is cached (see :func:`build_model`);
#: the harness compiles the model's code with ``-O2`` (:data:`hdlgen.sim.harness.HARNESS_MAKE_ARGS`).
DEFAULT_BUILD_ARGS: tuple[str, ...] = (
    "--x-assign",
    "0",
    "--x-initial",
    "0",
    "--threads",
    "1",
    "-Wno-fatal",
    "-Wno-lint",
    "-Wno-style",
)

_BENCH_MODULE = "bench_axis"


class SimError(RuntimeError):
    """Verilator or the simulation itself failed (not a mismatch or a hang: those are results)."""


def _bench_dir() -> Path:
    override = os.environ.get("HDLGEN_SIM_BENCH_DIR")
    folder = Path(override) if override else Path(__file__).resolve().parents[2] / "sim"
    if not (folder / f"{_BENCH_MODULE}.py").is_file():
        raise HdlgenError(
            f"cocotb bench {_BENCH_MODULE}.py not found in {folder} "
            "(set HDLGEN_SIM_BENCH_DIR to the project's sim/ folder)"
        )
    return folder


# ---------------------------------------------------------------------------------------------
# Build


def _make_runner(build_dir: Path, cache: Path | None):
    """cocotb's Verilator runner, restoring cached runtime objects between verilate and make."""
    from cocotb_tools.runner import get_runner

    runner = get_runner("verilator")
    base_execute = runner._execute_cmds

    def execute_cmds(cmds, cwd, stdout=None):
        for cmd in cmds:
            if cmd and cmd[0] == "make":
                try:
                    restore_runtime(build_dir, cache)
                except OSError:
                    pass
                # The PyPI wheel's verilated.mk leaves the precompiled-header include flag
                # empty, which breaks designs large enough to use precompiled headers.
                cmd = [*cmd, "CFG_CXXFLAGS_PCH_I=-include"]
            base_execute([cmd], cwd, stdout)

    runner._execute_cmds = execute_cmds
    return runner


@dataclass(frozen=True)
class SimModel:
    """A verilated design, ready to run. Made by :func:`build_model`."""

    top: str
    build_dir: Path
    build_s: float = 0.0
    """Seconds the build took (0 when an earlier build was reused)."""
    reused: bool = False

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
        """Stream *images* (uint8, N x H x W x C) through the design and collect the outputs.

        *work_dir* is the simulator's working directory: the folder with the design's
        ``.mem`` files. *stall_in* is the probability that the source holds ``tvalid`` low
        for a cycle before presenting a beat, *stall_out* the probability that the sink holds
        ``tready`` low in a cycle; both use a generator seeded with *seed*. The run stops as
        hung when no beat moves on either stream for *timeout_cycles* cycles while outputs are
        still due. After the last expected output the sink keeps ``tready`` high for
        *drain_cycles* more cycles and counts any extra output beats.

        Files passed to and from the bench live in a temporary folder, or in *keep_dir* when
        given (kept, with the simulator's log).
        """
        case = RunCase.checked(
            images, expected, lanes=lanes, work_dir=work_dir, stall_in=stall_in,
            stall_out=stall_out, seed=seed, timeout_cycles=timeout_cycles,
            drain_cycles=drain_cycles,
        )
        exe = self.build_dir / self.top
        if not exe.is_file():
            raise HdlgenError(f"no verilated model at {exe}: run build_model() first")
        with run_folder(keep_dir) as run_dir:
            return self._run_in(run_dir, case, progress)

    def _run_in(self, run_dir: Path, c: RunCase, progress: bool) -> SimResult:
        from cocotb_tools.runner import get_runner

        case = run_dir / "case.npz"
        result_file = run_dir / "result.json"
        progress_file = run_dir / "progress.txt"
        log_file = run_dir / "sim.log"
        results_xml = run_dir / "results.xml"
        for f in (result_file, progress_file):
            f.unlink(missing_ok=True)
        np.savez(
            case,
            images=c.images,
            lanes=np.int64(c.lanes),
            stall_in=np.float64(c.stall_in),
            stall_out=np.float64(c.stall_out),
            seed=np.int64(c.seed),
            timeout_cycles=np.int64(c.timeout_cycles),
            reset_cycles=np.int64(RESET_CYCLES),
            drain_cycles=np.int64(c.drain_cycles),
        )
        log(progress, f"{self.top}: {c.n_images} images x {c.beats_per_image} beats, "
                      f"stalls in={c.stall_in:g} out={c.stall_out:g}, seed {c.seed}")

        bench = str(_bench_dir())
        added = bench not in sys.path
        if added:
            sys.path.insert(0, bench)
        echo = ProgressEcho(progress_file, progress)
        started = time.monotonic()
        failure: BaseException | None = None
        try:
            echo.start()
            runner = get_runner("verilator")
            runner.test(
                test_module=_BENCH_MODULE,
                hdl_toplevel=self.top,
                hdl_toplevel_lang="verilog",
                build_dir=self.build_dir,
                test_dir=c.work,
                results_xml=str(results_xml),
                log_file=log_file,
                extra_env={
                    "HDLGEN_SIM_CASE": str(case),
                    "HDLGEN_SIM_RESULT": str(result_file),
                    "HDLGEN_SIM_PROGRESS": str(progress_file),
                },
            )
        except (SystemExit, RuntimeError, subprocess.SubprocessError) as exc:
            failure = exc
        finally:
            echo.stop()
            if added:
                try:
                    sys.path.remove(bench)
                except ValueError:
                    pass
        elapsed = time.monotonic() - started
        if not result_file.is_file():
            raise SimError(
                f"simulation of {self.top} gave no result"
                + (f" ({failure!r})" if failure is not None else "")
                + f"; log {log_file}:\n{tail(log_file)}"
            )
        raw = json.loads(result_file.read_text())
        if "error" in raw:
            raise HdlgenError(f"simulation of {self.top}: {raw['error']}")
        warnings = simulator_messages(log_file)
        check_readmem(warnings, c.work)
        result = SimResult.from_bench(
            raw, n_images=c.n_images, expected=c.expected, lanes=c.lanes,
            beats_per_image=c.beats_per_image, stall_in=c.stall_in, stall_out=c.stall_out,
            seed=c.seed, timeout_cycles=c.timeout_cycles, process_s=elapsed,
            warnings=tuple(warnings),
        )
        log(progress, result.summary())
        for w in warnings:
            log(progress, f"  {w}")
        return result


def build_model(
    sources: Sequence[os.PathLike[str] | str],
    top: str,
    build_dir: os.PathLike[str] | str,
    *,
    parameters: Mapping[str, object] | None = None,
    defines: Mapping[str, object] | None = None,
    build_args: Sequence[str] = DEFAULT_BUILD_ARGS,
    extra_args: Sequence[str] = (),
    waves: bool = False,
    progress: bool = True,
) -> SimModel:
    """Verilate *sources* with *top* as the top module into *build_dir*, for the cocotb bench.

    The build is skipped when *build_dir* holds one made from the same source contents, top,
    options and tool versions; Verilator's runtime library is compiled once per machine and
    tool set (see :mod:`hdlgen.sim.build_cache`).
    """
    paths = check_sources(sources)
    ensure_verilator_on_path()
    params = dict(parameters or {})
    defs = dict(defines or {})
    args = [*build_args, *extra_args]
    out = Path(build_dir).resolve()
    versions = tool_versions()
    digest = source_digest(paths, top, args, params, defs, waves, versions)
    exe = out / top
    if stamped(out, exe, digest) is not None:
        log(progress, f"{top}: reusing verilated model in {out}")
        return SimModel(top=top, build_dir=out, build_s=0.0, reused=True)

    out.mkdir(parents=True, exist_ok=True)
    clear_stamp(out)
    cache = runtime_cache_dir(versions, args, waves)
    log(progress, f"{top}: verilating {len(paths)} source(s) into {out} ...")
    runner = _make_runner(out, cache)
    log_file = out / "build.log"
    started = time.monotonic()
    try:
        runner.build(
            sources=paths,
            hdl_toplevel=top,
            build_dir=out,
            build_args=args,
            parameters=params,
            defines=defs,
            timescale=("1ns", "1ps"),
            waves=waves,
            always=True,
            log_file=log_file,
        )
    except (SystemExit, RuntimeError, subprocess.SubprocessError) as exc:
        raise SimError(
            f"Verilator build of {top} failed ({exc}); log {log_file}:\n{tail(log_file)}"
        ) from None
    elapsed = time.monotonic() - started
    if not exe.is_file():
        raise SimError(f"Verilator build of {top} made no {exe}; log {log_file}")
    store_runtime(out, cache)
    write_stamp(out, {"digest": digest, "top": top, "build_s": elapsed})
    log(progress, f"{top}: built in {elapsed:.1f} s")
    return SimModel(top=top, build_dir=out, build_s=elapsed, reused=False)
