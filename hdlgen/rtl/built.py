"""Typed streams between engines, and what the RTL side of an engine kind hands the top-level
assembler.

A stream between engines carries ``lanes`` elements per beat as an
``amaranth.lib.data.ArrayLayout`` payload (lane 0 in the lowest bits); the element shape is
signed where the values are (:func:`element`), so a reader takes the elements' type from the
stream itself and ``wiring.connect`` refuses to join streams of different element types. In
the emitted Verilog each lane of a typed port also gets a named wire (the escaped name
``o__payload[3]``), an alias of its bits without logic of its own.
"""

from dataclasses import dataclass

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data, stream


def element(bits: int, is_signed: bool) -> Shape:
    return signed(bits) if is_signed else unsigned(bits)


def lanes_signature(elem, lanes: int) -> stream.Signature:
    """A stream of ``lanes`` elements of shape ``elem`` (an int is an unsigned width) per beat."""
    return stream.Signature(data.ArrayLayout(Shape.cast(elem), lanes))


def layout_of(port) -> data.ArrayLayout:
    """The payload layout of a typed stream interface (either flow)."""
    return port.signature.members["payload"].shape


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
    """An engine's component with its input ports (in the plan's order) and its output ports."""
    component: object
    inputs: list
    outputs: list
