"""The accelerator's top-level ports, defined once: the RTL top level builds its signature from
them, the board wrapper drives them, and the constraints and benches find them by these names.

Ports are named as ``amaranth.back.verilog`` writes them: ``clk`` and active-high ``rst`` of
the ``sync`` domain, and every interface member ``<interface>_<member>``.

- ``s_axis``: an AXI4-Stream sink of pixels, ``lanes`` bytes per beat (lane 0 in bits 7:0),
  in row-major order with the channel fastest; ``tlast`` marks an image's last beat (the core
  counts beats itself and ignores it).
- ``m_axis``: an AXI4-Stream source of one beat per image, the class index in ``tdata``;
  ``tlast`` is 1 on every beat.
- any further interfaces the plan's engines ask for (:meth:`EngineKind.interfaces`).
"""

from __future__ import annotations

from dataclasses import dataclass

CLOCK = "clk"
RESET = "rst"
INPUT = "s_axis"
OUTPUT = "m_axis"
OUTPUT_BYTES = 1


@dataclass(frozen=True)
class Port:
    name: str
    direction: str       # "in" or "out", as seen by the core
    width: int


@dataclass(frozen=True)
class Interface:
    """A group of ports, ``<name>_<member>`` each; ``role`` says what it is (e.g. "axis-sink")."""
    name: str
    role: str
    members: tuple       # (member, direction, width)

    @property
    def ports(self) -> tuple:
        return tuple(Port(f"{self.name}_{m}", d, w) for m, d, w in self.members)


def axis(name: str, sink: bool, width: int) -> Interface:
    """An AXI4-Stream interface: a sink (the core receives) or a source."""
    into, back = ("in", "out") if sink else ("out", "in")
    return Interface(name, "axis-sink" if sink else "axis-source",
                     (("tdata", into, width), ("tvalid", into, 1), ("tready", back, 1), ("tlast", into, 1)))


def core_interfaces(in_lanes: int, extra: tuple = ()) -> tuple:
    """The core's interfaces for ``in_lanes`` input bytes per beat, plus ``extra`` (those its
    engines ask for)."""
    if in_lanes < 1:
        raise ValueError(f"the input stream needs at least one lane, not {in_lanes}")
    names = [INPUT, OUTPUT] + [i.name for i in extra]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ValueError(f"top-level interfaces {', '.join(clash)} are named twice")
    return (axis(INPUT, True, 8 * in_lanes), axis(OUTPUT, False, 8 * OUTPUT_BYTES)) + tuple(extra)


def core_ports(interfaces: tuple) -> tuple:
    """Every port of ``interfaces`` (without ``clk`` and ``rst``), in order."""
    return tuple(p for i in interfaces for p in i.ports)
