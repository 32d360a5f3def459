"""The stream protocol checker catches a producer that drops ``valid`` or changes the payload
before its beat is taken, on the device's inputs and on its outputs."""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from amaranth_tb import run_stream, run_testbench
from stream_protocol import stream_ports
from hdlgen.rtl.dwc import WidthConverter


class _Register(wiring.Component):
    """A one-beat register slice; ``flaky`` makes it drop ``valid`` while its beat waits."""

    def __init__(self, flaky: bool = False):
        self.flaky = flaky
        super().__init__({"i": In(stream.Signature(8)), "o": Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(self.i.payload)]
        with m.Elif(self.o.ready | self.flaky):
            m.d.sync += self.o.valid.eq(0)
        return m


def _drive(dut, beats, drop: bool, change: bool):
    """A producer that, with ``drop`` or ``change``, breaks the contract on its second beat."""
    async def tb(ctx):
        for cycle in range(20):
            ctx.set(dut.o.ready, int(cycle % 3 == 0))
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, beats[cycle % len(beats)] if change else beats[0])
            if drop and cycle == 3:
                ctx.set(dut.i.valid, 0)
            await ctx.tick()
    return tb


def test_finds_every_stream():
    for dut in (_Register(), WidthConverter(4, 2, 3)):
        dut._MustUse__silence = True   # inspected, not simulated
        assert [name for name, *_ in stream_ports(dut)] == ["i", "o"]


def test_well_behaved_run_passes():
    dut = _Register()
    got, _ = run_stream(dut, dut.i, dut.o, list(range(50)), 50, np.random.default_rng(0))
    assert got == list(range(50))


def test_producer_dropping_valid_fails():
    dut = _Register()
    with pytest.raises(AssertionError, match="stream i: valid dropped"):
        run_testbench(dut, _drive(dut, [1, 2], drop=True, change=False))


def test_producer_changing_payload_fails():
    dut = _Register()
    with pytest.raises(AssertionError, match="stream i: payload changed"):
        run_testbench(dut, _drive(dut, [1, 2, 3], drop=False, change=True))


def test_device_dropping_valid_fails():
    dut = _Register(flaky=True)
    with pytest.raises(AssertionError, match="stream o: valid dropped"):
        run_stream(dut, dut.i, dut.o, list(range(30)), 30, np.random.default_rng(1), 0.0, 0.7)
