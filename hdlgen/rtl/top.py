"""The accelerator: engines of a plan joined by streams into one pipeline, with
AXI4-Stream-shaped ports.

Ports (Verilog names; ``clk`` and active-high ``rst`` come from the ``sync`` domain):

- ``s_axis_tdata[8*L-1:0]``, ``s_axis_tvalid``, ``s_axis_tready``, ``s_axis_tlast``: pixels,
  L lanes of one byte per beat, lane 0 in bits 7:0, in row-major order with the channel
  fastest. ``tlast`` marks an image's last beat; the pipeline counts beats itself, so
  ``tlast`` is not needed for framing and is ignored.
- ``m_axis_tdata[8*K-1:0]``, ``m_axis_tvalid``, ``m_axis_tready``, ``m_axis_tlast``: one beat
  per image, the class index; ``tlast`` is 1 on every beat.

Engines are joined as the plan's ``inputs`` say (a residual network forks and merges), with a
width converter wherever a stream carries another number of values per beat than its reader
takes.
"""

from dataclasses import dataclass

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..fold import SWU, ArgMax, Decimate, Delay, Folding, Fork, GlobalSum, MaxPool, MVAU, Plan, SelectThreshold
from ..fold.folding import consumer_lanes, delay_depths
from ..pack import hw_accumulator, pack_mvau, pack_thresholds, write_mem
from .argmax import ArgMaxUnit
from .dwc import WidthConverter
from .mvau import MvauEngine
from .pool import MaxPoolUnit
from .residual import DelayFifo, Decimator, Fork as ForkUnit, GlobalSumUnit, SelectThresholdUnit
from .swu import SlidingWindow

OUTPUT_BYTES = 1


@dataclass(frozen=True)
class MemFile:
    name: str       # file name the Verilog reads
    width: int
    words: list


@dataclass(frozen=True)
class ThresholdImage:
    """Thresholds of a threshold select: word ``nf``, element ``2*p + s`` (see pack_thresholds)."""
    words: list
    width: int


def pack_all(graph, plan: Plan, folding: Folding) -> dict:
    """Memory images of every MVAU and threshold select, keyed by engine name. A convolution's
    weight (M, K, K, C) is packed as the (M, K*K*C) matrix whose columns follow the window
    order (ky, kx, c)."""
    images = {}
    for e in plan.engines:
        if isinstance(e, MVAU):
            w = graph.node(e.name).params["weight"]
            w = w.reshape(w.shape[0], -1)
            t = graph.node(e.threshold).params["thresholds"] if e.threshold else None
            images[e.name] = pack_mvau(e, folding[e.name], w, t)
        elif isinstance(e, SelectThreshold):
            mv = plan.engine(e.mvau)
            images[e.name] = ThresholdImage(*pack_thresholds(mv, folding[mv.name],
                                                             graph.node(e.name).params["thresholds"]))
    return images


def mem_files(images: dict) -> list:
    files = []
    for name, img in images.items():
        if isinstance(img, ThresholdImage):
            files.append(MemFile(f"{name}_thresholds.mem", img.width, img.words))
            continue
        files.append(MemFile(f"{name}_weights.mem", img.weight_width, img.weight_words))
        if img.thr_words:
            files.append(MemFile(f"{name}_thresholds.mem", img.thr_width, img.thr_words))
    return files


def write_mem_files(directory, images: dict) -> list:
    paths = []
    for f in mem_files(images):
        path = directory / f.name
        write_mem(path, f.words, f.width)
        paths.append(path)
    return paths


@dataclass
class _Stream:
    port: object      # the stream interface that produces it
    lanes: int
    bits: int
    signed: bool = False


