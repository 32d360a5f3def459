"""Checks of the verification itself: faults injected into emitted cores (:mod:`.mutants`)."""
