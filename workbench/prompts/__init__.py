"""Prompt templates: the schema, the files in templates/, rendering to segments, tokens with labels."""