class Accelerator(wiring.Component):
    def __init__(self, plan: Plan, folding: Folding, images: dict, external_memories: bool = True,
                 accumulator: str = "shared"):
        """``accumulator``: the MVAUs' organisation, "shared" (one accumulator per PE, the
        default) or "per-output" (one per output neuron; see :mod:`.mvau`)."""
        self.plan, self.folding, self.images, self.external = plan, folding, images, external_memories
        self.accumulator = accumulator
        if plan.input_dtype.bits > 8:
            raise ValueError("input lanes are bytes: pixels of at most 8 bits")
        self.in_lanes = folding.in_lanes
        self.delay_depths = delay_depths(plan, folding)
        super().__init__({
            "s_axis_tdata": In(8 * self.in_lanes), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(8 * OUTPUT_BYTES), "m_axis_tvalid": Out(1), "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
        })

    def _engine(self, e, ins):
        """The component of engine ``e`` whose inputs are the streams ``ins``; returns
        (component, [its input ports], output stream description)."""
        x = ins[0]
        if isinstance(e, MVAU):
            f = self.folding[e.name]
            c = MvauEngine(e, f, self.images[e.name], self.external, accumulator=self.accumulator)
            signed = (not e.threshold) and c.acc.dtype.signed
            return c, [c.i], _Stream(c.o, f.pe, c.out_bits, signed)
        if isinstance(e, SWU):
            win = e.window
            c = SlidingWindow(win.h, win.w, win.c, x.bits, win.k, win.stride, win.pad, e.pad_code)
            return c, [c.i], _Stream(c.o, win.c, x.bits, x.signed)
        if isinstance(e, MaxPool):
            win = e.window
            c = MaxPoolUnit(win.h, win.w, win.c, x.bits, win.k, win.stride, e.dtype.kind == "int")
            return c, [c.i], _Stream(c.o, win.c, x.bits, x.signed)
        if isinstance(e, Decimate):
            win = e.window
            c = Decimator(win.h, win.w, win.c * x.bits, win.stride, win.out_h, win.out_w)
            return c, [c.i], _Stream(c.o, win.c, x.bits, x.signed)
        if isinstance(e, Fork):
            c = ForkUnit(x.lanes * x.bits, e.ways)
            return c, [c.i], [_Stream(c.output(k), x.lanes, x.bits, x.signed) for k in range(e.ways)]
        if isinstance(e, Delay):
            c = DelayFifo(e.channels * x.bits, self.delay_depths[e.name])
            return c, [c.i], _Stream(c.o, e.channels, x.bits, x.signed)
        if isinstance(e, SelectThreshold):
            mv = self.plan.engine(e.mvau)
            acc = hw_accumulator(mv)
            img = self.images[e.name]
            c = SelectThresholdUnit(x.lanes, x.bits, x.signed, acc.thr_dtype.bits, acc.thr_dtype.signed,
                                    img.words, f"{e.name}_thresholds.mem", self.external)
            return c, [c.i, c.sel], _Stream(c.o, x.lanes, 1)
        if isinstance(e, GlobalSum):
            c = GlobalSumUnit(e.pixels, e.channels, x.bits, e.in_dtype.kind, e.out_dtype.bits)
            return c, [c.i], _Stream(c.o, e.channels, e.out_dtype.bits, e.out_dtype.signed)
        assert isinstance(e, ArgMax)
        c = ArgMaxUnit(e.n_in, x.lanes, x.bits, x.signed, 8 * OUTPUT_BYTES)
        return c, [c.i], _Stream(c.o, 1, c.out_bits)

    def elaborate(self, platform):
        m = Module()
        in_bits = self.plan.input_dtype.bits
        # AXI byte lanes -> packed input elements
        src = stream.Signature(in_bits * self.in_lanes).create()
        m.d.comb += [src.payload.eq(self._unpad(in_bits)), src.valid.eq(self.s_axis_tvalid),
                     self.s_axis_tready.eq(src.ready)]
        streams = {"input": _Stream(src, self.in_lanes, in_bits)}
        for e in self.plan.engines:
            ins = []
            for k, name in enumerate(self.plan.inputs[e.name]):
                s = streams.pop(name)
                want = consumer_lanes(self.plan, self.folding, e, k, s.lanes)
                if want != s.lanes:
                    dwc = WidthConverter(s.bits, s.lanes, want)
                    m.submodules[f"{e.name}_dwc{k or ''}"] = dwc
                    wiring.connect(m, s.port, dwc.i)
                    s = _Stream(dwc.o, want, s.bits, s.signed)
                ins.append(s)
            engine, ports, out = self._engine(e, ins)
            m.submodules[e.name] = engine
            for s, port in zip(ins, ports):
                wiring.connect(m, s.port, port)
            if isinstance(e, Fork):
                streams.update({f"{e.name}/{k}": o for k, o in enumerate(out)})
            else:
                streams[e.name] = out
        last = streams.pop(self.plan.engines[-1].name).port
        assert not streams, f"unconnected streams {sorted(streams)}"
        m.d.comb += [self.m_axis_tdata.eq(last.payload), self.m_axis_tvalid.eq(last.valid),
                     last.ready.eq(self.m_axis_tready), self.m_axis_tlast.eq(1)]
        return m

    def _unpad(self, bits):
        from amaranth.hdl import Cat
        return Cat(*[self.s_axis_tdata[8 * l:8 * l + bits] for l in range(self.in_lanes)])
