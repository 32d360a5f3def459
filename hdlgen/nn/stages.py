"""Where a multi-stage training run (the compression pipeline) stands, on disk, so that it can
be stopped at any moment and continued with the same command plus ``--resume``.

One folder holds ``resume.pt``: the run's settings and configuration, the rows of the
finished stages, and the stage in progress (its model, and the training loop's position from
:mod:`hdlgen.nn.loop`). A finished stage's model is its own checkpoint, ``<tag>.pt``, beside
it. ``resume.pt`` is written atomically, and always after the checkpoint it points to.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import HdlgenError
from .checkpoint import FORMAT, VERSION, read_checkpoint, save_checkpoint

RESUME_FILE = "resume.pt"


class StageStore:
    """The saved state of one run in ``folder``; ``run`` identifies the run (settings and
    configuration as plain data), so that a folder of another run is never mistaken for it."""

    def __init__(self, folder, run: dict, resume: bool, writes: bool = True):
        self.writes = writes   # False in the processes other than the first of a group
        self.folder = Path(folder)
        self.path = self.folder / RESUME_FILE
        self.run = run
        if self.path.exists() and not resume:
            raise HdlgenError(f"{self.folder} holds a run ({RESUME_FILE}); pass --resume to continue it "
                              f"or choose another --out")
        if resume and not self.path.exists():
            raise HdlgenError(f"--resume: {self.path} does not exist")
        self.state = {"done": {}, "current": None}
        if resume:
            saved = read_checkpoint(self.path)
            self.state = saved["meta"]["stages"]
            self.run = saved["meta"]["run"]

    def finished(self, tag: str):
        """``(state_dict, row)`` of a finished stage, or None."""
        row = self.state["done"].get(tag)
        if row is None:
            return None
        return read_checkpoint(self.folder / f"{tag}.pt")["state_dict"], row

    def in_progress(self, tag: str):
        """``(state_dict, position)`` of the stage in progress if it is ``tag``, else None."""
        current = self.state["current"]
        if current is None or current["tag"] != tag:
            return None
        return current["state_dict"], current["position"]

    def save_progress(self, tag: str, model, position: dict):
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        self.state["current"] = {"tag": tag, "state_dict": state, "position": position}
        self._write()

    def finish(self, tag: str, row: dict):
        """Mark ``tag`` finished (its checkpoint ``<tag>.pt`` written) with its results row."""
        self.state["done"][tag] = row
        self.state["current"] = None
        self._write()

    def _write(self):
        if not self.writes:
            return
        save_checkpoint({"format": FORMAT, "version": VERSION, "recipe": self.run.get("recipe", ""),
                         "config": dict(self.run.get("config", {})), "state_dict": {},
                         "meta": {"run": self.run, "stages": self.state}}, self.path)
