"""The MVAU's two accumulator organisations ("shared" and "per-output") in Amaranth's
simulator against NumPy, against each other, and measured by Yosys."""

import numpy as np
import pytest


from hdlgen.fold import Folding, LayerFold, check, plan, predict
from hdlgen.engines.mvau import MVAU, hw_accumulator, pack_mvau
from hdlgen.fuzz import random_graph, random_images
from hdlgen.golden import run
from hdlgen.ir import DType
from hdlgen.pack import split_words
from hdlgen.rtl import Accelerator, pack_all
from hdlgen.rtl.mvau import LATENCY, MvauEngine

from amaranth_tb import lanes_to_beats, run_stream, run_testbench
from test_conv_rtl import _timed

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

VARIANTS = ("shared", "per-output")


def random_layer(rng, n_in, n_out, in_kind, levels, pixels=1):
    """An MVAU with random bipolar weights and ascending thresholds (``levels`` per neuron,
    none when 0); returns (engine description, weight (n_out, n_in), thresholds or None)."""
    in_dtype = DType("bipolar", 1) if in_kind == "bipolar" else DType.parse(in_kind)
    bound = n_in * max(-in_dtype.min, in_dtype.max)
    acc = DType.for_range(-bound, bound)
    if levels == 0:
        out_dtype, name_t = acc, None
    elif levels == 1:
        out_dtype, name_t = DType("bipolar", 1), "act"
    else:
        out_dtype, name_t = DType("uint", levels.bit_length()), "act"
    e = MVAU(name="fc", n_in=n_in, n_out=n_out, in_dtype=in_dtype, w_dtype=DType("bipolar", 1),
             acc_dtype=acc, out_dtype=out_dtype, threshold=name_t, pixels=pixels)
    w = rng.choice(np.array([-1, 1]), size=(n_out, n_in))
    t = None
    if levels:
        # thresholds around the typical range of the sums, some at the extremes
        spread = max(2, int(np.sqrt(n_in)) * (1 if in_kind == "bipolar" else in_dtype.max))
        t = np.sort(rng.integers(-2 * spread, 2 * spread + 1, size=(n_out, levels)), axis=1)
        t = np.clip(t, acc.min, acc.max + 1)
        t[0, 0] = acc.max + 1 if levels == 1 else t[0, 0]
    return e, w, t


def random_inputs(rng, e, vectors):
    if e.in_dtype.kind == "bipolar":
        return rng.choice(np.array([-1, 1]), size=(vectors, e.n_in))
    return rng.integers(e.in_dtype.min, e.in_dtype.max + 1, size=(vectors, e.n_in))


def expected_codes(e, w, t, x):
    """Output element codes (vectors, n_out) of the engine for IR inputs ``x``."""
    s = x.astype(np.int64) @ w.T.astype(np.int64)
    if t is None:
        acc = hw_accumulator(e)
        hw = (s + e.n_in) // 2 if acc.popcount else s
        return hw & ((1 << acc.dtype.bits) - 1)
    return (s[:, :, None] >= t[None, :, :]).sum(axis=2)


def input_beats(e, f, x):
    codes = (x > 0).astype(np.int64) if e.in_dtype.kind == "bipolar" else x & ((1 << e.in_dtype.bits) - 1)
    return lanes_to_beats(codes.ravel(), f.simd, e.in_dtype.bits)


