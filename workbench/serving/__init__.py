"""Serving: runs' adapters behind an OpenAI-compatible HTTP API (FastAPI + uvicorn), one copy of the base
weights for every adapter, concurrent requests batched into one generate call."""
