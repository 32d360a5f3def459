"""Build flow: Verilog, memory files, board project, synthesis estimate and report."""
