"""Serve the workbench: parse --host/--port/--auth/--share/--log-level, set up logging, build the app, launch."""
from __future__ import annotations

import argparse
import sys


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
    return p.parse_args(argv)


def read_auth(value: str | None):
    if not value:
        return None
    from pathlib import Path

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
    from workbench.ui.app import build_app, launch_kwargs

    setup_logging(args.log_level, outputs_dir() / "workbench.log")

    build_app().queue(default_concurrency_limit=4).launch(
        server_name=args.host, server_port=args.port, share=args.share, auth=auth, **launch_kwargs())
    return 0


if __name__ == "__main__":
    sys.exit(main())
