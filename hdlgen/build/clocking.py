"""Board clocking and the on-board self-test wrapper.

:func:`compute_mmcm` picks MMCM settings (feedback multiply M, input divide D, output divide
O) that turn a board oscillator into the accelerator clock:
``f_out = f_in * M / (D * O)``, with ``f_vco = f_in * M / D`` inside the VCO range.
:class:`ClockedWrapper` puts that MMCM (MMCME2_BASE on 7-series, MMCME4_BASE on
UltraScale+) and a BUFG in front of an accelerator core, holds the core in reset until the
MMCM locks, streams a small ROM of test images into the core in a loop and shows the result
on the board's LEDs (and, where the board has one, its USB-UART).
"""

from dataclasses import dataclass
from fractions import Fraction
import math

from amaranth.hdl import (Array, C, Cat, ClockDomain, ClockSignal, Const, Elaboratable, Instance,
                          Module, Mux, ResetSignal, Shape, Signal)
from amaranth.lib import io, wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.memory import Memory

from ..engines.ports import CLOCK, INPUT, OUTPUT, RESET, core_interfaces, core_ports
from ..errors import HdlgenError

__all__ = ["MmcmLimits", "MmcmConfig", "mmcm_limits", "compute_mmcm", "ClockedWrapper",
           "pack_images", "CORE_PORTS"]


@dataclass(frozen=True)
class MmcmLimits:
    """Switching limits of one MMCM flavour at one speed grade (all frequencies in MHz).

    The multiply and output-0 divide step in eighths (fractional mode); an output divide
    below 2 must be 1. ``fout_mhz`` combines the MMCM output limit with the global clock
    buffer limit, whichever is lower.
    """

    primitive: str
    fin_mhz: tuple
    fpfd_mhz: tuple
    fvco_mhz: tuple
    fout_max_mhz: float
    mult: tuple
    divclk: tuple
    outdiv: tuple

    @property
    def fout_min_mhz(self):
        return self.fvco_mhz[0] / self.outdiv[1]


# Kintex-7 -2 (DS182): MMCM F_IN 10-933 MHz, F_PFD 10-500 MHz, F_VCO 600-1440 MHz,
# BUFG F_MAX 710 MHz; MMCME2: CLKFBOUT_MULT_F 2.000-64.000, DIVCLK_DIVIDE 1-106,
# CLKOUT0_DIVIDE_F 1.000-128.000.
# Zynq UltraScale+ -2 (DS925): MMCM F_IN 10-933 MHz, F_PFD 10-500 MHz, F_VCO 800-1600 MHz,
# MMCM and BUFGCE F_OUT max 775 MHz; MMCME4: CLKFBOUT_MULT_F 2.000-128.000,
# DIVCLK_DIVIDE 1-106, CLKOUT0_DIVIDE_F 1.000-128.000.
_LIMITS = {
    "xc7": MmcmLimits(
        primitive="MMCME2_BASE",
        fin_mhz=(10.0, 933.0), fpfd_mhz=(10.0, 500.0), fvco_mhz=(600.0, 1440.0),
        fout_max_mhz=710.0, mult=(2, 64), divclk=(1, 106), outdiv=(1, 128)),
    "xcup": MmcmLimits(
        primitive="MMCME4_BASE",
        fin_mhz=(10.0, 933.0), fpfd_mhz=(10.0, 500.0), fvco_mhz=(800.0, 1600.0),
        fout_max_mhz=775.0, mult=(2, 128), divclk=(1, 106), outdiv=(1, 128)),
}


def mmcm_limits(family, speed_grade=2):
    """MMCM limits for a Yosys family name (``xc7`` or ``xcup``); only speed grade -2."""
    if family not in _LIMITS:
        raise HdlgenError(f"no MMCM model for FPGA family {family!r}; known: "
                          f"{', '.join(sorted(_LIMITS))}")
    if abs(int(speed_grade)) != 2:
        raise HdlgenError(f"no MMCM model for speed grade -{abs(int(speed_grade))} "
                          f"(only -2 is modelled)")
    return _LIMITS[family]


