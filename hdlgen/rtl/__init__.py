"""Amaranth components of the accelerator and the assembler that joins them."""

from .rom import ROM_MODULE, ROM_VERILOG
from .top import Accelerator, MemFile, mem_files, pack_all, write_mem_files

__all__ = ["ROM_MODULE", "ROM_VERILOG", "Accelerator", "MemFile", "mem_files", "pack_all", "write_mem_files"]
