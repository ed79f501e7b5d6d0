"""Judging: an LLM scores evaluation answers against the reference (0-100) or picks the better of two.
The judge is any OpenAI-compatible endpoint (client.py: concurrent, timeouts, retries) or a model loaded
in-process (local.py); its prompt is a rubric file in templates/judge/ (rubric.py)."""
