"""cocotb bench: stream images through an AXI4-Stream accelerator and record what comes out.

Run by :mod:`hdlgen.sim.runner`, never directly. The case arrives as a ``.npz`` named by the
environment variable ``HDLGEN_SIM_CASE``; the result goes to the JSON file named by
``HDLGEN_SIM_RESULT``; ``HDLGEN_SIM_PROGRESS``, when set, names a file that gets a progress
line every few seconds.

Case fields: ``images`` (uint8, N x H x W x C), ``lanes``, ``stall_in``, ``stall_out``,
``seed``, ``timeout_cycles``, ``reset_cycles``, ``drain_cycles``.

One coroutine does all the work, waking once per rising clock edge. At that point the design
has not yet reacted to the edge, so the values read are the ones the edge samples: a beat moves
when ``tvalid`` and ``tready`` both read 1. The new input values written after the read take
effect for the next edge, like the outputs of a register. Cycle numbers count rising edges
from the first one after reset is released (edge 0).
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from hdlgen.engines.ports import CLOCK, RESET, core_interfaces

try:
    from cocotb.handle import _GPISetAction
    from cocotb.handle import _trust_inertial as _DIRECT_WRITES

    _DEPOSIT = _GPISetAction.DEPOSIT.value
except ImportError:
    _DIRECT_WRITES = False
    _DEPOSIT = 0


class _Port:
    """Reads and writes of one port, as cheap per cycle as cocotb allows.

    When cocotb writes straight through to the simulator (``COCOTB_TRUST_INERTIAL_WRITES``,
    which cocotb's Verilator runner sets), the public ``.value`` setter ends in the same
    ``set_signal_val_*`` call on the underlying GPI object after a few layers of type
    dispatch; calling it directly saves those layers, which are most of this bench's
    per-cycle cost. Otherwise (or with ``HDLGEN_SIM_PUBLIC_API=1``) the public API is used.
    """

    def __init__(self, handle) -> None:
        self.handle = handle
        self.width = len(handle)
        raw = getattr(handle, "_handle", None)
        direct = _DIRECT_WRITES and os.environ.get("HDLGEN_SIM_PUBLIC_API", "") in ("", "0")
        self.raw = raw if direct and raw is not None and hasattr(
            raw, "set_signal_val_int") else None

    def read_bit(self) -> bool:
        if self.raw is not None:
            return self.raw.get_signal_val_binstr() == "1"
        return bool(self.handle.value)

    def read_uint(self) -> int:
        if self.raw is not None:
            return int(self.raw.get_signal_val_binstr(), 2)
        return self.handle.value.to_unsigned()

    def write(self, value: int) -> None:
        raw = self.raw
        if raw is None:
            self.handle.value = value
        elif self.width <= 32:
            raw.set_signal_val_int(_DEPOSIT, value)
        else:
            raw.set_signal_val_binstr(_DEPOSIT, format(value, f"0{self.width}b"))


def _beat_words(images: np.ndarray, lanes: int) -> list[int]:
    """One integer per beat, lane 0 in the low byte."""
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(-1, lanes)
    if lanes <= 8:
        shifts = (np.arange(lanes, dtype=np.uint64) * np.uint64(8))
        words = (flat.astype(np.uint64) << shifts).sum(axis=1, dtype=np.uint64)
        return [int(w) for w in words.tolist()]
    return [int.from_bytes(row.tobytes(), "little") for row in flat]


def _write_result(path: Path, result: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(path)


class _Progress:
    def __init__(self, path: str | None, n_images: int) -> None:
        self.path = path
        self.n_images = n_images
        self.start = time.monotonic()
        self.next_report = self.start + 5.0

    def maybe_report(self, cycle: int, n_out: int) -> None:
        if self.path is None:
            return
        now = time.monotonic()
        if now < self.next_report:
            return
        self.next_report = now + 5.0
        rate = cycle / max(now - self.start, 1e-9)
        with open(self.path, "a") as f:
            f.write(f"{n_out}/{self.n_images} images out, {cycle} cycles, {rate:,.0f} cycles/s\n")


@cocotb.test()
async def stream_images(dut):
    """Send every image, collect one output beat per image, time both sides."""
    case_path = os.environ["HDLGEN_SIM_CASE"]
    result_path = Path(os.environ["HDLGEN_SIM_RESULT"])
    with np.load(case_path) as case:
        images = case["images"]
        lanes = int(case["lanes"])
        stall_in = float(case["stall_in"])
        stall_out = float(case["stall_out"])
        seed = int(case["seed"])
        timeout_cycles = int(case["timeout_cycles"])
        reset_cycles = int(case["reset_cycles"])
        drain_cycles = int(case["drain_cycles"])

    n_images = int(images.shape[0])
    beats_per_image = int(images[0].size) // lanes if n_images else 0
    words = _beat_words(images, lanes)
    n_beats = len(words)
    rng = random.Random(seed)
    rand = rng.random
    progress = _Progress(os.environ.get("HDLGEN_SIM_PROGRESS"), n_images)

    # Port names from the one definition of the core's ports (hdlgen.engines.ports).
    sink, source = core_interfaces(lanes)[:2]
    pins = {f"s_{m}": p.name for m, p in zip(("tdata", "tvalid", "tready", "tlast"), sink.ports)}
    pins.update({f"m_{m}": p.name for m, p in zip(("tdata", "tvalid", "tready", "tlast"), source.ports)})
    missing = [name for name in (CLOCK, RESET, *pins.values()) if not hasattr(dut, name)]
    if missing:
        _write_result(result_path, {"error": f"the design has no port {', '.join(missing)}"})
        return
    clk, rst = getattr(dut, CLOCK), getattr(dut, RESET)
    port = {key: _Port(getattr(dut, name)) for key, name in pins.items()}
    s_tdata, s_tvalid, s_tready, s_tlast = (port[f"s_{m}"] for m in ("tdata", "tvalid", "tready", "tlast"))
    m_tdata, m_tvalid, m_tready, m_tlast = (port[f"m_{m}"] for m in ("tdata", "tvalid", "tready", "tlast"))
    if s_tdata.width != 8 * lanes:
        _write_result(result_path, {
            "error": f"{pins['s_tdata']} is {s_tdata.width} bits wide, but {lanes} lanes need "
                     f"{8 * lanes} bits"})
        return

    for pin in (s_tvalid, s_tdata, s_tlast, m_tready):
        pin.handle.value = 0
    rst.value = 1
    Clock(clk, 10, unit="ns").start()
    edge = RisingEdge(clk)
    for _ in range(max(reset_cycles, 2)):
        await edge
    rst.value = 0

    outputs: list[int] = []
    t_out: list[int] = []
    t_in_first: list[int] = []
    t_in_last: list[int] = []
    tlast_missing = 0
    extra_outputs = 0
    hung = False
    wall_start = time.monotonic()

    beat = 0  # next beat to present
    presenting = False  # a beat is on the bus, waiting for tready
    valid_pin = 0  # value last written to s_axis_tvalid
    last_pin = 0  # value last written to s_axis_tlast
    ready_pin = 0  # value last written to m_axis_tready
    last_of_image = beats_per_image - 1
    idle = 0
    cycle = 0
    done_at = None  # cycle at which the last expected output arrived

    while True:
        # Drive the values that edge `cycle` will sample.
        if not presenting:
            if beat < n_beats and (stall_in <= 0.0 or rand() >= stall_in):
                s_tdata.write(words[beat])
                is_last = 1 if beat % beats_per_image == last_of_image else 0
                if is_last != last_pin:
                    s_tlast.write(is_last)
                    last_pin = is_last
                if not valid_pin:
                    s_tvalid.write(1)
                    valid_pin = 1
                presenting = True
            elif valid_pin:
                s_tvalid.write(0)
                valid_pin = 0
        want_ready = 1 if (stall_out <= 0.0 or rand() >= stall_out) else 0
        if done_at is not None:
            want_ready = 1
        if want_ready != ready_pin:
            m_tready.write(want_ready)
            ready_pin = want_ready

        await edge

        moved = False
        if presenting and s_tready.read_bit():
            pos = beat % beats_per_image
            if pos == 0:
                t_in_first.append(cycle)
            if pos == last_of_image:
                t_in_last.append(cycle)
            beat += 1
            presenting = False
            moved = True
        if ready_pin and m_tvalid.read_bit():
            if done_at is None:
                outputs.append(m_tdata.read_uint())
                t_out.append(cycle)
                if not m_tlast.read_bit():
                    tlast_missing += 1
                if len(outputs) >= n_images:
                    done_at = cycle
            else:
                extra_outputs += 1
            moved = True

        cycle += 1
        if done_at is not None:
            if cycle - done_at > drain_cycles:
                break
            continue
        if moved:
            idle = 0
        else:
            idle += 1
            if idle >= timeout_cycles:
                hung = True
                break
        if (cycle & 1023) == 0:
            progress.maybe_report(cycle, len(outputs))

    wall_s = time.monotonic() - wall_start
    if valid_pin:
        s_tvalid.write(0)
    result = {
        "outputs": outputs,
        "t_out": t_out,
        "t_in_first": t_in_first,
        "t_in_last": t_in_last,
        "beats_sent": beat,
        "cycles": cycle if done_at is None else done_at + 1,
        "cycles_simulated": cycle,
        "hung": hung,
        "idle_cycles": idle,
        "tlast_missing": tlast_missing,
        "extra_outputs": extra_outputs,
        "wall_s": wall_s,
    }
    _write_result(result_path, result)
