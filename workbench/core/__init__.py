"""Shared foundations: errors, paths and confinement, atomic files, names, formatting, logging.

Imports nothing else of the workbench, so every other package may import it.
"""
