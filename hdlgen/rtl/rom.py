"""Read-only memory with one synchronous read port (data one cycle after the address).

In emitted Verilog it is an instance of ``hdlgen_rom``, a small module that loads its contents
with ``$readmemh(INIT_FILE)`` so that Vivado, Yosys and Verilator read the same ``.mem`` file,
and retrained weights can be swapped in without elaborating again. In Amaranth's simulator
(``external=False``) it is an Amaranth memory holding the same words.
"""

from amaranth.hdl import ClockSignal, Instance, Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

ROM_MODULE = "hdlgen_rom"

ROM_VERILOG = """\
// Synchronous-read ROM initialised from a $readmemh file (one hex word per line).
module hdlgen_rom #(
    parameter integer WIDTH = 8,
    parameter integer DEPTH = 2,
    parameter integer ADDR_WIDTH = 1,
    parameter INIT_FILE = ""
) (
    input  wire                  clk,
    input  wire [ADDR_WIDTH-1:0] addr,
    output reg  [WIDTH-1:0]      data
);
    (* rom_style = "block" *) reg [WIDTH-1:0] mem [0:DEPTH-1];
    initial $readmemh(INIT_FILE, mem);
    always @(posedge clk) data <= mem[addr];
endmodule
"""


class Rom(wiring.Component):
    """``width`` x ``depth`` ROM holding ``words``; latency 1 cycle."""

    def __init__(self, width: int, words: list, file_name: str, external: bool):
        if width < 1:
            raise ValueError(f"ROM width must be positive, not {width}")
        if not words:
            raise ValueError("ROM needs at least one word")
        if any(w < 0 or w >> width for w in words):
            raise ValueError(f"ROM {file_name}: a word does not fit {width} bits")
        self.width, self.words, self.file_name, self.external = width, list(words), file_name, external
        self.depth = len(words)
        self.addr_width = max(1, ceil_log2(self.depth))
        super().__init__({"addr": In(self.addr_width), "data": Out(width)})

    def elaborate(self, platform):
        m = Module()
        if self.external:
            m.submodules.rom = Instance(
                ROM_MODULE, p_WIDTH=self.width, p_DEPTH=self.depth, p_ADDR_WIDTH=self.addr_width,
                p_INIT_FILE=self.file_name, i_clk=ClockSignal(), i_addr=self.addr, o_data=self.data)
        else:
            m.submodules.mem = mem = memory.Memory(shape=self.width, depth=self.depth, init=self.words)
            rp = mem.read_port()
            m.d.comb += [rp.addr.eq(self.addr), self.data.eq(rp.data)]
        return m
