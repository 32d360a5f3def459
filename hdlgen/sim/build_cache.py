"""Build bookkeeping shared by the cocotb and compiled-harness builds.

A build folder holds a stamp (``hdlgen_build.json``) with a hash of everything the build was
made from (source contents, top, options, tool versions): :func:`stamped` tells whether a
build can be reused. Verilator's runtime library, the larger part of a small design's compile
time, is compiled once per machine, tool set and option set and kept in ``~/.cache/hdlgen``
(or ``$HDLGEN_CACHE_DIR``): :func:`restore_runtime` copies it into a fresh build folder
between verilating and ``make``, :func:`store_runtime` keeps it after the first build.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from hdlgen.errors import HdlgenError
from hdlgen.sim.tools import ensure_verilator_on_path

__all__ = [
    "check_sources",
    "clear_stamp",
    "restore_runtime",
    "runtime_cache_dir",
    "source_digest",
    "stamped",
    "store_runtime",
    "tool_versions",
    "write_stamp",
]

_STAMP_NAME = "hdlgen_build.json"


def check_sources(sources: Sequence[os.PathLike[str] | str]) -> list[Path]:
    """Absolute paths of *sources*; a missing file or one that is not Verilog is a user error."""
    paths = [Path(s).resolve() for s in sources]
    if not paths:
        raise HdlgenError("no Verilog sources to build")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise HdlgenError(f"Verilog source not found: {', '.join(missing)}")
    odd = [p.name for p in paths if p.suffix not in (".v", ".sv", ".vh", ".svh", ".vlt")]
    if odd:
        raise HdlgenError(
            f"not a Verilog source (.v, .sv, .vh, .svh) or Verilator control file (.vlt): "
            f"{', '.join(odd)}"
        )
    return paths


def tool_versions() -> dict[str, str]:
    import cocotb

    verilator = subprocess.run(
        ["verilator", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    cxx = os.environ.get("CXX", "c++")
    try:
        cxx_version = subprocess.run(
            [cxx, "--version"], capture_output=True, text=True, check=False
        ).stdout.splitlines()[:1]
    except OSError:
        cxx_version = []
    return {
        "verilator": verilator,
        "cocotb": cocotb.__version__,
        "cxx": " ".join(cxx_version),
        "cxxflags": os.environ.get("CXXFLAGS", ""),
        "cppflags": os.environ.get("CPPFLAGS", ""),
    }


def runtime_cache_dir(versions: Mapping[str, str], args: Sequence[str], waves: bool) -> Path | None:
    """Folder for Verilator's runtime-library objects built with these tools and flags."""
    root = os.environ.get("HDLGEN_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "hdlgen"
    key = hashlib.sha256(
        json.dumps(
            {
                "versions": dict(versions),
                "args": list(args),
                "waves": waves,
                "root": str(ensure_verilator_on_path().parent),
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    return base / "verilator-runtime" / key


def _global_objects(build_dir: Path) -> list[str]:
    """Names of the runtime-library objects that Verilator's makefile will compile."""
    classes = build_dir / "Vtop_classes.mk"
    names: list[str] = []
    try:
        lines = classes.read_text().splitlines()
    except OSError:
        return names
    collecting = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(("VM_GLOBAL_FAST +=", "VM_GLOBAL_SLOW +=")):
            collecting = True
            continue
        if collecting:
            if not stripped:
                collecting = False
                continue
            name = stripped.rstrip("\\").strip()
            if name:
                names.append(name)
            if not stripped.endswith("\\"):
                collecting = False
    return names


def restore_runtime(build_dir: Path, cache: Path | None) -> None:
    """Copy cached runtime objects into *build_dir*, newer than the makefiles Verilator wrote."""
    if cache is None or not cache.is_dir():
        return
    for name in _global_objects(build_dir):
        obj, dep = cache / f"{name}.o", cache / f"{name}.d"
        if not (obj.is_file() and dep.is_file()):
            return
    for name in _global_objects(build_dir):
        for suffix in (".o", ".d"):
            target = build_dir / f"{name}{suffix}"
            shutil.copyfile(cache / f"{name}{suffix}", target)
            os.utime(target)


def store_runtime(build_dir: Path, cache: Path | None) -> None:
    if cache is None or cache.is_dir():
        return
    names = _global_objects(build_dir)
    if not names or not all((build_dir / f"{n}.o").is_file() for n in names):
        return
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache.parent))
        for name in names:
            for suffix in (".o", ".d"):
                src = build_dir / f"{name}{suffix}"
                if src.is_file():
                    shutil.copyfile(src, tmp / src.name)
        try:
            tmp.rename(cache)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError:
        pass



def source_digest(
    sources: Sequence[Path],
    top: str,
    args: Sequence[str],
    parameters: Mapping[str, object],
    defines: Mapping[str, object],
    waves: bool,
    versions: Mapping[str, str],
) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(
        {
            "top": top,
            "args": list(args),
            "parameters": {k: str(v) for k, v in parameters.items()},
            "defines": {k: str(v) for k, v in defines.items()},
            "waves": waves,
            "versions": dict(versions),
            "names": [p.name for p in sources],
        },
        sort_keys=True,
    ).encode())
    for p in sources:
        h.update(b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()


def stamped(build_dir: Path, exe: Path, digest: str) -> dict | None:
    """The stamp of the build in *build_dir* when it was made from *digest* and *exe* exists."""
    stamp = build_dir / _STAMP_NAME
    if not (stamp.is_file() and exe.is_file()):
        return None
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("digest") == digest else None


def clear_stamp(build_dir: Path) -> None:
    (build_dir / _STAMP_NAME).unlink(missing_ok=True)


def write_stamp(build_dir: Path, data: Mapping[str, object]) -> None:
    (build_dir / _STAMP_NAME).write_text(json.dumps(dict(data)))
