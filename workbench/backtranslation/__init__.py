"""Instruction back-translation: turn a user's own texts into an instruction dataset with a reverse-instruction
run (sources → chunks → labels and scores → reviewed pairs → data/generated/<name>.jsonl)."""
