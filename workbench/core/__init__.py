"""Shared foundations: errors, paths and confinement, atomic files, names and formatting, logging.

Imports nothing else of the workbench, so every other package may import it.
"""
