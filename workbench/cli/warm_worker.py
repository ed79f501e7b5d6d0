"""`python -m workbench.cli.warm_worker`: the standby process itself, a worker that warms up before it has a
job (the supervisor's side, which keeps one ready and hands it a job, is jobs/standby.py).

It imports what every training job needs, says "ready", then reads one JSON line on stdin
({"argv": [...], "env": {...}, "log": "<worker.log>"}), points its stdout and stderr at that log, sets the
environment, and runs the CLI command exactly as `python -m workbench <argv>` would.
"""
from __future__ import annotations

import json
import os
import sys


def _warm_up() -> None:
    # transformers and TRL import their classes lazily, on first use: name them, or nothing is warm.
    from datasets import Dataset  # noqa: F401
    from peft import LoraConfig, PeftModel, get_peft_model  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback  # noqa: F401
    from trl import SFTConfig, SFTTrainer  # noqa: F401

    import workbench.cli  # noqa: F401
    import workbench.data.load  # noqa: F401
    import workbench.prompts.rendering  # noqa: F401
    import workbench.training.callbacks  # noqa: F401
    import workbench.training.engine  # noqa: F401


def main() -> int:
    from workbench.core.logs import quiet_libraries

    quiet_libraries()  # before the imports: bitsandbytes speaks on import, and this output ends in a job's log
    _warm_up()
    print("ready", flush=True)  # the supervisor hands a job only to a standby that said so
    line = sys.stdin.readline()
    if not line.strip():
        return 0  # the supervisor closed: nothing to do
    order = json.loads(line)
    os.environ.update(order["env"])
    for key in order.get("unset", []):
        os.environ.pop(key, None)
    log = os.open(order["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    from workbench.cli import main as cli_main

    return cli_main(order["argv"])


if __name__ == "__main__":
    sys.exit(main())
