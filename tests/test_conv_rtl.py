"""Sliding-window, pooling and whole small CNNs in Amaranth's simulator against NumPy."""

import numpy as np
import pytest

from hdlgen.fold import Folding, LayerFold, check, plan, predict
from hdlgen.fuzz import random_folding, random_graph, random_images
from hdlgen.golden import run
from hdlgen.pack import split_words
from hdlgen.rtl import Accelerator, pack_all
from hdlgen.rtl.pool import MaxPoolUnit, WindowReduce
from hdlgen.rtl.swu import SlidingWindow

from amaranth_tb import lanes_to_beats, run_stream, run_testbench


def windows_reference(img, k, stride, pad, pad_code):
    """(h, w, c) codes -> (h'*w'*k*k, c): every output pixel's window, (ky, kx) order."""
    h, w, c = img.shape
    padded = np.full((h + 2 * pad, w + 2 * pad, c), pad_code, img.dtype)
    padded[pad:pad + h, pad:pad + w] = img
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    rows = [padded[y * stride + ky, x * stride + kx]
            for y in range(oh) for x in range(ow) for ky in range(k) for kx in range(k)]
    return np.array(rows)


@pytest.mark.parametrize("h,w,c,k,stride,pad", [
    (4, 5, 2, 1, 1, 0), (5, 4, 1, 2, 1, 0), (5, 5, 2, 3, 1, 1), (6, 5, 3, 3, 2, 1),
    (6, 6, 1, 2, 2, 0), (3, 3, 2, 3, 1, 2), (5, 6, 2, 1, 2, 0), (4, 4, 1, 3, 2, 0),
])
def test_sliding_window_order(h, w, c, k, stride, pad):
    rng = np.random.default_rng(h * 100 + w * 10 + k + stride + pad)
    bits, images = 3, 3
    pad_code = int(rng.integers(0, 8))
    x = rng.integers(0, 8, (images, h, w, c))
    dut = SlidingWindow(h, w, c, bits, k, stride, pad, pad_code)
    expect = np.concatenate([windows_reference(img, k, stride, pad, pad_code) for img in x])
    got, _ = run_stream(dut, dut.i, dut.o, lanes_to_beats(x.ravel(), c, bits), len(expect), rng)
    assert split_words(got, c, bits).tolist() == expect.tolist()


def test_sliding_window_full_rate_without_stalls():
    rng = np.random.default_rng(1)
    h, w, c, k = 4, 4, 1, 3
    dut = SlidingWindow(h, w, c, 2, k, 1, 1, 0)
    images = 6
    x = rng.integers(0, 4, (images, h, w, c))
    n_out = images * dut.out_h * dut.out_w * k * k
    got, cycles = run_stream(dut, dut.i, dut.o, lanes_to_beats(x.ravel(), c, 2), n_out, rng, 0, 0)
    assert len(got) == n_out
    # the first image's h*w input beats, then one output beat per cycle, plus the latency
    assert cycles <= h * w + n_out + 2 + 1


@pytest.mark.parametrize("c,bits,kk,signed", [(3, 1, 4, False), (2, 4, 1, False), (2, 5, 9, True), (1, 3, 3, False)])
def test_window_reduce_max(c, bits, kk, signed):
    rng = np.random.default_rng(c * 7 + kk)
    windows = 12
    lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    vals = rng.integers(lo, hi, (windows, kk, c))
    dut = WindowReduce(c, bits, kk, signed)
    got, _ = run_stream(dut, dut.i, dut.o, lanes_to_beats(vals.ravel(), c, bits), windows, rng)
    raw = split_words(got, c, bits).astype(np.int64)
    if signed:
        raw = np.where(raw >= 1 << (bits - 1), raw - (1 << bits), raw)
    assert raw.tolist() == vals.max(axis=1).tolist()


@pytest.mark.parametrize("h,w,k,stride", [(6, 6, 2, 2), (5, 7, 3, 2), (4, 4, 3, 1)])
def test_maxpool_unit(h, w, k, stride):
    rng = np.random.default_rng(h + w + k)
    c, images = 3, 2
    x = rng.integers(0, 2, (images, h, w, c))
    dut = MaxPoolUnit(h, w, c, 1, k, stride)
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    expect = np.stack([[[img[y * stride:y * stride + k, xx * stride:xx * stride + k].max(axis=(0, 1))
                         for xx in range(ow)] for y in range(oh)] for img in x])
    got, _ = run_stream(dut, dut.i, dut.o, lanes_to_beats(x.ravel(), c, 1), images * oh * ow, rng)
    assert split_words(got, c, 1).tolist() == expect.reshape(-1, c).tolist()


