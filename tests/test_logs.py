"""The logs a user reads (a job's worker.log: the worker's stdout and stderr in a file) hold the workbench's own
lines and warnings they can act on, not third-party noise (issue 25, 7). A real child process loads the real
default model with its stderr in a file, as a worker does; without the workbench's logging setup the same
script shows the noise, so the filters, not a library change, are what keeps it out."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import logging, sys, warnings
mode = sys.argv[1]
if mode == "warm":  # as cli/warm_worker.py: quiet first, then import, and the job's logging set up after
    from workbench.core.logs import quiet_libraries
    quiet_libraries()
    import transformers, peft  # noqa: F401
if mode in ("quiet", "warm"):
    from workbench.core.logs import setup_logging
    setup_logging("WARNING")
else:
    logging.basicConfig(level="WARNING")
import bitsandbytes  # noqa: F401  (logs its CPU-kernel line on import)
from transformers import AutoModelForCausalLM
from workbench.models.resolve import default_model_dir
model = AutoModelForCausalLM.from_pretrained(default_model_dir())  # the "Loading weights" bar
model.is_gradient_checkpointing  # a FutureWarning transformers raises for TRL's calls
logging.getLogger("workbench.check").warning("our own warning")
logging.getLogger("bitsandbytes.backends.cpu.ops").warning("another bitsandbytes warning")
warnings.warn("a FutureWarning of our own", FutureWarning)
"""

NOISE = ("Failed to load CPU gemm_4bit_forward", "Loading weights", "is_gradient_checkpointing")
KEPT = ("our own warning", "another bitsandbytes warning", "a FutureWarning of our own")


def run(mode: str, tmp_path: Path) -> str:
    log = tmp_path / f"{mode}.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    with open(log, "w") as out:  # a file, as a worker's stdout and stderr are
        subprocess.run([sys.executable, "-c", SCRIPT, mode], stdout=out, stderr=subprocess.STDOUT, env=env,
                       cwd=tmp_path, timeout=300, check=True)
    return log.read_text(encoding="utf-8")


def test_a_worker_log_keeps_our_warnings_and_drops_library_noise(tmp_path):
    loud = run("loud", tmp_path)
    assert all(n in loud for n in NOISE), loud  # the noise is real in these library versions
    for mode in ("quiet", "warm"):
        text = run(mode, tmp_path)
        assert not [n for n in NOISE if n in text], text
        assert all(k in text for k in KEPT), text
