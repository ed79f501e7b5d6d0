"""Serve the workbench: parse --host/--port/--auth/--share/--log-level, set up logging, build the app, launch."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Instruction fine-tuning workbench (web UI)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--auth", help="user:password, or a file with one user:password per line")
    p.add_argument("--share", action="store_true", help="open a public gradio.live tunnel")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="what goes to the console and to outputs/workbench.log (rotated)")
    p.add_argument("--allow-public-without-auth", action="store_true",
                   help="accept serving beyond this machine with no password (anyone reaching it can train and "
                        "read your outputs)")
    # The trust policy for everything that arrives over HTTP or through the queue (workbench/core/policy.py).
    p.add_argument("--allow-path", action="append", default=[], metavar="DIR",
                   help="a folder (besides data/, outputs/, templates/ and the model cache) that forms, the API and "
                        "queued jobs may read and write; repeatable")
    p.add_argument("--secret-env", action="append", default=[], metavar="NAME",
                   help="an environment variable holding an API key that forms and the API may choose (by name) "
                        "for a judge or a served endpoint; repeatable. No other variable is ever read for a key")
    p.add_argument("--judge-endpoint", action="append", default=[], metavar="URL",
                   help="an endpoint (URL prefix) a key may be sent to; loopback is always allowed; repeatable")
    p.add_argument("--allow-remote-code", action="store_true",
                   help="let forms and the API set model.trust_remote_code (runs Python shipped with a hub model)")
    p.add_argument("--admin", action="append", default=[], metavar="USER",
                   help="with --auth: a user who may cancel, stop, resume and delete everyone's jobs and runs")
    return p.parse_args(argv)


def read_auth(value: str | None):
    if not value:
        return None
    lines = Path(value).read_text(encoding="utf-8").splitlines() if Path(value).is_file() else [value]
    pairs = [tuple(line.strip().split(":", 1)) for line in lines if line.strip() and not line.startswith("#")]
    if not pairs or any(len(p) != 2 or not p[0] or not p[1] for p in pairs):
        raise SystemExit("error: --auth expects user:password or a file of user:password lines")
    return pairs


def main(argv=None) -> int:
    args = parse_args(argv)
    auth = read_auth(args.auth)
    public = args.share or args.host not in ("127.0.0.1", "localhost", "::1")
    if public and not auth and not args.allow_public_without_auth:
        print("error: --host {} / --share would serve the workbench beyond this machine without a password; "
              "add --auth user:pass, or pass --allow-public-without-auth to accept that".format(args.host),
              file=sys.stderr)
        return 2
    from workbench.core.logs import setup_logging
    from workbench.core.paths import outputs_dir
    from workbench.core.policy import configure

    missing = [d for d in args.allow_path if not Path(d).expanduser().is_dir()]
    if missing:
        print(f"error: --allow-path {missing[0]} is not a folder", file=sys.stderr)
        return 2
    unknown = [u for u in args.admin if u not in {name for name, _ in auth or ()}]
    if unknown:
        print(f"error: --admin {unknown[0]} is not a user of --auth", file=sys.stderr)
        return 2
    # Set once, as environment variables, so the supervisor's workers apply the same policy.
    configure(allow_paths=args.allow_path, secret_envs=args.secret_env, endpoints=args.judge_endpoint,
              allow_remote_code=args.allow_remote_code, admins=args.admin)
    from workbench.ui.app import build_app, launch_kwargs

    setup_logging(args.log_level, outputs_dir() / "workbench.log")

    build_app().queue(default_concurrency_limit=4).launch(
        server_name=args.host, server_port=args.port, share=args.share, auth=auth, **launch_kwargs())
    return 0


if __name__ == "__main__":
    sys.exit(main())
