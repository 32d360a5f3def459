"""Xilinx ZCU104 evaluation kit (Zynq UltraScale+ XCZU7EV-2FFVC1156E).

Capacities are the XCZU7EV programmable-logic totals from the Zynq UltraScale+ overview:
230,400 LUTs, 460,800 flip-flops, 312 36 Kb block RAMs, 96 UltraRAM288 blocks and
1,728 DSP48E2 slices.

amaranth-boards has no ZCU104, so the platform is written here from the board's published
pinout (UG1267 and its master XDC): the 125 MHz programmable-logic clock CLK_125_P/N on
F23/E23 (LVDS, bank 28, 1.8 V), the four user LEDs GPIO_LED_0..3 on D5 D6 A5 B5 (LVCMOS33,
bank 88) and UART2 of the FT4232H USB bridge, wired to the programmable logic, on A20 (into
the FPGA) and C19 (out of the FPGA), LVCMOS18.
"""

from functools import cache

from . import Board

__all__ = ["BOARD", "platform_class"]


@cache
def platform_class():
    """The Amaranth platform class (built on first use so this module loads without Amaranth)."""
    from amaranth.build import Attrs, Clock, DiffPairs, Resource
    from amaranth.vendor import XilinxPlatform
    from amaranth_boards.resources import LEDResources, UARTResource

    class ZCU104Platform(XilinxPlatform):
        device = "xczu7ev"
        package = "ffvc1156"
        speed = "2-e"
        default_clk = "clk125"
        resources = [
            Resource("clk125", 0, DiffPairs("F23", "E23", dir="i"),
                     Clock(125e6), Attrs(IOSTANDARD="LVDS")),
            *LEDResources(pins="D5 D6 A5 B5", attrs=Attrs(IOSTANDARD="LVCMOS33")),
            UARTResource(0, rx="A20", tx="C19", attrs=Attrs(IOSTANDARD="LVCMOS18")),
        ]
        connectors = []

    return ZCU104Platform


BOARD = Board(
    name="zcu104",
    description="Xilinx ZCU104 (Zynq UltraScale+ XCZU7EV-2FFVC1156E)",
    part="xczu7ev-ffvc1156-2-e",
    family="xcup",
    speed_grade=2,
    capacities={"lut": 230_400, "ff": 460_800, "bram36": 312, "uram": 96, "dsp": 1_728},
    clock_resource="clk125",
    clock_mhz_in=125.0,
    default_clock_mhz=200.0,
    led_count=4,
    uart=True,
    xdc_extra=(),
    _platform_factory=platform_class,
)
