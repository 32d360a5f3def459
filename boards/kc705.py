"""Xilinx KC705 evaluation kit (Kintex-7 XC7K325T-2FFG900C).

Capacities are the XC7K325T totals from the Kintex-7 data sheet: 203,800 LUTs,
407,600 flip-flops, 445 36 Kb block RAMs, 840 DSP48E1 slices, no UltraRAM.

The platform extends ``amaranth_boards.kc705.KC705Platform``, whose only clock is the
programmable Si570 user clock on K28/K29 (156.25 MHz after power-up). The subclass adds
the board's fixed 200 MHz system oscillator (SYSCLK_P/N on AD12/AD11, LVDS, bank 33) and
makes it the default clock, and gives LEDs 4-7 and the USB-UART the LVCMOS25 standard of
their 2.5 V banks (the upstream resources say LVCMOS15 and LVCMOS33).
"""

from functools import cache

from . import Board

__all__ = ["BOARD", "platform_class"]


@cache
def platform_class():
    """The Amaranth platform class (built on first use so this module loads without Amaranth)."""
    from amaranth.build import Attrs, Clock, DiffPairs, Resource
    from amaranth_boards.kc705 import KC705Platform
    from amaranth_boards.resources import LEDResources, UARTResource

    inherited = [res for res in KC705Platform.resources if res.name not in ("led", "uart")]

    class HdlgenKC705Platform(KC705Platform):
        default_clk = "clk200"
        resources = [
            Resource("clk200", 0, DiffPairs("AD12", "AD11", dir="i"),
                     Clock(200e6), Attrs(IOSTANDARD="LVDS")),
            *inherited,
            *LEDResources(pins="AB8 AA8 AC9 AB9", attrs=Attrs(IOSTANDARD="LVCMOS15")),
            *LEDResources(pins={4: "AE26", 5: "G19", 6: "E18", 7: "F16"},
                          attrs=Attrs(IOSTANDARD="LVCMOS25")),
            UARTResource(0, rx="M19", tx="K24", attrs=Attrs(IOSTANDARD="LVCMOS25")),
        ]

    HdlgenKC705Platform.__name__ = HdlgenKC705Platform.__qualname__ = "HdlgenKC705Platform"
    return HdlgenKC705Platform


BOARD = Board(
    name="kc705",
    description="Xilinx KC705 (Kintex-7 XC7K325T-2FFG900C)",
    part="xc7k325tffg900-2",
    family="xc7",
    speed_grade=2,
    capacities={"lut": 203_800, "ff": 407_600, "bram36": 445, "uram": 0, "dsp": 840},
    clock_resource="clk200",
    clock_mhz_in=200.0,
    default_clock_mhz=200.0,
    led_count=8,
    uart=True,
    xdc_extra=(
        "set_property CFGBVS VCCO [current_design]",
        "set_property CONFIG_VOLTAGE 2.5 [current_design]",
    ),
    _platform_factory=platform_class,
)
