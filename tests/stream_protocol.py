"""The stream contract, checked in Amaranth's simulator: once ``valid`` is high it stays high,
with the same payload, until the beat is taken (``valid`` and ``ready`` at a clock edge).

:func:`stream_ports` finds every stream of a component (its ``amaranth.lib.stream`` members,
inputs and outputs, and its AXI4-Stream top-level interfaces); :func:`attach` adds one
checker process per stream to a simulator. A violation raises AssertionError out of
``Simulator.run`` naming the stream and the clock cycle.
"""

from amaranth.lib import data, stream, wiring


def stream_ports(dut) -> list:
    """(name, valid, ready, payload) of every stream of ``dut``."""
    found = []
    for name, member in dut.signature.members.items():
        if not member.is_signature:
            continue
        sig = member.signature
        if isinstance(sig, wiring.FlippedSignature):
            sig = sig.flip()
        if isinstance(sig, stream.Signature):
            port = getattr(dut, name)
            payload = port.payload.as_value() if isinstance(port.payload, data.View) else port.payload
            found.append((name, port.valid, port.ready, payload))
    for interface in getattr(dut, "interfaces", ()):
        if interface.role.startswith("axis"):
            get = lambda m: getattr(dut, f"{interface.name}_{m}")  # noqa: E731
            found.append((interface.name, get("tvalid"), get("tready"), get("tdata")))
    return found


def attach(sim, dut) -> list:
    """Add a protocol checker for every stream of ``dut`` to ``sim``; returns their names."""
    ports = stream_ports(dut)
    for name, valid, ready, payload in ports:
        sim.add_process(_checker(name, valid, ready, payload))
    return [p[0] for p in ports]


def _checker(name, valid, ready, payload):
    async def check(ctx):
        held, cycle = None, 0   # the payload offered and not yet taken
        async for _, reset, v, r, p in ctx.tick().sample(valid, ready, payload):
            if reset:
                held = None
            elif held is not None and not v:
                raise AssertionError(f"stream {name}: valid dropped at cycle {cycle} before its beat was taken")
            elif held is not None and p != held:
                raise AssertionError(f"stream {name}: payload changed from {held} to {p} at cycle {cycle} "
                                     f"while valid waited for ready")
            if not reset:
                held = p if v and not r else None
            cycle += 1
    return check
