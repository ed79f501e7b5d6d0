"""Run folders: outputs/<run-id>/ with config.yaml, status.json, metrics.jsonl, run.log and artifacts; and
comparing runs side by side."""
