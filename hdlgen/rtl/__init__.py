"""Amaranth components of the accelerator and the assembler that joins them."""

from .popcount import POPCOUNT_MODULE, POPCOUNT_VERILOG
from .rom import ROM_MODULE, ROM_VERILOG
from .top import Accelerator, mem_files, pack_all, write_mem_files

#: The library modules the emitted core instantiates, written beside it as ``hdlgen_lib.v``.
LIBRARY_FILE = "hdlgen_lib.v"
LIBRARY_VERILOG = ROM_VERILOG + "\n" + POPCOUNT_VERILOG

__all__ = ["LIBRARY_FILE", "LIBRARY_VERILOG", "POPCOUNT_MODULE", "POPCOUNT_VERILOG", "ROM_MODULE", "ROM_VERILOG",
           "Accelerator", "mem_files", "pack_all", "write_mem_files"]
