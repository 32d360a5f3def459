"""A second simulator: the emitted core under Icarus Verilog with a plain-Verilog testbench.

Verilator compiles the core to C++ and is two-state; Icarus interprets it event by event with
four-state values (X, Z), so it catches what Verilator cannot see: a register read before
reset gives it a value, an init file it cannot open, an X leaking into an output. The
testbench (:data:`TESTBENCH`) is plain Verilog, no cocotb: it reads the input beats with
``$readmemh``, drives ``s_axis_*`` with seeded random gaps, pulls ``m_axis_*`` with seeded
random backpressure, and writes one line per output beat (index, value, ``tlast``, cycle).

The run happens in a fresh folder holding copies of the Verilog and ``.mem`` files, so the
core's bare ``$readmemh`` file names resolve and the build folder is left as it was.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import HdlgenError

TOP = "hdlgen_accel"
BEATS_FILE = "tb_beats.mem"
OUT_FILE = "tb_out.txt"

TESTBENCH = r"""`timescale 1ns/1ps
// Streams BEATS input beats (PER_IMAGE per image, tlast on each image's last) into the core
// and records IMAGES output beats in tb_out.txt as "index value tlast cycle" lines.
module hdlgen_tb;
  parameter IN_W = 8;
  parameter OUT_W = 8;
  parameter BEATS = 1;
  parameter PER_IMAGE = 1;
  parameter IMAGES = 1;
  parameter STALL_IN = 0;      // percent of cycles an idle input stays idle
  parameter STALL_OUT = 0;     // percent of cycles the output is not ready
  parameter SEED = 1;
  parameter TIMEOUT = 100000;  // cycles without a beat on either stream: hung

  reg clk = 1'b0;
  reg rst = 1'b1;
  reg [IN_W-1:0] beats [0:BEATS-1];
  reg [IN_W-1:0] s_tdata = {IN_W{1'b0}};
  reg s_tvalid = 1'b0;
  reg s_tlast = 1'b0;
  reg m_tready = 1'b0;
  wire s_tready;
  wire [OUT_W-1:0] m_tdata;
  wire m_tvalid;
  wire m_tlast;
  integer seed = SEED;
  integer next = 0;         // index of the beat presented (or to present next)
  integer got = 0;
  integer cycle = 0;
  integer idle = 0;
  integer fd;

  hdlgen_accel dut (
    .clk(clk), .rst(rst),
    .s_axis_tdata(s_tdata), .s_axis_tvalid(s_tvalid), .s_axis_tready(s_tready), .s_axis_tlast(s_tlast),
    .m_axis_tdata(m_tdata), .m_axis_tvalid(m_tvalid), .m_axis_tready(m_tready), .m_axis_tlast(m_tlast));

  always #5 clk = ~clk;

  initial begin
    $readmemh("tb_beats.mem", beats);
    fd = $fopen("tb_out.txt", "w");
    repeat (4) @(posedge clk);
    rst <= 1'b0;
  end

  // Everything samples the values before the edge (as the core does) and sets the next ones.
  always @(posedge clk) if (!rst) begin
    cycle <= cycle + 1;
    if (s_tvalid && s_tready) begin
      next = next + 1;
    end
    if (!s_tvalid || s_tready) begin   // a presented beat stays until it is taken
      if (next < BEATS && ({$random(seed)} % 100) >= STALL_IN) begin
        s_tvalid <= 1'b1;
        s_tdata <= beats[next];
        s_tlast <= (next % PER_IMAGE) == PER_IMAGE - 1;
      end else begin
        s_tvalid <= 1'b0;
      end
    end
    if (m_tvalid && m_tready) begin
      $fwrite(fd, "%0d %0d %0d %0d\n", got, m_tdata, m_tlast, cycle);
      got = got + 1;
    end
    idle = ((s_tvalid && s_tready) || (m_tvalid && m_tready)) ? 0 : idle + 1;
    if (got == IMAGES || idle > TIMEOUT) begin
      if (got != IMAGES) $fwrite(fd, "hung after %0d cycles\n", cycle);
      $fclose(fd);
      $finish;
    end
    m_tready <= ({$random(seed)} % 100) >= STALL_OUT;
  end
endmodule
"""


@dataclass(frozen=True)
class IcarusRun:
    """Outputs (one value per image, in order) and their cycle numbers; ``hung`` when the
    core stopped moving before every image came out."""
    outputs: np.ndarray
    cycles: np.ndarray
    tlast_missing: int        # output beats without tlast (every beat should carry it)
    hung: bool
    log: str

    def cycles_per_image(self) -> float | None:
        """Steady state: the second half of the outputs, as the Verilator benches measure it."""
        n = len(self.cycles)
        k = n // 2
        return None if n - 1 - k < 1 else float(self.cycles[-1] - self.cycles[k]) / (n - 1 - k)


def find_icarus() -> tuple[str, str] | None:
    """Paths of ``iverilog`` and ``vvp``, or None when Icarus is not installed."""
    iverilog, vvp = shutil.which("iverilog"), shutil.which("vvp")
    return (iverilog, vvp) if iverilog and vvp else None


def beat_lines(images: np.ndarray, lanes: int) -> list[str]:
    """One hex word per input beat: ``lanes`` uint8 values, lane 0 in the low byte."""
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(-1, lanes)
    return [row[::-1].tobytes().hex() for row in flat]


def run_icarus(rtl_dir, images: np.ndarray, lanes: int, out_width: int, *, stall_in: int = 0,
               stall_out: int = 0, seed: int = 1, timeout_cycles: int = 100000,
               timeout_s: float = 600.0) -> IcarusRun:
    """Run the core in ``rtl_dir`` (``hdlgen_accel.v``, ``hdlgen_lib.v``, ``*.mem``) on ``images``
    (uint8, N x H x W x C) under Icarus; stalls are percentages."""
    tools = find_icarus()
    if tools is None:
        raise HdlgenError("Icarus Verilog (iverilog, vvp) is not installed; on Debian: apt-get install iverilog")
    rtl_dir = Path(rtl_dir)
    sources = sorted(rtl_dir.glob("*.v"))
    if not (rtl_dir / f"{TOP}.v").is_file():
        raise HdlgenError(f"{rtl_dir} holds no {TOP}.v")
    per_image = images[0].size
    if per_image % lanes:
        raise HdlgenError(f"an image has {per_image} values, not a multiple of lanes={lanes}")
    params = {"IN_W": 8 * lanes, "OUT_W": out_width, "BEATS": len(images) * per_image // lanes,
              "PER_IMAGE": per_image // lanes, "IMAGES": len(images), "STALL_IN": stall_in,
              "STALL_OUT": stall_out, "SEED": seed, "TIMEOUT": timeout_cycles}
    with tempfile.TemporaryDirectory(prefix="hdlgen-icarus-") as tmp:
        work = Path(tmp)
        for f in [*sources, *rtl_dir.glob("*.mem")]:
            shutil.copy(f, work / f.name)
        (work / "hdlgen_tb.v").write_text(TESTBENCH)
        (work / BEATS_FILE).write_text("\n".join(beat_lines(images, lanes)) + "\n")
        compile_cmd = [tools[0], "-g2012", "-s", "hdlgen_tb", "-o", "tb.vvp",
                       *[f"-Phdlgen_tb.{k}={v}" for k, v in params.items()],
                       "hdlgen_tb.v", *[f.name for f in sources]]
        _run(compile_cmd, work, timeout_s, "iverilog")
        log = _run([tools[1], "-n", "tb.vvp"], work, timeout_s, "vvp")
        if "Unable to open" in log:   # Icarus goes on with X where an init file is missing
            raise HdlgenError(f"Icarus could not read a memory file: {log.strip()[-500:]}")
        lines = (work / OUT_FILE).read_text().splitlines() if (work / OUT_FILE).exists() else []
    hung = any(line.startswith("hung") for line in lines)
    rows = [line.split() for line in lines if not line.startswith("hung")]
    if any(len(r) != 4 or not all(v.isdigit() for v in r) for r in rows):
        bad = next(r for r in rows if len(r) != 4 or not all(v.isdigit() for v in r))
        raise HdlgenError(f"Icarus output beat {' '.join(bad)!r} is not a number (X or Z on m_axis?)")
    table = np.array([[int(v) for v in r] for r in rows], dtype=np.int64).reshape(-1, 4)
    return IcarusRun(outputs=table[:, 1], cycles=table[:, 3], tlast_missing=int((table[:, 2] == 0).sum()),
                     hung=hung or len(table) < len(images), log=log)


def _run(cmd, cwd, timeout_s, what) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise HdlgenError(f"{what} did not finish within {timeout_s:.0f} s") from None
    text = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise HdlgenError(f"{what} failed (exit {proc.returncode}): {text.strip()[-1500:]}")
    return text