CNN = dict(shape=(6, 6, 2), hidden=(8,), classes=4, convs=[(4, 3, 1, 1, 2), (6, 2, 1, 0, 0)])


def _accelerator_run(g, fo, x, rng, stall):
    p = plan(g)
    check(p, fo)
    dut = Accelerator(p, fo, pack_all(g, p, fo), external_memories=False)
    beats = lanes_to_beats(x.reshape(len(x), -1).ravel(), fo.in_lanes, 8)
    return run_stream(dut, None, None, beats, len(x), rng, stall, stall, max_cycles=40000,
                      in_valid=dut.s_axis_tvalid, in_ready=dut.s_axis_tready, in_data=dut.s_axis_tdata,
                      out_valid=dut.m_axis_tvalid, out_ready=dut.m_axis_tready, out_data=dut.m_axis_tdata)


@pytest.mark.parametrize("seed", range(3))
def test_cnn_accelerator_matches_golden(seed):
    """conv -> pool -> conv -> flatten -> dense -> dense -> argmax, random folding, random stalls."""
    rng = np.random.default_rng(200 + seed)
    convs = [[(4, 3, 1, 1, 2), (6, 2, 1, 0, 0)], [(3, 3, 2, 1, 0), (4, 3, 1, 1, 3)],
             [(2, 1, 1, 0, 2), (4, 3, 1, 1, 0)]][seed]
    g = random_graph(rng, shape=(6, 6, 2), hidden=(8,), classes=4, convs=convs, in_bits=[8, 4, 8][seed])
    fo = random_folding(rng, g)
    x = random_images(rng, g, 4)
    got, _ = _accelerator_run(g, fo, x, rng, 0.3)
    assert got == run(g, x)["cls"][:, 0].tolist()


def _timed(dut, beats, n_out, max_cycles=40000):
    """Stream without stalls; the cycle of every output beat (first input beat at cycle 0)."""
    got, times = [], []

    async def tb(ctx):
        i = cycle = 0
        ctx.set(dut.m_axis_tready, 1)
        while len(got) < n_out and cycle < max_cycles:
            ctx.set(dut.s_axis_tvalid, int(i < len(beats)))
            if i < len(beats):
                ctx.set(dut.s_axis_tdata, beats[i])
            await ctx.delay(1e-9)
            if ctx.get(dut.s_axis_tvalid) and ctx.get(dut.s_axis_tready):
                i += 1
            if ctx.get(dut.m_axis_tvalid):
                got.append(ctx.get(dut.m_axis_tdata))
                times.append(cycle)
            await ctx.tick()
            cycle += 1

    run_testbench(dut, tb)
    return got, times


@pytest.mark.parametrize("layers,bottleneck", [
    ({"conv0": LayerFold(2, 18), "conv1": LayerFold(3, 4), "fc0": LayerFold(1, 24), "fcout": LayerFold(1, 2)},
     "conv0_swu"),
    ({"conv0": LayerFold(1, 9), "conv1": LayerFold(1, 1), "fc0": LayerFold(8, 1), "fcout": LayerFold(2, 8)},
     "conv1"),
])
def test_cnn_cycle_model(layers, bottleneck):
    """Steady-state cycles per image equal the model's; the latency estimate is within 10%."""
    rng = np.random.default_rng(1)
    g = random_graph(rng, **CNN)
    p = plan(g)
    fo = Folding(4, layers)
    pred = predict(p, fo)
    assert pred["bottleneck"] == bottleneck
    x = random_images(rng, g, 4)
    dut = Accelerator(p, fo, pack_all(g, p, fo), external_memories=False)
    got, times = _timed(dut, lanes_to_beats(x.reshape(len(x), -1).ravel(), fo.in_lanes, 8), len(x))
    assert got == run(g, x)["cls"][:, 0].tolist()
    assert np.diff(times).tolist() == [pred["cycles_per_image"]] * (len(x) - 1)
    assert abs(times[0] - pred["latency_cycles"]) <= 0.1 * times[0]
