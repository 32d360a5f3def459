"""Bookkeeping of a two-bank (ping-pong) buffer: one bank is written while the other is read.

The writer fills bank ``wbank`` while ``can_write``; strobing ``write_done`` marks it full and
moves the writer to the other bank. The reader works on bank ``rbank`` while ``can_read``;
strobing ``read_done`` frees it and moves the reader on. Both strobes take effect at the next
clock edge, so a bank filled in one cycle is readable in the next.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class PingPong(wiring.Component):
    write_done: In(1)
    read_done: In(1)
    wbank: Out(1)
    rbank: Out(1)
    can_write: Out(1)
    can_read: Out(1)

    def elaborate(self, platform):
        m = Module()
        full = Signal(2)
        set_full, clear_full = Signal(2), Signal(2)
        m.d.comb += [self.can_write.eq(~full.bit_select(self.wbank, 1)),
                     self.can_read.eq(full.bit_select(self.rbank, 1))]
        with m.If(self.write_done):
            m.d.sync += self.wbank.eq(~self.wbank)
            m.d.comb += set_full.eq(1 << self.wbank)
        with m.If(self.read_done):
            m.d.sync += self.rbank.eq(~self.rbank)
            m.d.comb += clear_full.eq(1 << self.rbank)
        m.d.sync += full.eq((full | set_full) & ~clear_full)
        return m
