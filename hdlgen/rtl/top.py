"""The accelerator: engines of a plan joined by streams into one pipeline, with the top-level
ports of :mod:`hdlgen.engines.ports` (AXI4-Stream shaped; ``clk`` and active-high ``rst`` come
from the ``sync`` domain).

Engines are joined as the plan's ``inputs`` say (a residual network forks and merges), with a
width converter wherever a stream carries another number of values per beat than its reader
takes. Each engine's component comes from its kind's RTL side (:mod:`.components`).
"""

from amaranth.hdl import Cat, Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..engines import engine_kind
from ..engines.ports import INPUT, OUTPUT, core_interfaces
from ..fold import Folding, Plan
from ..fold.timeline import delay_depths, lanes, output_names
from ..pack import write_mem
from .built import Options, lanes_signature, layout_of
from .components import component_of
from .dwc import WidthConverter


def pack_all(graph, plan: Plan, folding: Folding) -> dict:
    """The packed artifact of every engine that has one (weights, thresholds), keyed by engine
    name. A convolution's weight (M, K, K, C) is packed as the (M, K*K*C) matrix whose columns
    follow the window order (ky, kx, c)."""
    ln = lanes(plan, folding)
    images = {}
    for e in plan.engines:
        art = engine_kind(e).pack(e, folding.knobs(e), ln.inputs[e.name], graph)
        if art is not None:
            images[e.name] = art
    return images


def mem_files(images: dict) -> list:
    """Every memory image (:class:`hdlgen.engines.base.MemImage`) of the packed artifacts."""
    return [m for art in images.values() for m in art.memories]


def write_mem_files(directory, images: dict) -> list:
    paths = []
    for f in mem_files(images):
        path = directory / f.file
        write_mem(path, f.words, f.width)
        paths.append(path)
    return paths


def interfaces(plan: Plan, folding: Folding) -> tuple:
    """The core's top-level interfaces: the input and output streams and those its engines need."""
    extra = tuple(i for e in plan.engines for i in engine_kind(e).interfaces(e, folding.knobs(e)))
    return core_interfaces(folding.in_lanes, extra)


def signature_members(interfaces: tuple) -> dict:
    """Amaranth signature members of the ports of ``interfaces``."""
    return {p.name: (In if p.direction == "in" else Out)(p.width) for i in interfaces for p in i.ports}


class Accelerator(wiring.Component):
    def __init__(self, plan: Plan, folding: Folding, images: dict, external_memories: bool = True,
                 accumulator: str = "shared"):
        """``accumulator``: the MVAUs' organisation, "shared" (one accumulator per PE, the
        default) or "per-output" (one per output neuron; see :mod:`.mvau`)."""
        if plan.input_dtype.bits > 8:
            raise ValueError("input lanes are bytes: pixels of at most 8 bits")
        self.plan, self.folding, self.images = plan, folding, images
        self.in_lanes = folding.in_lanes
        self.delay_depths = delay_depths(plan, folding)
        self.options = Options(external_memories, accumulator, self.delay_depths)
        self.interfaces = interfaces(plan, folding)
        super().__init__(signature_members(self.interfaces))

    def elaborate(self, platform):
        m = Module()
        in_bits = self.plan.input_dtype.bits
        ln = lanes(self.plan, self.folding)
        # AXI byte lanes -> a typed stream of input elements
        src = lanes_signature(unsigned(in_bits), self.in_lanes).create()
        tdata = getattr(self, f"{INPUT}_tdata")
        m.d.comb += [src.payload.eq(Cat(*[tdata[8 * j:8 * j + in_bits] for j in range(self.in_lanes)])),
                     src.valid.eq(getattr(self, f"{INPUT}_tvalid")),
                     getattr(self, f"{INPUT}_tready").eq(src.ready)]
        streams = {"input": src}
        for e in self.plan.engines:
            ins = []
            for k, name in enumerate(self.plan.inputs[e.name]):
                port = streams.pop(name)
                have, want = layout_of(port), ln.inputs[e.name][k]
                if want != have.length:
                    dwc = WidthConverter(have.elem_shape, have.length, want)
                    m.submodules[f"{e.name}_dwc{k or ''}"] = dwc
                    wiring.connect(m, port, dwc.i)
                    port = dwc.o
                ins.append(port)
            built = component_of(e.kind).from_engine(e, self.folding.knobs(e), self.images.get(e.name),
                                                     [layout_of(p) for p in ins], self.options)
            m.submodules[e.name] = built.component
            for port, sink in zip(ins, built.inputs):
                wiring.connect(m, port, sink)
            streams.update(zip(output_names(e), built.outputs))
        last = streams.pop(self.plan.engines[-1].name)
        assert not streams, f"unconnected streams {sorted(streams)}"
        m.d.comb += [getattr(self, f"{OUTPUT}_tdata").eq(last.payload), getattr(self, f"{OUTPUT}_tvalid").eq(last.valid),
                     last.ready.eq(getattr(self, f"{OUTPUT}_tready")), getattr(self, f"{OUTPUT}_tlast").eq(1)]
        return m
