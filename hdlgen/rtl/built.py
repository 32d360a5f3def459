"""What the RTL side of an engine kind hands the top-level assembler."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Lanes:
    """The elements a stream carries per beat: ``lanes`` of ``bits`` bits, lane 0 lowest."""
    lanes: int
    bits: int
    signed: bool = False


@dataclass(frozen=True)
class Options:
    """Build options the assembler passes to every engine: ``external`` memories (``.mem``
    files read by ``$readmemh``, else initial values in the Verilog), the MVAUs' ``accumulator``
    organisation, and ``sizes`` the cycle model derives (delay FIFO depths, by engine name)."""
    external: bool
    accumulator: str
    sizes: dict


@dataclass(frozen=True)
class Built:
    """An engine's component with its input ports (in the plan's order) and its output ports
    with what they carry."""
    component: object
    inputs: list
    outputs: list     # [(port, Lanes)]
