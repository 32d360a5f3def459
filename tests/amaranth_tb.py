"""Helpers to drive valid/ready streams in Amaranth's simulator with random stalls."""

from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator


def run_stream(dut, inp, out, beats, n_out, rng, stall_in=0.3, stall_out=0.3, max_cycles=20000,
               in_valid=None, in_ready=None, in_data=None, out_valid=None, out_ready=None, out_data=None):
    """Push ``beats`` into a stream sink and collect ``n_out`` payloads from a stream source.

    ``inp``/``out`` are Amaranth stream interfaces, or None with the flat signals given instead.
    Returns (outputs, cycles).
    """
    iv, ir, idata = (inp.valid, inp.ready, inp.payload) if inp is not None else (in_valid, in_ready, in_data)
    ov, orr, odata = (out.valid, out.ready, out.payload) if out is not None else (out_valid, out_ready, out_data)
    got = []
    state = {"cycles": 0}

    async def tb(ctx):
        i = 0
        while len(got) < n_out and state["cycles"] < max_cycles:
            if i < len(beats) and rng.random() >= stall_in:
                ctx.set(idata, beats[i])
                ctx.set(iv, 1)
            else:
                ctx.set(iv, 0)
            ctx.set(orr, int(rng.random() >= stall_out))
            await ctx.delay(1e-9)
            if ctx.get(iv) and ctx.get(ir):
                i += 1
            if ctx.get(ov) and ctx.get(orr):
                got.append(ctx.get(odata))
            await ctx.tick()
            state["cycles"] += 1

    top = Module()
    top.submodules.dut = dut
    top.d.sync += Signal(name="tick").eq(1)  # a sync domain even for purely combinational DUTs
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return got, state["cycles"]


def run_testbench(dut, tb):
    """Simulate ``dut`` with the testbench coroutine ``tb(ctx)`` on a 100 MHz clock."""
    top = Module()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()


def lanes_to_beats(values, lanes, bits):
    """Flat element values -> beat integers of ``lanes`` elements, element 0 lowest."""
    mask = (1 << bits) - 1
    return [sum((int(v) & mask) << (bits * j) for j, v in enumerate(values[k:k + lanes]))
            for k in range(0, len(values), lanes)]