@dataclass(frozen=True)
class MmcmConfig:
    """One MMCM setting. ``mult`` and ``outdiv`` are exact fractions (eighths)."""

    primitive: str
    input_mhz: Fraction
    requested_mhz: Fraction
    mult: Fraction
    divclk: int
    outdiv: Fraction

    @property
    def vco_mhz(self):
        return self.input_mhz * self.mult / self.divclk

    @property
    def output_mhz(self):
        return self.vco_mhz / self.outdiv

    @property
    def error_ppm(self):
        return float((self.output_mhz - self.requested_mhz) / self.requested_mhz * 1_000_000)

    @property
    def fractional(self):
        return self.mult.denominator != 1 or self.outdiv.denominator != 1

    def to_json(self):
        return {
            "primitive": self.primitive,
            "input_mhz": _round(self.input_mhz),
            "requested_mhz": _round(self.requested_mhz),
            "mult": float(self.mult),
            "divclk": self.divclk,
            "outdiv": float(self.outdiv),
            "vco_mhz": _round(self.vco_mhz),
            "output_mhz": _round(self.output_mhz),
            "error_ppm": round(self.error_ppm, 3),
        }


def _round(value, digits=6):
    return round(float(value), digits)


def _exact(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction)):
        raise HdlgenError(f"{what} must be a number of MHz, not {value!r}")
    if not math.isfinite(float(value)) or value <= 0:
        raise HdlgenError(f"{what} must be a positive number of MHz, not {value!r}")
    return Fraction(value).limit_denominator(1_000_000) if isinstance(value, float) \
        else Fraction(value)


def compute_mmcm(input_mhz, target_mhz, family, speed_grade=2, *, allow_fractional=True):
    """The MMCM setting whose output is closest to ``target_mhz``.

    Among equally close settings it prefers integer M and O, then the smallest D (highest
    phase-detector frequency), then the highest VCO frequency. A target outside the range
    the MMCM can produce is an :class:`~hdlgen.errors.HdlgenError` that gives the numbers.
    """
    limits = mmcm_limits(family, speed_grade)
    fin = _exact(input_mhz, "the board clock")
    target = _exact(target_mhz, "the requested clock")
    if not limits.fin_mhz[0] <= fin <= limits.fin_mhz[1]:
        raise HdlgenError(
            f"board clock {float(fin):g} MHz is outside the {limits.primitive} input range "
            f"{limits.fin_mhz[0]:g}-{limits.fin_mhz[1]:g} MHz")
    if not limits.fout_min_mhz <= target <= limits.fout_max_mhz:
        raise HdlgenError(
            f"cannot make a {float(target):g} MHz clock from the {float(fin):g} MHz board clock: "
            f"the {limits.primitive} ({family}, speed grade -2) output range is "
            f"{limits.fout_min_mhz:g}-{limits.fout_max_mhz:g} MHz")

    step = 8 if allow_fractional else 1
    vco_lo, vco_hi = Fraction(limits.fvco_mhz[0]), Fraction(limits.fvco_mhz[1])
    best_key, best = None, None
    for divclk in range(limits.divclk[0], limits.divclk[1] + 1):
        fpfd = fin / divclk
        if fpfd < limits.fpfd_mhz[0]:
            break
        if fpfd > limits.fpfd_mhz[1]:
            continue
        m_lo = max(limits.mult[0] * step, math.ceil(vco_lo / fpfd * step))
        m_hi = min(limits.mult[1] * step, math.floor(vco_hi / fpfd * step))
        for m_steps in range(m_lo, m_hi + 1):
            vco = fpfd * m_steps / step
            ideal = vco / target * step
            for o_steps in {math.floor(ideal), math.ceil(ideal)}:
                if o_steps < step:
                    o_steps = step
                if step != 1 and step < o_steps < 2 * step:
                    # a fractional output divide must be at least 2
                    candidates = (step, 2 * step)
                else:
                    candidates = (o_steps,)
                for o in candidates:
                    if o > limits.outdiv[1] * step:
                        continue
                    fout = vco * step / o
                    if fout > limits.fout_max_mhz:
                        continue
                    mult, outdiv = Fraction(m_steps, step), Fraction(o, step)
                    key = (abs(fout - target),
                           (mult.denominator != 1) + (outdiv.denominator != 1),
                           divclk, -vco, mult, outdiv)
                    if best_key is None or key < best_key:
                        best_key = key
                        best = MmcmConfig(limits.primitive, fin, target, mult, divclk, outdiv)
    if best is None:
        raise HdlgenError(
            f"no {limits.primitive} setting makes {float(target):g} MHz from "
            f"{float(fin):g} MHz (VCO {limits.fvco_mhz[0]:g}-{limits.fvco_mhz[1]:g} MHz)")
    return best


CORE_PORTS = {p.name: wiring.In if p.direction == "in" else wiring.Out for p in core_ports(core_interfaces(1))}
"""The flat AXI4-Stream ports an accelerator core has (:mod:`hdlgen.engines.ports`), with their
flow as seen by the core."""
S_DATA, S_VALID, S_READY, S_LAST = (f"{INPUT}_{m}" for m in ("tdata", "tvalid", "tready", "tlast"))
M_DATA, M_VALID, M_READY = (f"{OUTPUT}_{m}" for m in ("tdata", "tvalid", "tready"))


