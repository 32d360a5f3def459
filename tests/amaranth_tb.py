"""Helpers to drive valid/ready streams in Amaranth's simulator with random stalls. Every
simulation run through them checks the stream contract on every stream of the device under
test (:mod:`stream_protocol`)."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data
from amaranth.sim import Simulator

import stream_protocol


def flat(payload):
    """A typed payload (``data.View``) as its plain bits, for setting and reading integers."""
    return payload.as_value() if isinstance(payload, data.View) else payload


class Source:
    """Offers ``beats`` on a stream, pausing at random between beats (never during one): a beat
    once offered stays valid, unchanged, until it is taken."""

    def __init__(self, valid, payload, beats, rng, stall):
        self.valid, self.payload, self.beats, self.rng, self.stall = valid, flat(payload), beats, rng, stall
        self.sent, self.offering = 0, False

    def drive(self, ctx):
        """Before the clock edge: offer the next beat, or keep offering the current one."""
        if not self.offering and self.sent < len(self.beats) and self.rng.random() >= self.stall:
            self.offering = True
        ctx.set(self.valid, int(self.offering))
        if self.offering:
            ctx.set(self.payload, self.beats[self.sent])

    def settle(self, ctx, ready):
        """After the comb logic settled: note whether the beat was taken."""
        if self.offering and ctx.get(ready):
            self.sent += 1
            self.offering = False


def run_stream(dut, inp, out, beats, n_out, rng, stall_in=0.3, stall_out=0.3, max_cycles=20000,
               in_valid=None, in_ready=None, in_data=None, out_valid=None, out_ready=None, out_data=None):
    """Push ``beats`` into a stream sink and collect ``n_out`` payloads from a stream source.

    ``inp``/``out`` are Amaranth stream interfaces, or None with the flat signals given instead.
    Returns (outputs, cycles).
    """
    iv, ir, idata = (inp.valid, inp.ready, inp.payload) if inp is not None else (in_valid, in_ready, in_data)
    ov, orr, odata = (out.valid, out.ready, flat(out.payload)) if out is not None else (out_valid, out_ready, out_data)
    got = []
    state = {"cycles": 0}
    source = Source(iv, idata, beats, rng, stall_in)

    async def tb(ctx):
        while len(got) < n_out and state["cycles"] < max_cycles:
            source.drive(ctx)
            ctx.set(orr, int(rng.random() >= stall_out))
            await ctx.delay(1e-9)
            source.settle(ctx, ir)
            if ctx.get(ov) and ctx.get(orr):
                got.append(ctx.get(odata))
            await ctx.tick()
            state["cycles"] += 1

    run_testbench(dut, tb)
    return got, state["cycles"]


def run_testbench(dut, tb):
    """Simulate ``dut`` with the testbench coroutine ``tb(ctx)`` on a 100 MHz clock, checking the
    stream contract on every stream of ``dut``."""
    top = Module()
    top.submodules.dut = dut
    top.d.sync += Signal(name="tick").eq(1)  # a sync domain even for purely combinational DUTs
    sim = Simulator(top)
    sim.add_clock(1e-8)
    stream_protocol.attach(sim, dut)
    sim.add_testbench(tb)
    sim.run()


def lanes_to_beats(values, lanes, bits):
    """Flat element values -> beat integers of ``lanes`` elements, element 0 lowest."""
    mask = (1 << bits) - 1
    return [sum((int(v) & mask) << (bits * j) for j, v in enumerate(values[k:k + lanes]))
            for k in range(0, len(values), lanes)]