def simulate(e, f, w, t, x, variant, rng, stall_in=0.3, stall_out=0.3):
    img = pack_mvau(e, f, w, t)
    dut = MvauEngine(e, f, img, external=False, accumulator=variant)
    n_out = len(x) * (e.n_out // f.pe)
    got, cycles = run_stream(dut, dut.i, dut.o, input_beats(e, f, x), n_out, rng, stall_in, stall_out,
                             max_cycles=40000)
    assert len(got) == n_out
    return split_words(got, f.pe, dut.out_bits).reshape(len(x), e.n_out), cycles


CASES = [
    # n_in, n_out, pe, simd, input, levels
    (12, 6, 2, 3, "bipolar", 1),     # NF 3, SF 4
    (8, 12, 3, 2, "uint4", 1),       # NF 4, SF 4, integer inputs
    (10, 4, 4, 2, "bipolar", 1),     # NF 1
    (6, 10, 2, 6, "bipolar", 1),     # SF 1
    (9, 6, 1, 1, "int3", 3),         # NF 6, SF 9, signed inputs, 2-bit outputs
    (6, 4, 2, 2, "bipolar", 0),      # no thresholds: the accumulator itself leaves
    (4, 6, 3, 4, "uint8", 0),        # NF 2, SF 1, no thresholds
    (1, 3, 1, 1, "bipolar", 1),      # NF 3, SF 1, one input
]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_mvau_variant_matches_numpy(variant, case):
    n_in, n_out, pe, simd, kind, levels = CASES[case]
    rng = np.random.default_rng(10 + case)
    e, w, t = random_layer(rng, n_in, n_out, kind, levels)
    x = random_inputs(rng, e, 7)
    got, _ = simulate(e, LayerFold(pe, simd), w, t, x, variant, rng)
    assert got.tolist() == expected_codes(e, w, t, x).tolist()


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("pe,simd", [(2, 4), (1, 12), (4, 1)])
def test_mvau_variant_conv_pixels(variant, pe, simd):
    """A convolution's MVAU: H'*W' window vectors per image, back to back, several images."""
    rng = np.random.default_rng(pe * 13 + simd)
    pixels, images = 6, 3
    e, w, t = random_layer(rng, 12, 8, "bipolar", 1, pixels=pixels)
    x = random_inputs(rng, e, pixels * images)
    got, _ = simulate(e, LayerFold(pe, simd), w, t, x, variant, rng, 0.2, 0.4)
    assert got.tolist() == expected_codes(e, w, t, x).tolist()


@pytest.mark.parametrize("seed", range(4))
def test_variants_give_identical_outputs(seed):
    """Same layer, same inputs, different stall patterns: both variants give the same words."""
    rng = np.random.default_rng(50 + seed)
    n_in, n_out = [(16, 8), (12, 12), (6, 9), (20, 4)][seed]
    kind = ["bipolar", "uint2", "bipolar", "int4"][seed]
    e, w, t = random_layer(rng, n_in, n_out, kind, [1, 3, 0, 1][seed])
    f = LayerFold(int(rng.choice([d for d in range(1, n_out + 1) if n_out % d == 0 and d < n_out])),
                  int(rng.choice([d for d in range(1, n_in + 1) if n_in % d == 0 and d < n_in])))
    x = random_inputs(rng, e, 6)
    shared, _ = simulate(e, f, w, t, x, "shared", np.random.default_rng(seed))
    per_output, _ = simulate(e, f, w, t, x, "per-output", np.random.default_rng(seed + 99))
    assert shared.tolist() == per_output.tolist()


def _timed_engine(dut, beats, n_out):
    """No stalls: the cycle of every output beat (first input beat offered at cycle 0)."""
    times = []

    async def tb(ctx):
        i = cycle = 0
        ctx.set(dut.o.ready, 1)
        while len(times) < n_out and cycle < 20000:
            ctx.set(dut.i.valid, int(i < len(beats)))
            if i < len(beats):
                ctx.set(dut.i.payload.as_value(), beats[i])
            await ctx.delay(1e-9)
            if ctx.get(dut.i.valid) and ctx.get(dut.i.ready):
                i += 1
            if ctx.get(dut.o.valid):
                times.append(cycle)
            await ctx.tick()
            cycle += 1

    run_testbench(dut, tb)
    return times


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("nf,sf", [(3, 4), (1, 5), (4, 1), (2, 2)])
def test_variant_steady_state_and_latency(variant, nf, sf):
    """With input always valid: NF*SF cycles per vector, and the documented latency."""
    rng = np.random.default_rng(nf * 10 + sf)
    pe, simd, vectors = 2, 3, 5
    e, w, t = random_layer(rng, sf * simd, nf * pe, "bipolar", 1, pixels=vectors)
    f = LayerFold(pe, simd)
    x = random_inputs(rng, e, vectors)
    dut = MvauEngine(e, f, pack_mvau(e, f, w, t), external=False, accumulator=variant)
    times = _timed_engine(dut, input_beats(e, f, x), vectors * nf)
    ends = times[nf - 1::nf]   # the last result of every vector
    assert np.diff(ends).tolist() == [nf * sf] * (vectors - 1)
    if variant == "per-output" or nf == 1:
        # chunks offered back to back are taken one per NF cycles: the last at NF*(SF-1)
        last_in = nf * (sf - 1)
        assert times[:nf] == [last_in + LATENCY + j for j in range(nf)]
    else:
        last_in = sf - 1
        assert times[:nf] == [last_in + sf * (j + 1) + LATENCY for j in range(nf)]


def test_unknown_accumulator_is_refused():
    rng = np.random.default_rng(0)
    e, w, t = random_layer(rng, 4, 4, "bipolar", 1)
    f = LayerFold(2, 2)
    with pytest.raises(ValueError, match="accumulator"):
        MvauEngine(e, f, pack_mvau(e, f, w, t), external=False, accumulator="banked")
    eng = MvauEngine(e, f, pack_mvau(e, f, w, t), external=False, accumulator="per-output")
    assert eng.accumulator_registers == 4
    assert MvauEngine(e, f, pack_mvau(e, f, w, t), external=False).accumulator_registers == 2


def test_cnn_accelerator_with_per_output_engines():
    """A whole CNN with every MVAU per-output (the bottleneck conv1 at NF 6, SF 16): the same
    labels as NumPy and the cycle model's cycles per image."""
    rng = np.random.default_rng(7)
    g = random_graph(rng, shape=(6, 6, 2), hidden=(8,), classes=4, convs=[(4, 3, 1, 1, 2), (6, 2, 1, 0, 0)])
    p = plan(g)
    fo = Folding(4, {"conv0": LayerFold(1, 9), "conv1": LayerFold(1, 1), "fc0": LayerFold(8, 1),
                     "fcout": LayerFold(2, 8)})
    check(p, fo)
    pred = predict(p, fo)
    assert pred["bottleneck"] == "conv1"
    x = random_images(rng, g, 4)
    dut = Accelerator(p, fo, pack_all(g, p, fo), external_memories=False, accumulator="per-output")
    beats = lanes_to_beats(x.reshape(len(x), -1).ravel(), fo.in_lanes, 8)
    got, times = _timed(dut, beats, len(x))
    assert got == run(g, x)["cls"][:, 0].tolist()
    assert np.diff(times).tolist() == [pred["cycles_per_image"]] * (len(x) - 1)


@pytest.mark.synth
@pytest.mark.slow
def test_compare_accumulators_measures_both_variants(tmp_path):
    """Yosys on one engine of a tiny design (NF 4, SF 2): counts for both organisations, more
    flip-flops for per-output, and a table."""
    from hdlgen.build.accumulators import compare_accumulators, render_markdown
    from hdlgen.build.design import make_design

    rng = np.random.default_rng(3)
    g = random_graph(rng, shape=(2, 2, 1), hidden=(8,), classes=3, in_bits=4)
    fo = Folding(1, {"fc0": LayerFold(2, 2), "fcout": LayerFold(1, 8)})
    design = make_design(g, "tiny", folding=fo)
    result = compare_accumulators(design, "xc7", layers=["fc0"], workdir=tmp_path)
    (layer,) = result.layers
    assert (layer.name, layer.nf, layer.sf) == ("fc0", 4, 2)
    assert layer.shared.accumulator_registers == 2 and layer.per_output.accumulator_registers == 8
    for cost in (layer.shared, layer.per_output):
        assert cost.lut > 0 and cost.ff > 0 and cost.dsp == 0
    assert layer.per_output.ff > layer.shared.ff
    assert result.total("shared")["ff"] == layer.shared.ff
    assert layer.ff_saving_pct == pytest.approx(100 * (layer.per_output.ff - layer.shared.ff) / layer.per_output.ff)
    table = render_markdown(result)
    assert "| fc0 | 2 x 2 | 4 x 2 |" in table and "**total**" in table
    assert (tmp_path / "fc0" / "per-output" / "stat.json").is_file()
