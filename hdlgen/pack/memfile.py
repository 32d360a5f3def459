"""``$readmemh`` files: one word per line in hexadecimal, most significant digit first."""

from __future__ import annotations

from pathlib import Path


def write_mem(path, words, width: int):
    digits = max(1, (width + 3) // 4)
    lines = []
    for w in words:
        if w < 0 or w >> width:
            raise ValueError(f"{path}: word {w:#x} does not fit {width} bits")
        lines.append(f"{w:0{digits}x}")
    Path(path).write_text("\n".join(lines) + "\n")


def read_mem(path, width: int) -> list:
    words = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("//")[0].strip()
        if not line:
            continue
        w = int(line, 16)
        if w >> width:
            raise ValueError(f"{path}:{n}: word {line} does not fit {width} bits")
        words.append(w)
    return words
