"""The accelerator: engines of a plan joined by streams into one pipeline, with
AXI4-Stream-shaped ports.

Ports (Verilog names; ``clk`` and active-high ``rst`` come from the ``sync`` domain):

- ``s_axis_tdata[8*L-1:0]``, ``s_axis_tvalid``, ``s_axis_tready``, ``s_axis_tlast``: pixels,
  L lanes of one byte per beat, lane 0 in bits 7:0, in row-major order with the channel
  fastest. ``tlast`` marks an image's last beat; the pipeline counts beats itself, so
  ``tlast`` is not needed for framing and is ignored.
- ``m_axis_tdata[8*K-1:0]``, ``m_axis_tvalid``, ``m_axis_tready``, ``m_axis_tlast``: one beat
  per image, the class index; ``tlast`` is 1 on every beat.
"""

from dataclasses import dataclass

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..fold import SWU, ArgMax, Folding, MaxPool, MVAU, Plan
from ..pack import MvauImage, pack_mvau, write_mem
from .argmax import ArgMaxUnit
from .dwc import WidthConverter
from .mvau import MvauEngine
from .pool import MaxPoolUnit
from .swu import SlidingWindow

OUTPUT_BYTES = 1


@dataclass(frozen=True)
class MemFile:
    name: str       # file name the Verilog reads
    width: int
    words: list


def pack_all(graph, plan: Plan, folding: Folding) -> dict:
    """Memory images of every MVAU, keyed by layer name. A convolution's weight (M, K, K, C)
    is packed as the (M, K*K*C) matrix whose columns follow the window order (ky, kx, c)."""
    images = {}
    for e in plan.mvaus:
        w = graph.node(e.name).params["weight"]
        w = w.reshape(w.shape[0], -1)
        t = graph.node(e.threshold).params["thresholds"] if e.threshold else None
        images[e.name] = pack_mvau(e, folding[e.name], w, t)
    return images


def mem_files(images: dict) -> list:
    files = []
    for name, img in images.items():
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


class Accelerator(wiring.Component):
    def __init__(self, plan: Plan, folding: Folding, images: dict, external_memories: bool = True):
        self.plan, self.folding, self.images, self.external = plan, folding, images, external_memories
        if plan.input_dtype.bits > 8:
            raise ValueError("input lanes are bytes: pixels of at most 8 bits")
        self.in_lanes = folding.in_lanes
        super().__init__({
            "s_axis_tdata": In(8 * self.in_lanes), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(8 * OUTPUT_BYTES), "m_axis_tvalid": Out(1), "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        in_bits = self.plan.input_dtype.bits
        # AXI byte lanes -> packed input elements
        src = stream.Signature(in_bits * self.in_lanes).create()
        m.d.comb += [src.payload.eq(self._unpad(in_bits)), src.valid.eq(self.s_axis_tvalid),
                     self.s_axis_tready.eq(src.ready)]
        lanes, bits = self.in_lanes, in_bits
        for e in self.plan.engines:
            if isinstance(e, MVAU):
                f = self.folding[e.name]
                engine = MvauEngine(e, f, self.images[e.name], self.external)
                consumer_lanes = f.simd
            elif isinstance(e, SWU):
                win = e.window
                engine = SlidingWindow(win.h, win.w, win.c, bits, win.k, win.stride, win.pad, e.pad_code)
                consumer_lanes = win.c
            elif isinstance(e, MaxPool):
                win = e.window
                engine = MaxPoolUnit(win.h, win.w, win.c, bits, win.k, win.stride, e.dtype.kind == "int")
                consumer_lanes = win.c
            else:
                assert isinstance(e, ArgMax)
                engine = ArgMaxUnit(e.n_in, lanes, bits, self._signed_prev, 8 * OUTPUT_BYTES)
                consumer_lanes = lanes
            if consumer_lanes != lanes:
                dwc = WidthConverter(bits, lanes, consumer_lanes)
                m.submodules[f"{e.name}_dwc"] = dwc
                wiring.connect(m, src, dwc.i)
                src = dwc.o
            m.submodules[e.name] = engine
            wiring.connect(m, src, engine.i)
            src = engine.o
            if isinstance(e, MVAU):
                lanes, bits = f.pe, engine.out_bits
                self._signed_prev = (not e.threshold) and engine.acc.dtype.signed
            elif isinstance(e, (SWU, MaxPool)):
                lanes = e.window.c
        m.d.comb += [self.m_axis_tdata.eq(src.payload), self.m_axis_tvalid.eq(src.valid),
                     src.ready.eq(self.m_axis_tready), self.m_axis_tlast.eq(1)]
        return m

    _signed_prev = False

    def _unpad(self, bits):
        from amaranth.hdl import Cat
        return Cat(*[self.s_axis_tdata[8 * l:8 * l + bits] for l in range(self.in_lanes)])
