"""Build output folders that are never left mixed or half written.

A build writes into a fresh temporary folder beside ``--out``; only when every step succeeded
is it put in place, with the completion marker written last. Into a folder of an earlier
hdlgen build it replaces that build whole (no file of the earlier model is left behind); into
a folder that holds other files (allowed with ``--force``) it replaces only the entries a build
writes, never the user's other files. On any failure the temporary folder is removed and
``--out`` is as it was.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

from .. import __version__
from ..errors import HdlgenError

MARKER = ".hdlgen-build"


def check_out_dir(out: Path, force: bool) -> None:
    """Refuse an output path that is not a folder, or a folder with files hdlgen did not write
    (unless ``force``). Writes nothing."""
    if out.exists() and not out.is_dir():
        raise HdlgenError(f"output path {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file() and not force:
        raise HdlgenError(f"output directory {out} holds files hdlgen did not write; "
                          f"choose another --out or pass --force")
    parent = out.resolve().parent
    for p in [parent, *parent.parents]:
        if p.exists():
            if not p.is_dir():
                raise HdlgenError(f"output path {out}: {p} is a file, not a directory")
            break


@contextlib.contextmanager
def staged_output(out: Path, force: bool):
    """Yield a temporary folder to build into; on success it becomes ``out``."""
    check_out_dir(out, force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    except OSError as e:
        raise HdlgenError(f"cannot create the output directory {out}: {e.strerror or e}") from None
    try:
        yield tmp
        (tmp / MARKER).write_text(f"written by hdlgen {__version__}\n")
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _publish(tmp: Path, out: Path) -> None:
    if not out.exists():
        tmp.rename(out)
    elif (out / MARKER).is_file() or not any(out.iterdir()):
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        old.rmdir()
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:   # --force into a folder with the user's files: replace only what a build writes
        (out / MARKER).unlink(missing_ok=True)
        for entry in sorted(tmp.iterdir(), key=lambda p: p.name == MARKER):
            target = out / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            entry.rename(target)
        tmp.rmdir()
