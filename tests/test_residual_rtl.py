"""Residual networks in hardware: the fork, delay FIFO, threshold select, global sum and
decimator units, and whole random residual networks against the golden model, with random
stalls and in steady state against the cycle model."""

import numpy as np
import pytest

from hdlgen.fold import Folding, LayerFold, auto_fold, check, plan, predict
from hdlgen.fold.timeline import delay_depths
from hdlgen.fuzz import random_folding, random_images, random_resnet
from hdlgen.golden import run
from hdlgen.pack import join_words, split_words
from hdlgen.rtl import Accelerator, pack_all
from hdlgen.rtl.residual import DelayFifo, Decimator, Fork, GlobalSumUnit, SelectThresholdUnit

from amaranth_tb import Source, flat, lanes_to_beats, run_stream, run_testbench
from test_conv_rtl import _accelerator_run, _timed


def _stream_two(dut, a_beats, b_beats, n_out, rng, stall=0.3, max_cycles=5000):
    """Drive two input streams (``i`` and ``sel``) and collect ``o``."""
    got = []
    sources = [(Source(p.valid, p.payload, beats, rng, stall), p) for p, beats in ((dut.i, a_beats), (dut.sel, b_beats))]

    async def tb(ctx):
        cycle = 0
        while len(got) < n_out and cycle < max_cycles:
            for source, _ in sources:
                source.drive(ctx)
            ctx.set(dut.o.ready, int(rng.random() >= stall))
            await ctx.delay(1e-9)
            for source, port in sources:
                source.settle(ctx, port.ready)
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                got.append(ctx.get(flat(dut.o.payload)))
            await ctx.tick()
            cycle += 1

    run_testbench(dut, tb)
    return got


def test_fork_copies_every_beat_under_independent_stalls():
    rng = np.random.default_rng(0)
    dut = Fork(8, 3)
    beats = rng.integers(0, 256, 200).tolist()
    got = [[] for _ in range(3)]

    source = Source(dut.i.valid, dut.i.payload, beats, rng, 0.3)

    async def tb(ctx):
        cycle = 0
        while min(map(len, got)) < len(beats) and cycle < 5000:
            source.drive(ctx)
            for k in range(3):
                ctx.set(dut.output(k).ready, int(rng.random() >= 0.5))
            await ctx.delay(1e-9)
            source.settle(ctx, dut.i.ready)
            for k in range(3):
                o = dut.output(k)
                if ctx.get(o.valid) and ctx.get(o.ready):
                    got[k].append(ctx.get(o.payload))
            await ctx.tick()
            cycle += 1

    run_testbench(dut, tb)
    assert got == [beats] * 3


def test_delay_fifo_keeps_order_and_fills_to_its_depth():
    rng = np.random.default_rng(1)
    beats = rng.integers(0, 1 << 12, 300).tolist()
    dut = DelayFifo(12, 37)
    got, _ = run_stream(dut, dut.i, dut.o, beats, len(beats), rng, 0.2, 0.6)
    assert got == beats


@pytest.mark.parametrize("lanes,nf,acc_bits", [(1, 1, 4), (3, 4, 7), (4, 2, 5)])
def test_select_threshold_unit(lanes, nf, acc_bits):
    rng = np.random.default_rng(lanes * 10 + nf)
    tb = acc_bits + 1
    thr = rng.integers(0, (1 << acc_bits) + 1, (nf * lanes, 2))
    words = join_words(thr.reshape(nf, lanes * 2), tb)
    dut = SelectThresholdUnit(lanes, acc_bits, False, tb, False, words, "t.mem", external=False)
    n = nf * 13
    acc = rng.integers(0, 1 << acc_bits, (n, lanes))
    sel = rng.integers(0, 2, (n, lanes))
    got = _stream_two(dut, join_words(acc, acc_bits), join_words(sel, 1), n, rng)
    t = thr.reshape(nf, lanes, 2)[np.arange(n) % nf]
    expect = (acc >= np.where(sel == 1, t[..., 1], t[..., 0])).astype(int)
    assert split_words(got, lanes, 1).tolist() == expect.tolist()


@pytest.mark.parametrize("kind,bits", [("bipolar", 1), ("uint", 3), ("int", 4)])
def test_global_sum_unit(kind, bits):
    rng = np.random.default_rng(bits)
    pixels, c, images = 7, 3, 4
    lo, hi = {"bipolar": (0, 1), "uint": (0, 7), "int": (-8, 7)}[kind]
    x = rng.integers(lo, hi + 1, (images, pixels, c))
    values = 2 * x - 1 if kind == "bipolar" else x
    sums = values.sum(axis=1)
    out_bits = 8
    dut = GlobalSumUnit(pixels, c, bits, kind, out_bits)
    beats = join_words((x & ((1 << bits) - 1)).reshape(-1, c), bits)
    got, _ = run_stream(dut, dut.i, dut.o, beats, images, rng, 0.3, 0.3)
    decoded = split_words(got, c, out_bits)
    if kind != "uint":
        decoded = np.where(decoded >= 128, decoded - 256, decoded)
    assert decoded.tolist() == sums.tolist()


@pytest.mark.parametrize("h,w,stride", [(6, 6, 2), (5, 7, 2), (7, 7, 3)])
def test_decimator(h, w, stride):
    rng = np.random.default_rng(h * w)
    oh, ow = (h - 1) // stride + 1, (w - 1) // stride + 1
    img = rng.integers(0, 256, (2, h, w))
    dut = Decimator(h, w, 8, stride, oh, ow)
    got, _ = run_stream(dut, dut.i, dut.o, img.ravel().tolist(), 2 * oh * ow, rng, 0.3, 0.3)
    assert got == img[:, ::stride, ::stride][:, :oh, :ow].ravel().tolist()


SMALL = dict(shape=(6, 6, 3), widths=(4, 6), blocks=2, classes=5)


@pytest.mark.parametrize("seed", range(3))
def test_residual_network_matches_golden_under_stalls(seed):
    """stem, identity and projection blocks, global sum, FC, argmax; random folding."""
    rng = np.random.default_rng(300 + seed)
    g = random_resnet(rng, **SMALL)
    fo = random_folding(rng, g)
    x = random_images(rng, g, 4)
    got, _ = _accelerator_run(g, fo, x, rng, 0.3)
    assert got == run(g, x)["cls"][:, 0].tolist()


def test_residual_network_cycle_model():
    """Back to back, every image takes the model's steady-state cycles."""
    rng = np.random.default_rng(7)
    g = random_resnet(rng, **SMALL)
    p = plan(g)
    fo = auto_fold(p, 100)
    pred = predict(p, fo)
    x = random_images(rng, g, 5)
    dut = Accelerator(p, fo, pack_all(g, p, fo), external_memories=False)
    got, times = _timed(dut, lanes_to_beats(x.reshape(len(x), -1).ravel(), fo.in_lanes, 8), len(x))
    assert got == run(g, x)["cls"][:, 0].tolist()
    assert np.diff(times)[1:].tolist() == [pred["cycles_per_image"]] * (len(x) - 2)


def test_delay_depth_holds_an_image_and_the_branch_latency():
    g = random_resnet(np.random.default_rng(0))
    p = plan(g)
    fo = auto_fold(p, 9216)
    depths = delay_depths(p, fo)
    assert set(depths) == {f"s{i}b{j}_add_delay" for i in range(3) for j in range(2)}
    for name, d in depths.items():
        e = p.engine(name)
        assert d >= 2 * e.pixels  # one image for deadlock freedom, about one more for the conv branch
