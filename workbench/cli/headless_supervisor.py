"""`python -m workbench worker`: the headless supervisor for a server, the app's supervisor without the app (a
job's own worker process is the task command it starts; jobs/worker.py runs inside that). It drains the same
queue as the app; the queue's claim makes sure the app and this supervisor never run the same job."""
from __future__ import annotations

import argparse

HELP = "run queued jobs without a browser (a headless supervisor); Ctrl-C to stop watching"


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    w = sub.add_parser("worker", help=HELP, description=HELP, parents=parents)
    w.add_argument("--until-empty", action="store_true", help="exit once no job is queued or running")
    w.add_argument("--executor", choices=["local", "slurm"], default=None,
                   help="where jobs run unless their config says: local (default) or slurm (sbatch from here, "
                        "the outputs folder on a filesystem the nodes share)")
    w.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from workbench.jobs.supervisor import Supervisor

    supervisor = Supervisor(executor=args.executor)
    if args.until_empty:
        supervisor.run_until_empty()
        print("no job queued or running: done")
        return 0
    supervisor.serve_forever()
    return 0
