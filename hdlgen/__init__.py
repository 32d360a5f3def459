"""hdlgen: compressed PyTorch CNNs to verified, synthesizable Verilog accelerators."""

__version__ = "0.1.0"
