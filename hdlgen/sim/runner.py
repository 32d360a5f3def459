"""Verilate an accelerator once, then stream images through it with cocotb.

:func:`build_model` compiles the Verilog with Verilator through cocotb's runner and returns a
:class:`SimModel` that can be run many times. :meth:`SimModel.run` streams a batch of uint8
images through the AXI4-Stream ports (bench: ``sim/bench_axis.py``) and returns a
:class:`SimResult`. :func:`simulate` does a stall-free timing run and a run with random
stalls, and combines them in a :class:`SimReport`.

The design under test has ports ``clk``, ``rst`` (active-high, synchronous),
``s_axis_tdata`` (``8 * lanes`` bits, lane 0 in bits 7:0), ``s_axis_tvalid``,
``s_axis_tready``, ``s_axis_tlast`` (last beat of each image), ``m_axis_tdata`` (the class
index of one image per beat), ``m_axis_tvalid``, ``m_axis_tready`` and ``m_axis_tlast``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdlgen.errors import HdlgenError
from hdlgen.sim.tools import ensure_verilator_on_path

__all__ = [
    "DEFAULT_BUILD_ARGS",
    "SimError",
    "SimModel",
    "SimReport",
    "SimResult",
    "build_model",
    "simulate",
    "steady_state_cycles_per_image",
]

#: Verilator options for simulation builds.
#: ``--x-assign 0``/``--x-initial 0``: undefined values and uninitialized state read as 0,
#: deterministic from run to run (the block RAMs of an FPGA also start at 0);
#: ``-Wno-fatal -Wno-lint -Wno-style``: linting is :func:`hdlgen.sim.tools.lint`'s job, a
#: simulation build must not stop on warnings; ``--threads 1``: the per-cycle cost is cocotb's,
#: not the model's, and the machines have 2 cores. Verilator's optimization level and its
#: makefile's C++ flags (``-Os``) stay at their defaults: a lower C++ level compiles the
#: runtime library no faster overall, and that library is cached (see :func:`build_model`).
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

_STAMP_NAME = "hdlgen_build.json"
_BENCH_MODULE = "bench_axis"
_RESET_CYCLES = 4


class SimError(RuntimeError):
    """Verilator or the simulation itself failed (not a mismatch or a hang: those are results)."""


def _log(enabled: bool, message: str) -> None:
    if enabled:
        print(f"hdlgen sim: {message}", file=sys.stderr, flush=True)


def _bench_dir() -> Path:
    override = os.environ.get("HDLGEN_SIM_BENCH_DIR")
    folder = Path(override) if override else Path(__file__).resolve().parents[2] / "sim"
    if not (folder / f"{_BENCH_MODULE}.py").is_file():
        raise HdlgenError(
            f"cocotb bench {_BENCH_MODULE}.py not found in {folder} "
            "(set HDLGEN_SIM_BENCH_DIR to the project's sim/ folder)"
        )
    return folder


def _simulator_messages(log_file: Path) -> list[str]:
    """Verilator's own ``%Warning``/``%Error`` lines from a simulation log."""
    try:
        text = log_file.read_text(errors="replace")
    except OSError:
        return []
    return [ln.strip() for ln in text.splitlines() if ln.startswith(("%Warning", "%Error"))]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


# ---------------------------------------------------------------------------------------------
# Build


