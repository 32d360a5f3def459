"""Population count as a library module of the emitted Verilog.

Every PE of a binary MVAU counts the set bits of a SIMD-bit word. Written inline, each count
is a tree of SIMD-1 adders in the emitted Verilog and in the C++ that Verilator makes of it;
a ResNet-14 has some thousand such PEs. ``hdlgen_popcount`` is the same balanced adder tree
written once, as a parameterized module: Yosys flattens it into the same logic, and Verilator
keeps it a module (``no_inline_module``), compiling one class per width instead of one copy
per PE. In Amaranth's simulator (``external=False``) the tree is built inline.
"""

from amaranth.hdl import Instance, Signal
from amaranth.utils import ceil_log2

from .arith import popcount

POPCOUNT_MODULE = "hdlgen_popcount"

POPCOUNT_VERILOG = """\
// Number of set bits of IN: a balanced tree of adders over the bits. Level 0 holds the bits
// (zero past WIDTH) as OUT-bit counts; level l holds N >> l counts, count k being the sum of
// counts 2k and 2k+1 of level l-1; level L is the total.
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
    genvar l, k;
    generate
        for (l = 0; l <= L; l = l + 1) begin : level
            wire [OUT*(N >> l)-1:0] s;
            for (k = 0; k < (N >> l); k = k + 1) begin : node
                if (l > 0) begin : sum
                    assign s[OUT*k +: OUT] = level[l-1].s[OUT*(2*k) +: OUT] + level[l-1].s[OUT*(2*k+1) +: OUT];
                end else if (k < WIDTH) begin : bit_k
                    assign s[OUT*k +: OUT] = {{(OUT-1){1'b0}}, in[k]};
                end else begin : zero_k
                    assign s[OUT*k +: OUT] = {OUT{1'b0}};
                end
            end
        end
    endgenerate
    assign count = level[L].s[OUT-1:0];
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
