"""Boards hdlgen can build for, with their FPGA part and resource capacities.

``boards.get("kc705")`` returns a :class:`Board`; ``boards.names()`` lists the known names.
A board's :meth:`Board.platform` gives a fresh Amaranth platform for pin constraints and
bitstream wrappers; everything else on a board is plain data that loads without Amaranth.
"""

from dataclasses import dataclass, field
from types import MappingProxyType

from hdlgen.errors import HdlgenError

__all__ = ["Board", "get", "names", "RESOURCE_KINDS"]

RESOURCE_KINDS = ("lut", "ff", "bram36", "uram", "dsp")
"""Resource kinds a board states a capacity for, in report order."""


@dataclass(frozen=True)
class Board:
    """One FPGA board.

    ``family`` is the Yosys ``synth_xilinx -family`` name (``xc7`` or ``xcup``).
    ``capacities`` maps each of :data:`RESOURCE_KINDS` to the device's total count
    (``bram36`` counts 36 Kb block RAMs; two 18 Kb halves make one).
    ``clock_resource`` / ``clock_mhz_in`` name the oscillator the board wrapper uses, and
    ``default_clock_mhz`` is the accelerator clock a build uses unless told otherwise.
    ``led_count`` is how many user LEDs the platform offers; ``uart`` says whether it has a
    USB-UART resource named ``uart``. ``xdc_extra`` holds board-wide XDC lines (for
    example the configuration bank voltage) that every bitstream build adds.
    """

    name: str
    description: str
    part: str
    family: str
    speed_grade: int
    capacities: "MappingProxyType[str, int]"
    clock_resource: str
    clock_mhz_in: float
    default_clock_mhz: float
    led_count: int
    uart: bool
    xdc_extra: tuple = ()
    _platform_factory: object = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        missing = [kind for kind in RESOURCE_KINDS if kind not in self.capacities]
        if missing:
            raise ValueError(f"board {self.name!r} lacks capacities for {missing}")
        object.__setattr__(self, "capacities", MappingProxyType(dict(self.capacities)))

    def __hash__(self):
        return hash((self.name, self.part))

    def platform(self):
        """A new Amaranth ``XilinxPlatform`` instance for this board (Vivado toolchain)."""
        return self._platform_factory()()

    def to_json(self):
        """Plain-data description (for reports)."""
        return {
            "name": self.name,
            "description": self.description,
            "part": self.part,
            "family": self.family,
            "capacities": dict(self.capacities),
            "clock_resource": self.clock_resource,
            "clock_mhz_in": self.clock_mhz_in,
            "default_clock_mhz": self.default_clock_mhz,
        }


def _registry():
    from . import kc705, zcu104
    return {board.name: board for board in (kc705.BOARD, zcu104.BOARD)}


def names():
    """Names of the known boards, sorted."""
    return sorted(_registry())


def get(name):
    """The :class:`Board` called ``name`` (case-insensitive); unknown names are an
    :class:`~hdlgen.errors.HdlgenError` that lists the known ones."""
    if not isinstance(name, str):
        raise HdlgenError(f"board name must be a string, not {name!r}")
    registry = _registry()
    board = registry.get(name.strip().lower())
    if board is None:
        raise HdlgenError(f"unknown board {name!r}; known boards: {', '.join(sorted(registry))}")
    return board