def _tool_versions() -> dict[str, str]:
    import cocotb

    verilator = subprocess.run(
        ["verilator", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    cxx = os.environ.get("CXX", "c++")
    try:
        cxx_version = subprocess.run(
            [cxx, "--version"], capture_output=True, text=True, check=False
        ).stdout.splitlines()[:1]
    except OSError:
        cxx_version = []
    return {
        "verilator": verilator,
        "cocotb": cocotb.__version__,
        "cxx": " ".join(cxx_version),
        "cxxflags": os.environ.get("CXXFLAGS", ""),
        "cppflags": os.environ.get("CPPFLAGS", ""),
    }


def _runtime_cache_dir(versions: Mapping[str, str], args: Sequence[str], waves: bool) -> Path | None:
    """Folder for Verilator's runtime-library objects built with these tools and flags."""
    root = os.environ.get("HDLGEN_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "hdlgen"
    key = hashlib.sha256(
        json.dumps(
            {
                "versions": dict(versions),
                "args": list(args),
                "waves": waves,
                "root": str(ensure_verilator_on_path().parent),
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    return base / "verilator-runtime" / key


def _global_objects(build_dir: Path) -> list[str]:
    """Names of the runtime-library objects that Verilator's makefile will compile."""
    classes = build_dir / "Vtop_classes.mk"
    names: list[str] = []
    try:
        lines = classes.read_text().splitlines()
    except OSError:
        return names
    collecting = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(("VM_GLOBAL_FAST +=", "VM_GLOBAL_SLOW +=")):
            collecting = True
            continue
        if collecting:
            if not stripped:
                collecting = False
                continue
            name = stripped.rstrip("\\").strip()
            if name:
                names.append(name)
            if not stripped.endswith("\\"):
                collecting = False
    return names


def _restore_runtime(build_dir: Path, cache: Path | None) -> None:
    """Copy cached runtime objects into *build_dir*, newer than the makefiles Verilator wrote."""
    if cache is None or not cache.is_dir():
        return
    for name in _global_objects(build_dir):
        obj, dep = cache / f"{name}.o", cache / f"{name}.d"
        if not (obj.is_file() and dep.is_file()):
            return
    for name in _global_objects(build_dir):
        for suffix in (".o", ".d"):
            target = build_dir / f"{name}{suffix}"
            shutil.copyfile(cache / f"{name}{suffix}", target)
            os.utime(target)


def _store_runtime(build_dir: Path, cache: Path | None) -> None:
    if cache is None or cache.is_dir():
        return
    names = _global_objects(build_dir)
    if not names or not all((build_dir / f"{n}.o").is_file() for n in names):
        return
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache.parent))
        for name in names:
            for suffix in (".o", ".d"):
                src = build_dir / f"{name}{suffix}"
                if src.is_file():
                    shutil.copyfile(src, tmp / src.name)
        try:
            tmp.rename(cache)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError:
        pass


def _make_runner(build_dir: Path, cache: Path | None):
    """cocotb's Verilator runner, restoring cached runtime objects between verilate and make."""
    from cocotb_tools.runner import get_runner

    runner = get_runner("verilator")
    base_execute = runner._execute_cmds

    def execute_cmds(cmds, cwd, stdout=None):
        for cmd in cmds:
            if cmd and cmd[0] == "make":
                try:
                    _restore_runtime(build_dir, cache)
                except OSError:
                    pass
                # The PyPI wheel's verilated.mk leaves the precompiled-header include flag
                # empty, which breaks designs large enough to use precompiled headers.
                cmd = [*cmd, "CFG_CXXFLAGS_PCH_I=-include"]
            base_execute([cmd], cwd, stdout)

    runner._execute_cmds = execute_cmds
    return runner


def _source_digest(
    sources: Sequence[Path],
    top: str,
    args: Sequence[str],
    parameters: Mapping[str, object],
    defines: Mapping[str, object],
    waves: bool,
    versions: Mapping[str, str],
) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(
        {
            "top": top,
            "args": list(args),
            "parameters": {k: str(v) for k, v in parameters.items()},
            "defines": {k: str(v) for k, v in defines.items()},
            "waves": waves,
            "versions": dict(versions),
            "names": [p.name for p in sources],
        },
        sort_keys=True,
    ).encode())
    for p in sources:
        h.update(b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()


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
        exe = self.build_dir / self.top
        if not exe.is_file():
            raise HdlgenError(f"no verilated model at {exe}: run build_model() first")

        if keep_dir is not None:
            run_dir = Path(keep_dir).resolve()
            run_dir.mkdir(parents=True, exist_ok=True)
            cleanup = None
        else:
            cleanup = tempfile.TemporaryDirectory(prefix="hdlgen-sim-")
            run_dir = Path(cleanup.name)
        try:
            return self._run_in(
                run_dir, images, exp, int(lanes), work, float(stall_in), float(stall_out),
                int(seed), int(timeout_cycles), int(drain_cycles), progress,
            )
        finally:
            if cleanup is not None:
                cleanup.cleanup()

    def _run_in(
        self,
        run_dir: Path,
        images: np.ndarray,
        expected: np.ndarray | None,
        lanes: int,
        work: Path,
        stall_in: float,
        stall_out: float,
        seed: int,
        timeout_cycles: int,
        drain_cycles: int,
        progress: bool,
    ) -> SimResult:
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
            images=images,
            lanes=np.int64(lanes),
            stall_in=np.float64(stall_in),
            stall_out=np.float64(stall_out),
            seed=np.int64(seed),
            timeout_cycles=np.int64(timeout_cycles),
            reset_cycles=np.int64(_RESET_CYCLES),
            drain_cycles=np.int64(drain_cycles),
        )
        n = images.shape[0]
        beats = images[0].size // lanes
        _log(progress, f"{self.top}: {n} images x {beats} beats, "
                       f"stalls in={stall_in:g} out={stall_out:g}, seed {seed}")

        bench = str(_bench_dir())
        added = bench not in sys.path
        if added:
            sys.path.insert(0, bench)
        echo = _ProgressEcho(progress_file, progress)
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
                test_dir=work,
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
                + f"; log {log_file}:\n{_tail(log_file)}"
            )
        raw = json.loads(result_file.read_text())
        if "error" in raw:
            raise HdlgenError(f"simulation of {self.top}: {raw['error']}")
        warnings = _simulator_messages(log_file)
        unread = [w for w in warnings if "$readmem file not found" in w]
        if unread:
            files = sorted({w.split(":", 2)[1].strip() for w in unread if w.count(":") >= 2})
            raise HdlgenError(
                f"memory init file(s) {', '.join(files) or '?'} not found in work_dir {work}"
            )
        result = SimResult.from_bench(
            raw, n_images=n, expected=expected, lanes=lanes, beats_per_image=beats,
            stall_in=stall_in, stall_out=stall_out, seed=seed, timeout_cycles=timeout_cycles,
            process_s=elapsed, warnings=tuple(warnings),
        )
        _log(progress, result.summary())
        for w in warnings:
            _log(progress, f"  {w}")
        return result


class _ProgressEcho:
    """Copies the bench's progress lines to stderr while the simulator runs."""

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
            _log(True, f"  {line}")

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self._pump()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._pump()


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
    """Verilate *sources* with *top* as the top module into *build_dir*.

    The build is skipped when *build_dir* holds one made from the same source contents, top,
    options and tool versions (a hash stamp in ``build_dir/hdlgen_build.json``). Verilator's
    runtime library, the larger part of a small design's compile time, is compiled once per
    machine and tool set and kept in ``~/.cache/hdlgen`` (or ``$HDLGEN_CACHE_DIR``).
    """
    paths = [Path(s).resolve() for s in sources]
    if not paths:
        raise HdlgenError("no Verilog sources to build")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise HdlgenError(f"Verilog source not found: {', '.join(missing)}")
    odd = [p.name for p in paths if p.suffix not in (".v", ".sv", ".vh", ".svh", ".vlt")]
    if odd:
        raise HdlgenError(
            f"not a Verilog source (.v, .sv, .vh, .svh) or Verilator control file (.vlt): "
            f"{', '.join(odd)}"
        )
    ensure_verilator_on_path()
    params = dict(parameters or {})
    defs = dict(defines or {})
    args = [*build_args, *extra_args]
    out = Path(build_dir).resolve()
    versions = _tool_versions()
    digest = _source_digest(paths, top, args, params, defs, waves, versions)
    stamp = out / _STAMP_NAME
    exe = out / top
    if stamp.is_file() and exe.is_file():
        try:
            if json.loads(stamp.read_text()).get("digest") == digest:
                _log(progress, f"{top}: reusing verilated model in {out}")
                return SimModel(top=top, build_dir=out, build_s=0.0, reused=True)
        except (OSError, ValueError):
            pass

    out.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    cache = _runtime_cache_dir(versions, args, waves)
    _log(progress, f"{top}: verilating {len(paths)} source(s) into {out} ...")
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
            f"Verilator build of {top} failed ({exc}); log {log_file}:\n{_tail(log_file)}"
        ) from None
    elapsed = time.monotonic() - started
    if not exe.is_file():
        raise SimError(f"Verilator build of {top} made no {exe}; log {log_file}")
    _store_runtime(out, cache)
    stamp.write_text(json.dumps({"digest": digest, "top": top, "build_s": elapsed}))
    _log(progress, f"{top}: built in {elapsed:.1f} s")
    return SimModel(top=top, build_dir=out, build_s=elapsed, reused=False)


# ---------------------------------------------------------------------------------------------
# Results


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


@dataclass(frozen=True)
class SimResult:
    """What one :meth:`SimModel.run` saw. Cycle numbers count rising edges after reset."""

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
        mismatches: tuple[int, ...] = ()
        if expected is not None:
            m = min(len(outputs), len(expected))
            mismatches = tuple(int(i) for i in np.nonzero(outputs[:m] != expected[:m])[0])
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

    @property
    def n_out(self) -> int:
        return int(self.outputs.shape[0])

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


def simulate(
    model: SimModel,
    images: np.ndarray,
    expected: np.ndarray | Sequence[int] | None = None,
    *,
    lanes: int,
    work_dir: os.PathLike[str] | str,
    stalls: bool = True,
    stall_in: float = 0.3,
    stall_out: float = 0.3,
    seed: int = 0,
    timing_images: int | None = 16,
    timeout_cycles: int = 100_000,
    progress: bool = True,
) -> SimReport:
    """Timing run without stalls, then (if *stalls*) a correctness run with random stalls.

    The timing run streams the first *timing_images* images (all when None, or when
    *stalls* is false, since it is then the only run) back to back with ``tready`` always
    high: it gives :attr:`SimReport.cycles_per_image` and :attr:`SimReport.latency_cycles`.
    The stalled run streams all images with ``tvalid``/``tready`` dropped at random
    (probabilities *stall_in*, *stall_out*; seed *seed*).
    """
    images = np.asarray(images)
    exp = None if expected is None else np.asarray(expected)
    n = images.shape[0] if images.ndim else 0
    t_n = n if (timing_images is None or not stalls) else max(1, min(n, timing_images))
    timing = model.run(
        images[:t_n], None if exp is None else exp[:t_n], lanes=lanes, work_dir=work_dir,
        stall_in=0.0, stall_out=0.0, seed=seed, timeout_cycles=timeout_cycles,
        progress=progress,
    )
    stalled = None
    if stalls and not timing.hung:
        stalled = model.run(
            images, exp, lanes=lanes, work_dir=work_dir, stall_in=stall_in,
            stall_out=stall_out, seed=seed, timeout_cycles=timeout_cycles, progress=progress,
        )
    return SimReport(timing=timing, stalled=stalled)
