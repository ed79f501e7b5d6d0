"""Configs: dataclasses with help and ranges (fields), the run (RunConfig), generation (GenerationConfig),
the tasks' own configs (tasks), the one column-map syntax, presets, and preflight → Plan."""
