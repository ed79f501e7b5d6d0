"""`python -m workbench train ...`: a thin layer from YAML + --set to RunConfig to the engine."""
from __future__ import annotations

import argparse
import sys

from workbench.core.errors import ConfigError
from workbench.config.run import RunConfig, iter_fields
from workbench.config.fields import parse_set

EXIT_BAD_INPUT = 2  # bad config / arguments: the message says what to fix
EXIT_FAILED = 1  # the run itself failed (status.json holds the error)


def settings_help() -> str:
    lines = ["settings (--set section.key=value):"]
    for name, f in iter_fields():
        m = f.metadata
        allowed = f" [{'|'.join(m['choices'])}]" if m.get("choices") else ""
        lines.append(f"  {name}={f.default if not callable(getattr(f, 'default_factory', None)) else '{}'}"
                     f"{allowed}\n      {m.get('help', '')}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workbench", description="Instruction fine-tuning workbench")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a LoRA / QLoRA / full fine-tune from a YAML config",
                       epilog=settings_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--config", help="YAML file (sections model/adapter/data/train/gen); defaults apply without it")
    t.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one setting; repeatable")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped or interrupted run from its checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    add_eval_parser(sub)
    add_merge_parser(sub)
    return p


def add_eval_parser(sub) -> None:
    e = sub.add_parser("eval", help="generate for held-out rows with the adapter and the base model; score "
                                    "ROUGE-L / BLEU; write RUN_DIR/eval/<name>.jsonl and <name>.json")
    e.add_argument("--run", required=True, metavar="RUN_DIR", help="a run folder (outputs/<run-id>)")
    src = e.add_mutually_exclusive_group()
    src.add_argument("--split", choices=["test", "validation"], default="test",
                     help="the run's held-out split (default: test)")
    src.add_argument("--data", metavar="FILE", help="evaluate a JSON/JSONL/CSV/Parquet file instead, mapped "
                                                    "through the run's template")
    e.add_argument("--n", type=int, default=8, help="rows sampled with --seed (0 = all rows; default 8)")
    e.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    e.add_argument("--batch-size", type=int, default=8, help="rows generated together (default 8)")
    e.add_argument("--max-new-tokens", type=int, default=None, help="longest generation (default: the run's "
                                                                     "gen.max_new_tokens)")
    e.add_argument("--no-base", action="store_true", help="skip the base model's generations")
    e.add_argument("--name", help="file name under RUN_DIR/eval/ (default: <split or file>-n<N>-seed<S>)")


def add_merge_parser(sub) -> None:
    m = sub.add_parser("merge", help="merge a run's LoRA adapter into its base model and save a standard "
                                     "Hugging Face model folder")
    m.add_argument("--run", required=True, metavar="RUN_DIR", help="a run folder or an adapter folder")
    m.add_argument("--out", required=True, metavar="DIR", help="new (or empty) output folder")
    m.add_argument("--base", help="base model (default: the one the adapter was trained on)")
    m.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="dtype of the saved weights (default: the device's compute dtype)")
    m.add_argument("--adapter-only", action="store_true", help="copy the adapter folder alone instead of merging")


def load_config(path: str | None, sets: list[str]) -> RunConfig:
    cfg = RunConfig.load(path) if path else RunConfig()
    for key, value in parse_set(sets):
        cfg.set(key, value)
    return cfg


def cmd_train(args) -> int:
    from workbench.training.engine import TrainingError, train

    try:
        cfg = load_config(args.config, args.set)
        if args.resume and (args.config or args.set):
            raise ConfigError("--resume continues a run with its saved config.yaml; drop --config / --set")
        result = train(cfg, resume=args.resume, progress_bar=not args.no_progress)
    except (ConfigError, TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if result.state == "failed":
        print(f"error: training failed: {result.error}\n(run folder: {result.run_dir})", file=sys.stderr)
        return EXIT_FAILED
    print(f"{result.state}: step {result.global_step}/{result.max_steps}, final loss {result.final_loss}, "
          f"eval loss {result.eval_loss}\nrun folder: {result.run_dir}")
    return 0


def cmd_eval(args) -> int:
    from workbench.core.errors import EvalError
    from workbench.evaluation.side_by_side import evaluate
    from workbench.core.errors import ModelError
    from workbench.core.errors import TemplateError

    def show(done, total, what):
        print(f"\r{what}: {done}/{total}", end="", file=sys.stderr, flush=True)

    try:
        result = evaluate(args.run, split=args.split, data=args.data, n=args.n, seed=args.seed,
                          batch_size=args.batch_size, compare_base=not args.no_base,
                          max_new_tokens=args.max_new_tokens, name=args.name, progress=show)
    except (EvalError, ModelError, ModelError, ConfigError, TemplateError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(file=sys.stderr)
    s = result.summary
    fmt = lambda x: "-" if x is None else f"{x:.4f}"  # noqa: E731
    print(f"{s['n']} rows  ROUGE-L adapter {fmt(s['adapter_rouge_l'])} / base {fmt(s['base_rouge_l'])}  "
          f"BLEU adapter {fmt(s['adapter_bleu'])} / base {fmt(s['base_bleu'])}")
    print(f"rows: {result.files['jsonl']}\nsummary: {result.files['summary']}")
    return 0


def cmd_merge(args) -> int:
    from workbench.core.errors import ExportError
    from workbench.export.merge import export_adapter, merge_adapter, merge_plan
    from workbench.core.formatting import human_size
    from workbench.core.errors import ModelError

    try:
        if args.adapter_only:
            print(f"adapter copied to {export_adapter(args.run, args.out)}")
            return 0
        plan = merge_plan(args.run, args.base, args.dtype)
        print(f"merging {plan['adapter']} into {plan['base']}: about {plan['size']} to write", file=sys.stderr)
        result = merge_adapter(args.run, args.out, args.base, args.dtype)
    except (ExportError, ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"merged model: {result.path} ({human_size(result.bytes_written)}, {result.seconds} s)")
    return 0


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "merge": cmd_merge}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)
