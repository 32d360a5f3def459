"""Board registry, capacities, platforms, and MMCM settings for the board clocks."""

import dataclasses
from fractions import Fraction
import math

import pytest

import boards
from hdlgen.build.clocking import compute_mmcm, mmcm_limits
from hdlgen.errors import HdlgenError


def test_registry_names():
    assert boards.names() == ["kc705", "zcu104"]


@pytest.mark.parametrize("name", ["kc705", "KC705", " zcu104 "])
def test_get_is_case_insensitive(name):
    assert boards.get(name).name == name.strip().lower()


def test_unknown_board_lists_known_ones():
    with pytest.raises(HdlgenError) as error:
        boards.get("arty")
    message = str(error.value)
    assert "arty" in message and "kc705" in message and "zcu104" in message
    assert "\n" not in message


def test_non_string_name():
    with pytest.raises(HdlgenError):
        boards.get(705)


def test_kc705_data():
    board = boards.get("kc705")
    assert board.part == "xc7k325tffg900-2"
    assert board.family == "xc7"
    assert dict(board.capacities) == {"lut": 203_800, "ff": 407_600, "bram36": 445,
                                      "uram": 0, "dsp": 840}
    assert board.default_clock_mhz == 200
    assert board.clock_mhz_in == 200


def test_zcu104_data():
    board = boards.get("zcu104")
    assert board.part == "xczu7ev-ffvc1156-2-e"
    assert board.family == "xcup"
    assert dict(board.capacities) == {"lut": 230_400, "ff": 460_800, "bram36": 312,
                                      "uram": 96, "dsp": 1_728}
    assert board.default_clock_mhz == 200
    assert board.clock_mhz_in == 125


def test_board_is_frozen_and_hashable():
    board = boards.get("kc705")
    with pytest.raises(dataclasses.FrozenInstanceError):
        board.part = "xc7a35t"
    with pytest.raises(TypeError):
        board.capacities["lut"] = 1
    assert {board: 1}[boards.get("kc705")] == 1
    assert board.to_json()["capacities"]["bram36"] == 445


def _resource(platform, name, number=0):
    return platform.lookup(name, number)


@pytest.mark.parametrize("name", boards.names())
def test_platform_matches_board(name):
    board = boards.get(name)
    platform = board.platform()
    assert platform._part == board.part
    assert platform.default_clk == board.clock_resource
    clock = _resource(platform, board.clock_resource)
    assert clock.clock.frequency == board.clock_mhz_in * 1e6
    for index in range(board.led_count):
        _resource(platform, "led", index)
    _resource(platform, "uart")
    assert board.platform() is not platform


def test_kc705_pins():
    platform = boards.get("kc705").platform()
    clock = _resource(platform, "clk200")
    assert clock.ios[0].p.names == ["AD12"] and clock.ios[0].n.names == ["AD11"]
    assert clock.attrs["IOSTANDARD"] == "LVDS"
    assert [_resource(platform, "led", i).ios[0].names[0] for i in range(8)] == \
        ["AB8", "AA8", "AC9", "AB9", "AE26", "G19", "E18", "F16"]
    assert _resource(platform, "led", 0).attrs["IOSTANDARD"] == "LVCMOS15"
    assert _resource(platform, "led", 5).attrs["IOSTANDARD"] == "LVCMOS25"
    uart = _resource(platform, "uart")
    pins = {sub.name: (sub.ios[0].names[0], sub.attrs) for sub in uart.ios}
    assert pins["rx"][0] == "M19" and pins["tx"][0] == "K24"
    assert uart.attrs["IOSTANDARD"] == "LVCMOS25"
    # the upstream Si570 user clock stays available
    assert _resource(platform, "clk156").ios[0].p.names == ["K28"]


def test_zcu104_pins():
    platform = boards.get("zcu104").platform()
    clock = _resource(platform, "clk125")
    assert clock.ios[0].p.names == ["F23"] and clock.ios[0].n.names == ["E23"]
    assert clock.attrs["IOSTANDARD"] == "LVDS"
    assert [_resource(platform, "led", i).ios[0].names[0] for i in range(4)] == \
        ["D5", "D6", "A5", "B5"]
    assert _resource(platform, "led", 3).attrs["IOSTANDARD"] == "LVCMOS33"
    uart = _resource(platform, "uart")
    pins = {sub.name: sub.ios[0].names[0] for sub in uart.ios}
    assert pins == {"rx": "A20", "tx": "C19"}
    assert uart.attrs["IOSTANDARD"] == "LVCMOS18"


# MMCM settings ------------------------------------------------------------------------------

