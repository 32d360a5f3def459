"""Population count as a library module of the emitted Verilog.

Every PE of a binary MVAU counts the set bits of a SIMD-bit word. Written inline, each count
is a tree of SIMD-1 adders in the emitted Verilog and in the C++ that Verilator makes of it;
a ResNet-14 has some thousand such PEs. ``hdlgen_popcount`` is the same balanced adder tree
written once, as a parameterized module: Yosys flattens it into the same logic (the same LUT
count for the shipped models), and Verilator
keeps it a module (``no_inline_module``), compiling one class per width instead of one copy
per PE. In Amaranth's simulator (``external=False``) the tree is built inline.
"""

from amaranth.hdl import Instance, Signal
from amaranth.utils import ceil_log2

from .arith import popcount

POPCOUNT_MODULE = "hdlgen_popcount"

POPCOUNT_VERILOG = """\
// Number of set bits of IN: a balanced tree of adders over the bits. Node k of the tree (1 the
// root, N + i the bit i, zero past WIDTH) is the OUT-bit count t[OUT*k +: OUT]; node k < N is
// the sum of nodes 2k and 2k+1. Written as one function, the tree is one process for an
// event-driven simulator (Icarus evaluates it about 9x faster than as a net of assigns) and
// the same logic for synthesis.
module hdlgen_popcount #(
    parameter integer WIDTH = 2,
    parameter integer OUT = 2
) (
    input  wire [WIDTH-1:0] in,
    output wire [OUT-1:0]   count
);
    /*verilator no_inline_module*/
    localparam integer L = $clog2(WIDTH);
    localparam integer N = 1 << L;
    function automatic [OUT-1:0] tree(input [WIDTH-1:0] v);
        reg [OUT*2*N-1:0] t;
        integer k;
        begin
            t = {OUT*2*N{1'b0}};
            for (k = 0; k < WIDTH; k = k + 1)
                t[OUT*(N+k) +: OUT] = {{(OUT-1){1'b0}}, v[k]};
            for (k = N - 1; k >= 1; k = k - 1)
                t[OUT*k +: OUT] = t[OUT*(2*k) +: OUT] + t[OUT*(2*k+1) +: OUT];
            tree = t[OUT +: OUT];
        end
    endfunction
    assign count = tree(in);
endmodule
"""


def popcount_of(m, value, width: int, external: bool, name: str):
    """The number of set bits of ``value`` (``width`` bits): an ``hdlgen_popcount`` instance
    when ``external`` (widths of 2 and more), else an inline adder tree."""
    if not external or width < 2:
        return popcount(value, width)
    out = Signal(ceil_log2(width + 1), name=name)
    m.submodules[f"{name}_tree"] = Instance(POPCOUNT_MODULE, p_WIDTH=width, p_OUT=len(out),
                                            i_in=value, o_count=out)
    return out
