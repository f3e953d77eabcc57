"""The live loop: staged, timed, never blocked by its outputs."""