@pytest.mark.parametrize("family,fin,target,expect", [
    ("xc7", 200, 200, (7, 1, 7)),
    ("xc7", 200, 100, (7, 1, 14)),
    ("xc7", 200, 250, (5, 1, 4)),
    ("xc7", 156.25, 200, (32, 5, 5)),
    ("xcup", 125, 200, (8, 1, 5)),
    ("xcup", 125, 300, (12, 1, 5)),
    ("xcup", 125, 100, (12, 1, 15)),
])
def test_mmcm_exact(family, fin, target, expect):
    config = compute_mmcm(fin, target, family)
    assert (config.mult, config.divclk, config.outdiv) == tuple(Fraction(x) for x in expect)
    assert config.output_mhz == target
    assert config.error_ppm == 0
    assert not config.fractional
    assert config.primitive == {"xc7": "MMCME2_BASE", "xcup": "MMCME4_BASE"}[family]


def _within_limits(config, family):
    limits = mmcm_limits(family)
    assert limits.fvco_mhz[0] <= config.vco_mhz <= limits.fvco_mhz[1]
    pfd = config.input_mhz / config.divclk
    assert limits.fpfd_mhz[0] <= pfd <= limits.fpfd_mhz[1]
    assert limits.mult[0] <= config.mult <= limits.mult[1]
    assert (config.mult * 8).denominator == 1 and (config.outdiv * 8).denominator == 1
    assert config.outdiv == 1 or 2 <= config.outdiv <= limits.outdiv[1]
    assert config.output_mhz <= limits.fout_max_mhz


def _best_integer_error(fin, target, family):
    """Brute force over every integer M, D, O (floats; independent of compute_mmcm)."""
    limits = mmcm_limits(family)
    best = math.inf
    for d in range(1, 107):
        if not limits.fpfd_mhz[0] <= fin / d <= limits.fpfd_mhz[1]:
            continue
        for m in range(limits.mult[0], limits.mult[1] + 1):
            vco = fin * m / d
            if not limits.fvco_mhz[0] <= vco <= limits.fvco_mhz[1]:
                continue
            for o in range(1, limits.outdiv[1] + 1):
                if vco / o <= limits.fout_max_mhz:
                    best = min(best, abs(vco / o - target))
    return best


@pytest.mark.parametrize("family,fin,target", [
    ("xc7", 200, 333), ("xc7", 200, 187.3), ("xc7", 156.25, 166.66),
    ("xcup", 125, 333), ("xcup", 125, 271.9), ("xcup", 125, 6.3),
])
def test_mmcm_closest(family, fin, target):
    config = compute_mmcm(fin, target, family)
    _within_limits(config, family)
    best = _best_integer_error(fin, target, family)
    assert abs(float(config.output_mhz) - target) <= best + 1e-9
    integer_only = compute_mmcm(fin, target, family, allow_fractional=False)
    assert not integer_only.fractional
    _within_limits(integer_only, family)
    assert math.isclose(abs(float(integer_only.output_mhz) - target), best, abs_tol=1e-9)


def test_mmcm_fractional_output_divide():
    config = compute_mmcm(156.25, 300, "xc7")
    assert config.output_mhz == 300 and config.fractional
    _within_limits(config, "xc7")


def test_mmcm_json_is_plain():
    data = compute_mmcm(125, 200, "xcup").to_json()
    assert data == {"primitive": "MMCME4_BASE", "input_mhz": 125.0, "requested_mhz": 200.0,
                    "mult": 8.0, "divclk": 1, "outdiv": 5.0, "vco_mhz": 1000.0,
                    "output_mhz": 200.0, "error_ppm": 0.0}


@pytest.mark.parametrize("family,target", [("xc7", 1000), ("xc7", 711), ("xc7", 4),
                                           ("xcup", 800), ("xcup", 6)])
def test_mmcm_unreachable(family, target):
    with pytest.raises(HdlgenError) as error:
        compute_mmcm(200 if family == "xc7" else 125, target, family)
    message = str(error.value)
    assert f"{target:g} MHz" in message and "MHz" in message and "range" in message


@pytest.mark.parametrize("value", [0, -5, float("nan"), "200", None, True])
def test_mmcm_bad_request(value):
    with pytest.raises(HdlgenError):
        compute_mmcm(200, value, "xc7")


def test_mmcm_bad_input_clock_and_family():
    with pytest.raises(HdlgenError, match="input range"):
        compute_mmcm(5, 100, "xc7")
    with pytest.raises(HdlgenError, match="xc6"):
        compute_mmcm(100, 100, "xc6")
    with pytest.raises(HdlgenError, match="speed grade"):
        compute_mmcm(100, 100, "xc7", speed_grade=1)


def test_mmcm_limit_numbers():
    xc7, xcup = mmcm_limits("xc7"), mmcm_limits("xcup")
    assert xc7.fvco_mhz == (600.0, 1440.0) and xcup.fvco_mhz == (800.0, 1600.0)
    assert math.isclose(xc7.fout_min_mhz, 600 / 128)
    assert xc7.mult == (2, 64) and xcup.mult == (2, 128)