def _core_widths(core):
    signature = getattr(core, "signature", None)
    if not isinstance(signature, wiring.Signature):
        raise TypeError(f"core must be an amaranth wiring.Component, not {core!r}")
    widths = {}
    for port, flow in CORE_PORTS.items():
        if port not in signature.members:
            raise ValueError(f"core signature has no port {port!r}; it needs "
                             f"{', '.join(CORE_PORTS)}")
        member = signature.members[port]
        if not member.is_port or member.flow != flow:
            raise ValueError(f"core port {port!r} must be an {flow.name} port of the core")
        widths[port] = Shape.cast(member.shape).width
    extra = [i.name for i in getattr(core, "interfaces", ()) if i.name not in (INPUT, OUTPUT)]
    if extra:
        raise ValueError(f"the self-test wrapper does not drive the core's interfaces {', '.join(extra)}")
    if widths[S_DATA] % 8:
        raise ValueError(f"{S_DATA} is {widths[S_DATA]} bits wide; the self-test "
                         f"streams whole bytes")
    return widths


def pack_images(images, beat_bytes):
    """Stream words for ``images`` (each a sequence of uint8): byte ``k`` of a beat is bits
    ``8k+7:8k`` of the word, the last beat of an image is zero-padded. Returns
    ``(words, beats_per_image)``; every image must have the same length."""
    images = [bytes(bytearray(image)) for image in images]
    if not images:
        raise ValueError("the self-test needs at least one image")
    length = len(images[0])
    if length == 0 or any(len(image) != length for image in images):
        raise ValueError(f"self-test images must be non-empty and of equal length, got "
                         f"{sorted({len(image) for image in images})}")
    beats = -(-length // beat_bytes)
    words = []
    for image in images:
        padded = image + bytes(beats * beat_bytes - length)
        for beat in range(beats):
            chunk = padded[beat * beat_bytes:(beat + 1) * beat_bytes]
            words.append(int.from_bytes(chunk, "little"))
    return words, beats


class _UartTx(Elaboratable):
    """8N1 transmitter: ``data``/``start`` in, ``busy`` out, ``tx`` idles high."""

    def __init__(self, divisor):
        self.divisor = max(1, int(divisor))
        self.data = Signal(8)
        self.start = Signal()
        self.busy = Signal()
        self.tx = Signal(init=1)

    def elaborate(self, platform):
        m = Module()
        shift = Signal(10, init=0x3FF)
        bits = Signal(range(11))
        count = Signal(range(self.divisor))
        m.d.comb += [self.busy.eq(bits != 0), self.tx.eq(shift[0])]
        with m.If(bits == 0):
            with m.If(self.start):
                m.d.sync += [shift.eq(Cat(Const(0, 1), self.data, Const(1, 1))),
                             bits.eq(10), count.eq(self.divisor - 1)]
        with m.Elif(count == 0):
            m.d.sync += [shift.eq((shift >> 1) | (1 << 9)), bits.eq(bits - 1),
                         count.eq(self.divisor - 1)]
        with m.Else():
            m.d.sync += count.eq(count - 1)
        return m


class ClockedWrapper(Elaboratable):
    """Board top for a self-testing bitstream.

    ``core`` is a ``wiring.Component`` with the flat ports in :data:`CORE_PORTS` in the
    ``sync`` domain. ``images`` (sequences of uint8, all the same length) and ``labels``
    (their expected classes) go into a ROM that is streamed into the core forever:
    ``s_axis_tdata`` carries ``width/8`` bytes per beat, byte 0 in the low bits, the last beat
    of each image zero-padded and marked with ``s_axis_tlast``. Every beat the core hands out
    on ``m_axis`` (``m_axis_tready`` is always 1) is one result, compared in order with the
    next expected label (the whole ``m_axis_tdata`` word against the label).

    LEDs: 0 heartbeat (about 1 Hz), 1 pass (at least one full round of images checked and
    no mismatch yet), 2 fail (sticky: some result did not match), 3 activity (lit while
    results keep arriving, dark if the core stalls). With a UART, the wrapper prints ``P``
    (no mismatch so far) or ``F`` and a newline at ``uart_baud`` after a finished round of
    images, whenever the line is free.

    With ``use_mmcm=True`` (bitstreams) the wrapper requests the board's clock resource,
    drives it through an MMCM (:func:`compute_mmcm`) and a BUFG into the ``sync`` domain,
    and keeps ``sync`` in reset until the MMCM locks. With ``use_mmcm=False`` it adds no
    clocking and uses whatever ``sync`` domain the caller provides (Amaranth's simulator),
    and without a platform the LEDs and UART line are only the signals ``leds`` and
    ``uart_tx``.

    ``core_module`` names an external Verilog module to instantiate instead of elaborating
    ``core`` (ports ``clk``, ``rst`` and the :data:`CORE_PORTS`, as ``amaranth.back.verilog``
    writes them); ``core`` then only supplies the port widths. This lets a board top reuse the
    one Verilog file of the core that simulation and synthesis use.
    """

    LED_COUNT = 4

    def __init__(self, core, board, clock_mhz=None, *, images, labels, use_mmcm=True,
                 core_module=None, uart_baud=115200, heartbeat_log2=None):
        try:
            self._setup(core, board, clock_mhz, images, labels, use_mmcm, core_module,
                        uart_baud, heartbeat_log2)
        except Exception:
            self._MustUse__silence = True
            raise

    def _setup(self, core, board, clock_mhz, images, labels, use_mmcm, core_module, uart_baud,
               heartbeat_log2):
        self.core = core
        self.board = board
        self.widths = _core_widths(core)
        self.beat_bytes = self.widths[S_DATA] // 8
        self.clock_mhz = board.default_clock_mhz if clock_mhz is None else clock_mhz
        self.use_mmcm = bool(use_mmcm)
        self.core_module = core_module
        if core_module is not None:
            if not isinstance(core_module, str) or not core_module.isidentifier():
                raise ValueError(f"core_module must be a Verilog module name, "
                                 f"not {core_module!r}")
            core._MustUse__silence = True
        self.mmcm = compute_mmcm(board.clock_mhz_in, self.clock_mhz, board.family,
                                 board.speed_grade) if self.use_mmcm else None
        labels = [int(label) for label in labels]
        self.words, self.beats_per_image = pack_images(images, self.beat_bytes)
        if len(labels) != len(self.words) // self.beats_per_image:
            raise ValueError(f"{len(self.words) // self.beats_per_image} self-test images but "
                             f"{len(labels)} labels")
        out_width = self.widths[M_DATA]
        if any(not 0 <= label < 2 ** out_width for label in labels):
            raise ValueError(f"labels {labels} do not fit the {out_width}-bit m_axis_tdata")
        self.labels = labels
        clock_hz = float(self.mmcm.output_mhz if self.mmcm else self.clock_mhz) * 1e6
        self.clock_hz = clock_hz
        self.heartbeat_log2 = heartbeat_log2 if heartbeat_log2 is not None \
            else max(1, int(math.log2(clock_hz)) - 1)
        self.uart_baud = uart_baud
        self.uart_divisor = max(1, round(clock_hz / uart_baud)) if uart_baud else None

        self.leds = Signal(self.LED_COUNT)
        self.uart_tx = Signal(init=1)
        self.results = Signal(32)
        self.mismatches = Signal(32)
        self.rounds = Signal(32)
        self.fail = Signal()
        self.passing = Signal()

    def _clocking(self, m, platform):
        mmcm = self.mmcm
        clk_port = platform.request(self.board.clock_resource, 0, dir="-")
        m.submodules.clk_in_buf = clk_buf = io.Buffer("i", clk_port)
        feedback, clk_out, locked = Signal(), Signal(), Signal()
        m.submodules.mmcm = Instance(
            mmcm.primitive,
            p_BANDWIDTH="OPTIMIZED",
            p_CLKIN1_PERIOD=round(1000.0 / float(mmcm.input_mhz), 3),
            p_CLKFBOUT_MULT_F=float(mmcm.mult),
            p_DIVCLK_DIVIDE=mmcm.divclk,
            p_CLKOUT0_DIVIDE_F=float(mmcm.outdiv),
            p_STARTUP_WAIT="FALSE",
            i_CLKIN1=clk_buf.i,
            i_CLKFBIN=feedback,
            o_CLKFBOUT=feedback,
            o_CLKOUT0=clk_out,
            o_LOCKED=locked,
            i_RST=C(0, 1),
            i_PWRDWN=C(0, 1),
        )
        m.domains.sync = ClockDomain("sync")
        m.submodules.bufg = Instance("BUFG", i_I=clk_out, o_O=ClockSignal("sync"))
        m.submodules.reset_sync = ResetSynchronizer(~locked, domain="sync")

    def _core(self, m):
        if self.core_module is None:
            m.submodules.core = self.core
            return {port: getattr(self.core, port) for port in CORE_PORTS}
        ports = {port: Signal(width, name=f"core_{port}") for port, width in self.widths.items()}
        kwargs = {f"i_{CLOCK}": ClockSignal("sync"), f"i_{RESET}": ResetSignal("sync")}
        for port, flow in CORE_PORTS.items():
            kwargs[("i_" if flow is wiring.In else "o_") + port] = ports[port]
        m.submodules.core = Instance(self.core_module, **kwargs)
        return ports

    def elaborate(self, platform):
        m = Module()
        if self.use_mmcm:
            if platform is None:
                raise ValueError("ClockedWrapper(use_mmcm=True) needs the board's platform; "
                                 "use use_mmcm=False to simulate it")
            self._clocking(m, platform)
        core = self._core(m)

        # image ROM streamed into the core
        depth = len(self.words)
        m.submodules.images = images = Memory(
            shape=self.widths[S_DATA], depth=depth, init=self.words)
        read = images.read_port()
        current = Signal(range(depth))
        beat = Signal(range(self.beats_per_image))
        data_valid = Signal()
        fire = Signal()
        next_addr = Signal(range(depth))
        m.d.comb += [
            fire.eq(core[S_VALID] & core[S_READY]),
            next_addr.eq(Mux(fire, Mux(current == depth - 1, 0, current + 1), current)),
            read.addr.eq(next_addr),
            core[S_DATA].eq(read.data),
            core[S_VALID].eq(data_valid),
            core[S_LAST].eq(beat == self.beats_per_image - 1),
        ]
        m.d.sync += [current.eq(next_addr), data_valid.eq(1)]
        with m.If(fire):
            m.d.sync += beat.eq(Mux(beat == self.beats_per_image - 1, 0, beat + 1))

        # results checked against the labels, in order
        count = len(self.labels)
        labels = Array(Const(label, self.widths[M_DATA]) for label in self.labels)
        index = Signal(range(count))
        seen_round = Signal()
        activity = Signal(max(4, self.heartbeat_log2 - 2))
        round_done = Signal()
        mismatch_now = Signal()
        m.d.comb += [core[M_READY].eq(1),
                     mismatch_now.eq(core[M_VALID]
                                     & (core[M_DATA] != labels[index]))]
        with m.If(activity != 0):
            m.d.sync += activity.eq(activity - 1)
        with m.If(core[M_VALID]):
            m.d.sync += [self.results.eq(self.results + 1), activity.eq(-1),
                         index.eq(Mux(index == count - 1, 0, index + 1))]
            with m.If(mismatch_now):
                m.d.sync += [self.fail.eq(1), self.mismatches.eq(self.mismatches + 1)]
            with m.If(index == count - 1):
                m.d.comb += round_done.eq(1)
                m.d.sync += [seen_round.eq(1), self.rounds.eq(self.rounds + 1)]
        m.d.comb += self.passing.eq(seen_round & ~self.fail)

        heartbeat = Signal(self.heartbeat_log2 + 1)
        m.d.sync += heartbeat.eq(heartbeat + 1)
        m.d.comb += self.leds.eq(Cat(heartbeat[-1], self.passing, self.fail, activity != 0))

        if self.uart_divisor is not None:
            self._uart(m, round_done, mismatch_now)

        if platform is not None:
            for index_led in range(min(self.LED_COUNT, self.board.led_count)):
                led = platform.request("led", index_led, dir="-")
                m.submodules[f"led_buf{index_led}"] = buf = io.Buffer("o", led)
                m.d.comb += buf.o.eq(self.leds[index_led])
            if self.board.uart and self.uart_divisor is not None:
                uart = platform.request("uart", 0, dir={"tx": "-", "rx": "-"})
                m.submodules.uart_buf = buf = io.Buffer("o", uart.tx)
                m.d.comb += buf.o.eq(self.uart_tx)
        return m

    def _uart(self, m, round_done, mismatch_now):
        m.submodules.uart = uart = _UartTx(self.uart_divisor)
        pending = Signal()
        newline = Signal()
        verdict = Signal(8)
        with m.If(round_done & ~pending & ~newline):
            m.d.sync += [pending.eq(1),
                         verdict.eq(Mux(self.fail | mismatch_now, ord("F"), ord("P")))]
        with m.If(~uart.busy):
            with m.If(pending):
                m.d.comb += [uart.data.eq(verdict), uart.start.eq(1)]
                m.d.sync += [pending.eq(0), newline.eq(1)]
            with m.Elif(newline):
                m.d.comb += [uart.data.eq(ord("\n")), uart.start.eq(1)]
                m.d.sync += newline.eq(0)
        m.d.comb += self.uart_tx.eq(uart.tx)
