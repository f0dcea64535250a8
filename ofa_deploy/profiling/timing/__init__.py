"""Timing: runtime backends (`backends`), one timed visit of a model (`timer`), the anchor-paired protocol
(`protocol`) and its anchor model (`anchor`), and timing model files with it (`measure`). Import the submodules
directly; this package imports nothing on its own.
"""
