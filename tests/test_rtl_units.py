"""RTL components in Amaranth's simulator against NumPy, with random stalls."""

import numpy as np
import pytest

from amaranth.sim import Simulator

from hdlgen.fold import LayerFold, plan
from hdlgen.fuzz import random_folding, random_graph, random_images
from hdlgen.golden import run
from hdlgen.engines.mvau import pack_mvau
from hdlgen.pack import decode, split_words
from hdlgen.rtl import Accelerator, pack_all
from hdlgen.rtl.argmax import ArgMaxUnit
from hdlgen.rtl.dwc import WidthConverter
from hdlgen.rtl.mvau import MvauEngine
from hdlgen.rtl.rom import Rom

from amaranth_tb import lanes_to_beats, run_stream


@pytest.mark.parametrize("n_in,n_out", [(1, 1), (2, 6), (6, 2), (4, 6), (6, 4), (3, 5)])
def test_width_converter_keeps_order(n_in, n_out):
    rng = np.random.default_rng(n_in * 10 + n_out)
    bits = 3
    total = 2 * n_in * n_out * 3
    values = rng.integers(0, 8, total)
    dut = WidthConverter(bits, n_in, n_out)
    got, _ = run_stream(dut, dut.i, dut.o, lanes_to_beats(values, n_in, bits), total // n_out, rng)
    flat = split_words(got, n_out, bits).ravel()
    assert flat.tolist() == values.tolist()


def test_width_converter_full_rate_without_stalls():
    rng = np.random.default_rng(0)
    dut = WidthConverter(2, 1, 4)
    values = rng.integers(0, 4, 400)
    got, cycles = run_stream(dut, dut.i, dut.o, lanes_to_beats(values, 1, 2), 100, rng, 0, 0)
    assert len(got) == 100 and cycles <= 400 + 3


def test_rom_reads_its_words_one_cycle_late():
    words = [5, 9, 0, 255, 17]
    dut = Rom(8, words, "x.mem", external=False)
    seen = []

    async def tb(ctx):
        for a in [0, 3, 1, 4, 2]:
            ctx.set(dut.addr, a)
            await ctx.tick()
            seen.append(ctx.get(dut.data))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert seen == [words[a] for a in [0, 3, 1, 4, 2]]


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("lanes", [1, 2, 5])
def test_argmax_first_maximum(signed, lanes):
    rng = np.random.default_rng(lanes)
    n, bits, images = 10, 5, 20
    lo, hi = (-16, 16) if signed else (0, 32)
    vals = rng.integers(lo, hi, (images, n))
    vals[:, 7] = vals[:, 2] = vals.max(axis=1)  # ties: index 2 must win
    vals[0] = 3
    dut = ArgMaxUnit(n, lanes, bits, signed, 8)
    got, _ = run_stream(dut, dut.i, dut.o, lanes_to_beats(vals.ravel(), lanes, bits), images, rng)
    assert got == np.argmax(vals, axis=1).tolist()


@pytest.mark.parametrize("seed", range(6))
def test_mvau_matches_golden_layer(seed):
    """One engine, random folding, both bipolar and uint8 inputs, every output value compared."""
    rng = np.random.default_rng(seed)
    g = random_graph(rng, shape=(2, 3, 1), hidden=(int(rng.choice([4, 6, 12])), 6), classes=3)
    p = plan(g)
    images = random_images(rng, g, 5)
    values = run(g, images)
    first = seed % 2 == 0
    e = p.mvaus[0] if first else p.mvaus[1]
    f = random_folding(rng, g).layers[e.name]
    img = pack_mvau(e, f, g.node(e.name).params["weight"], g.node(e.threshold).params["thresholds"])
    dut = MvauEngine(e, f, img, external=False)
    src = values["flat"] if first else values["act0"]
    expect = values[e.threshold]
    in_bits = e.in_dtype.bits
    enc = src if not e.in_dtype.kind == "bipolar" else (src > 0).astype(int)
    beats = lanes_to_beats(enc.ravel(), f.simd, in_bits)
    got, _ = run_stream(dut, dut.i, dut.o, beats, len(images) * e.n_out // f.pe, rng)
    out = decode(split_words(got, f.pe, 1), e.out_dtype).reshape(len(images), e.n_out)
    assert out.tolist() == expect.tolist()


@pytest.mark.parametrize("seed", range(5))
def test_accelerator_matches_golden(seed):
    rng = np.random.default_rng(100 + seed)
    shape = [(4, 3, 1), (3, 3, 2), (5, 1, 1), (2, 2, 3), (7, 1, 1)][seed]
    hidden = [(12, 8), (9,), (6, 5, 4), (16,), (3, 7)][seed]
    g = random_graph(rng, shape=shape, hidden=hidden, classes=int(rng.integers(2, 7)), in_bits=[8, 8, 4, 8, 1][seed])
    p = plan(g)
    fo = random_folding(rng, g)
    dut = Accelerator(p, fo, pack_all(g, p, fo), external_memories=False)
    x = random_images(rng, g, 10)
    expect = run(g, x)["cls"][:, 0].tolist()
    beats = lanes_to_beats(x.reshape(len(x), -1).ravel(), fo.in_lanes, 8)
    got, _ = run_stream(dut, None, None, beats, len(x), rng,
                        in_valid=dut.s_axis_tvalid, in_ready=dut.s_axis_tready, in_data=dut.s_axis_tdata,
                        out_valid=dut.m_axis_tvalid, out_ready=dut.m_axis_tready, out_data=dut.m_axis_tdata)
    assert got == expect


def test_random_networks_are_not_degenerate():
    rng = np.random.default_rng(7)
    g = random_graph(rng, shape=(4, 4, 1), hidden=(16, 12), classes=5)
    values = run(g, random_images(rng, g, 50))
    assert len(set(values["cls"][:, 0].tolist())) >= 3
    assert 0.1 < (values["act0"] > 0).mean() < 0.9
