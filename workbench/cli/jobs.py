"""`python -m workbench jobs list|submit|cancel|resume`: the persistent queue from a terminal."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from workbench.core.errors import ConfigError

HELP = "list, submit, cancel or resume jobs in the queue (outputs/jobs.sqlite3)"


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    from workbench.jobs.kinds import kind_names

    j = sub.add_parser("jobs", help=HELP, description=HELP, parents=parents)
    actions = j.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="the jobs, newest first", parents=parents)
    ls.add_argument("--json", action="store_true", help="one JSON list of job records")
    s = actions.add_parser("submit", help="queue a job; a config that cannot run is refused (exit 2)",
                           parents=parents)
    s.add_argument("config", metavar="CONFIG.yaml", help="the job's config (YAML or JSON)")
    s.add_argument("--kind", default="train", choices=kind_names(), help="the kind of job (default: train)")
    s.add_argument("--processes", type=int, default=1, help="processes (GPUs) for a training job (default 1)")
    s.add_argument("--executor", choices=["local", "slurm"], default=None,
                   help="where it runs: local (a worker here) or slurm (sbatch; the config's slurm section); "
                        "default: the config's executor, else the supervisor's")
    c = actions.add_parser("cancel", help="cancel a queued job, or stop a running one gracefully", parents=parents)
    c.add_argument("id")
    r = actions.add_parser("resume", help="queue an interrupted or cancelled training job again", parents=parents)
    r.add_argument("id")
    j.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from workbench.jobs import queue, submit, view

    if args.action == "list":
        jobs = queue.list_jobs()
        if args.json:
            print(json.dumps([queue.json_ready(j) for j in jobs], indent=2))
            return 0
        for row in view.table():
            where = row["executor"] + (f" {row['slurm_job_id']}" if row["slurm_job_id"] else "") + \
                (f" on {row['node']}" if row["node"] else "")
            print(f"{row['id']}  {row['kind']:<6} {row['state']:<11} {row['progress']:>9}  {row['elapsed']:>8}  "
                  f"{where:<14} {row['name']}" + (f"  ({row['error']})" if row["error"] else ""))
        return 0
    if args.action == "submit":
        path = Path(args.config)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        job = submit.submit(args.kind, path.read_text(encoding="utf-8"), processes=args.processes,
                            executor=args.executor)
        print(f"queued {job.kind} job {job.id} ({job.executor}): {job.name}\nrun folder: {job.run_dir}")
        return 0
    if args.action == "cancel":
        print(submit.cancel(args.id))
        return 0
    job = submit.resume(args.id)
    print(f"job {job.id} queued again: it resumes from its last checkpoint")
    return 0
