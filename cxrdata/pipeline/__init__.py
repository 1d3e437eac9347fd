"""Stages wired into a run: the stage contract, engines, manifest and resume."""
