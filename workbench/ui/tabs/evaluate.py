"""Evaluate tab: generated vs ground truth for many held-out rows, with ROUGE-L / BLEU per row, the
aggregate, the base model's scores on the same rows, sorting and export. The Evaluate button queues an
`eval` job (a long evaluation never holds a request) and a timer follows it; `/evaluate` stays for programs
that want the result in one call. Logic: workbench.evaluation and workbench.jobs.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd

from workbench.config.tasks import EvalConfig
from workbench.core.errors import EvalError
from workbench.core.paths import confine
from workbench.evaluation import results, side_by_side
from workbench.evaluation.results import COLUMNS
from workbench.runs.compare import run_choices
from workbench.ui.errors import handler
from workbench.ui.form import setting_help, setting_input
from workbench.ui.tabs.evaluate_judge import build_judge_inputs, judge_markdown, score_histogram
from workbench.ui.tabs.evaluate_preference import build_preference_panel

SOURCES = ["test", "validation", "file"]
BASE_MODEL = ("base model (the adapter switched off)", "")
SORTS = {"ROUGE-L, best first": ("rouge_l", True), "ROUGE-L, worst first": ("rouge_l", False),
         "BLEU, best first": ("bleu", True), "BLEU, worst first": ("bleu", False),
         "adapter minus base ROUGE-L, best first": ("gain", True),
         "adapter minus base ROUGE-L, worst first": ("gain", False),
         "Judge score, best first": ("judge_score", True), "Judge score, worst first": ("judge_score", False)}


def _run(run) -> str:
    if not run:
        raise EvalError("choose a run")
    return str(confine(run))


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def _rows(table) -> list[dict]:
    if table is None:
        return []
    df = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table.get("data", []),
                                                                      columns=table.get("headers", COLUMNS))
    df = df.astype(object).where(pd.notna(df), None)
    return df.to_dict("records")


def summary_markdown(summary: dict, name: str) -> str:
    def f(x):
        return "–" if x is None else f"{x:.3f}"

    other = results.baseline_label(summary)

    lines = [f"### {summary['n']} rows · `{summary.get('source', '')}` · saved as `eval/{name}.jsonl`",
             "| | ROUGE-L | BLEU |", "|---|---|---|",
             f"| adapter | **{f(summary['adapter_rouge_l'])}** | {f(summary['adapter_bleu'])} |",
             f"| {other} | {f(summary['base_rouge_l'])} | {f(summary['base_bleu'])} |"]
    a, b = summary.get("adapter_rouge_l"), summary.get("base_rouge_l")
    if a is not None and b is not None:
        verdict = "better than" if a > b else "not better than"
        lines.append(f"\nThe adapter is **{verdict}** the {other} on ROUGE-L ({a - b:+.3f}).")
    return "\n".join(lines) + judge_markdown(summary.get("judge"), other)


# -- handlers -----------------------------------------------------------------------------------------

@handler
def list_eval_runs(current=None, current_baseline=""):
    """Runs with a saved adapter (the newest is picked when none is chosen yet), and the same runs as
    baselines after the base model."""
    choices = run_choices()
    value = current or (choices[0][1] if choices else None)
    return gr.update(choices=choices, value=value), gr.update(choices=[BASE_MODEL, *choices],
                                                              value=current_baseline or "")


def eval_config(run, source, upload, data_path, n, seed, batch_size, max_new_tokens, compare_base, baseline="",
                judge_mode="score", judge_url="", judge_model="", judge_key_env="", judge_local="", judge_rubric="",
                judge_concurrency=4) -> EvalConfig:
    """The form as an EvalConfig (checked against its ranges), with the result's name fixed up front."""
    data = ""
    if source == "file":
        if upload:  # a file the browser just sent: Gradio's own temp copy
            data = upload if isinstance(upload, str) else getattr(upload, "name", None) or upload.get("path")
        elif (data_path or "").strip():
            data = str(confine(data_path))
        else:
            raise EvalError("upload a file or give a data file path (or pick the test / validation split)")
    elif source not in SOURCES:
        raise EvalError(f"source must be one of {', '.join(SOURCES)}")
    cfg = EvalConfig().with_values(run=_run(run), split=source if source != "file" else "test", data=data,
                                   n=n or 0, seed=seed or 0, batch_size=batch_size or 8,
                                   max_new_tokens=max_new_tokens or 0, compare_base=bool(compare_base),
                                   baseline=str(confine(baseline)) if baseline and compare_base else "",
                                   judge__mode=judge_mode or "score", judge__url=(judge_url or "").strip(),
                                   judge__model=(judge_model or "").strip(),
                                   judge__key_env=(judge_key_env or "").strip(),
                                   judge__local=(judge_local or "").strip(), judge__rubric=judge_rubric or "",
                                   judge__concurrency=judge_concurrency or 4)
    cfg.check_ranges()
    from workbench.core.policy import current

    # Only a key the operator offers, only to an allowed endpoint (both doors: the queued job and /evaluate, which
    # runs here); then a judge half filled in (url without model, a key variable not set) is refused now.
    cfg.judge.check_policy(current()).validate()
    cfg.name = side_by_side.default_name(cfg.split, cfg.data or None, cfg.n, cfg.seed, cfg.baseline)
    return cfg


def _shown(cfg: EvalConfig) -> tuple:
    summary = next((s for s in results.list_results(cfg.run) if s["name"] == cfg.name), None)
    if summary is None:
        raise EvalError(f"the evaluation {cfg.name} left no summary in {cfg.run}/eval/")
    rows = results.read_rows(cfg.run, cfg.name)
    return (summary_markdown(summary, cfg.name), _frame(rows), cfg.name,
            _histogram(rows, results.baseline_label(summary)))


def _histogram(rows: list[dict], other: str):
    """The judge's score histogram, or nothing (a hidden plot) when the evaluation had no judge scores."""
    if not any(r.get("judge_score") is not None for r in rows):
        return gr.update(value=None, visible=False)
    return gr.update(value=score_histogram(rows, other), visible=True)


@handler
def evaluate(run, source, upload, data_path, n, seed, batch_size, max_new_tokens, compare_base, baseline="",
             judge_mode="score", judge_url="", judge_model="", judge_key_env="", judge_local="", judge_rubric="",
             judge_concurrency=4, progress=gr.Progress()):
    """Generate for n rows (0 = all) of the run's held-out split or a file; score them (and judge them, when a
    judge is set) and save them, in this request (for programs; the button queues a job instead)."""
    cfg = eval_config(run, source, upload, data_path, n, seed, batch_size, max_new_tokens, compare_base, baseline,
                      judge_mode, judge_url, judge_model, judge_key_env, judge_local, judge_rubric, judge_concurrency)

    def report(done, total, what):
        progress(done / max(total, 1), desc=f"{what}: {done}/{total}")

    values = cfg.to_dict()
    result = side_by_side.evaluate(values.pop("run"), **values, progress=report)
    return summary_markdown(result.summary, result.name), _frame(result.rows), result.name


@handler
def submit_evaluation(run, source, upload, data_path, n, seed, batch_size, max_new_tokens, compare_base, baseline="",
                      judge_mode="score", judge_url="", judge_model="", judge_key_env="", judge_local="",
                      judge_rubric="", judge_concurrency=4):
    """Queue the evaluation (with its judge, if one is set) as an `eval` job; returns (message, job id) and
    the timer follows the job."""
    from workbench.jobs.submit import submit

    job = submit("eval", eval_config(run, source, upload, data_path, n, seed, batch_size, max_new_tokens,
                                     compare_base, baseline, judge_mode, judge_url, judge_model, judge_key_env,
                                     judge_local, judge_rubric, judge_concurrency))
    return f"Queued evaluation job `{job.id}`: {job.name}. It runs in its own process; this page follows it.", job.id


@handler
def follow_evaluation(job_id):
    """Timer: the job's progress while it runs; its table when it completed; its error when it failed."""
    from workbench.jobs import queue, view

    if not job_id:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=False)
    job = queue.get(job_id)
    if job.state in ("queued", *queue.ACTIVE):
        snap = view.snapshot(job)
        done = f"{snap['step']}/{snap['max_steps']} generations" if snap["max_steps"] else "loading the model"
        return (f"⏳ evaluation job `{job.id}` is {job.state}: {done}", gr.skip(), gr.skip(), gr.skip(), gr.skip(),
                gr.skip())
    if job.state != "completed":
        return (f"❌ evaluation job `{job.id}` {job.state}" + (f": {job.error}" if job.error else ""), gr.skip(),
                gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=False))
    summary, table, name, histogram = _shown(EvalConfig.from_text(job.config))
    return "", summary, table, name, histogram, gr.Timer(active=False)


@handler
def sort_table(table, sort_by):
    """Reorder the shown rows: best or worst first by a metric, or by the adapter's gain over the base."""
    rows = _rows(table)
    key, best = SORTS.get(sort_by, ("rouge_l", True))
    if key == "gain":
        for r in rows:
            r["gain"] = None if r.get("base_rouge_l") is None else (r.get("rouge_l") or 0) - r["base_rouge_l"]
    rows = results.sort_rows(rows, key, best)
    return _frame(rows)


def export_table(run, name, table, fmt):
    """Write the shown rows to eval/<name>.<csv|jsonl> in the run folder and offer the file."""
    if not name:
        raise EvalError("run an evaluation first")
    path = results.export(_run(run), _rows(table), f"{name}-table" if fmt == "jsonl" else name, fmt)
    # The browser gets a temp copy: Gradio serves files only from the working dir and the temp dir,
    # and outputs/ may live elsewhere (WORKBENCH_OUTPUTS).
    download = Path(tempfile.mkdtemp(prefix="wb-eval-")) / path.name
    shutil.copyfile(path, download)
    return str(download)


@handler
def export_csv(run, name, table):
    return export_table(run, name, table, "csv")


@handler
def export_jsonl(run, name, table):
    return export_table(run, name, table, "jsonl")


# -- layout -------------------------------------------------------------------------------------------

def build_evaluate_tab(app: gr.Blocks) -> None:
    gr.Markdown("Generate for held-out rows with the adapter and with a baseline (the base model, or another "
                "run's adapter such as the SFT run a DPO run continued), and compare both with the ground truth "
                "(ROUGE-L and BLEU, 0 to 1, higher is closer).")
    with gr.Row():
        run = gr.Dropdown([], label="Run", allow_custom_value=True, scale=3)
        refresh_btn = gr.Button("Refresh runs", size="sm", scale=0)
    with gr.Row():
        source = gr.Radio(SOURCES, value="test", label="Rows", info="the run's held-out split, or a file")
        upload = gr.File(label="File (JSON / JSONL / CSV / Parquet)", file_types=[".json", ".jsonl", ".csv",
                                                                                     ".parquet"], type="filepath")
        data_path = gr.Textbox(label="…or a file path under data/", placeholder="data/dolly_sample.jsonl")
    with gr.Row():  # defaults, ranges and help from EvalConfig (config/tasks.py)
        n = setting_input(EvalConfig, "n", "Rows (0 = all)")
        seed = setting_input(EvalConfig, "seed", "Sampling seed")
        batch_size = setting_input(EvalConfig, "batch_size", "Batch size", step=1)
        max_new_tokens = setting_input(EvalConfig, "max_new_tokens", "Max new tokens", step=8)
        compare_base = setting_input(EvalConfig, "compare_base", "Also score a baseline")
        baseline = gr.Dropdown([BASE_MODEL], value="", label="Baseline", allow_custom_value=True, scale=2,
                               info=setting_help(EvalConfig, "baseline"))
    judge_inputs = build_judge_inputs(app)
    eval_btn = gr.Button("Evaluate", variant="primary")
    job_msg = gr.Markdown()
    job_id = gr.Textbox(visible=False)
    summary = gr.Markdown()
    histogram = gr.Plot(label="Judge scores", visible=False)
    name = gr.Textbox(visible=False)
    timer = gr.Timer(1.0, active=False)
    with gr.Row():
        sort_by = gr.Dropdown(list(SORTS), value="ROUGE-L, best first", label="Sort", scale=2)
        csv_btn = gr.Button("Export CSV", size="sm")
        jsonl_btn = gr.Button("Export JSONL", size="sm")
        exported = gr.File(label="Exported file", interactive=False)
    # The input (a whole response, in the reverse-instruction task) took half the table; the texts being
    # compared need the room.
    table = gr.Dataframe(headers=COLUMNS, label="Generated vs ground truth", wrap=True, interactive=False,
                         column_widths=["16%", "14%", "14%", "12%", "4%", "4%", "4%", "4%", "5%", "5%", "5%", "10%",
                                        "3%"])

    form = [run, source, upload, data_path, n, seed, batch_size, max_new_tokens, compare_base, baseline]
    eval_btn.click(submit_evaluation, form + judge_inputs, [job_msg, job_id], api_name="submit_evaluation").success(
        lambda: gr.Timer(active=True), None, timer, api_name=False)
    timer.tick(follow_evaluation, job_id, [job_msg, summary, table, name, histogram, timer], api_name=False,
               show_progress="hidden")
    # /evaluate answers in one call, for programs; the page itself never waits on it (the button queues a job).
    api_only = gr.Button(visible=False)
    api_only.click(evaluate, form + judge_inputs, [summary, table, name], api_name="evaluate")
    sort_by.change(sort_table, [table, sort_by], table, api_name="sort_eval")
    csv_btn.click(export_csv, [run, name, table], exported, api_name="export_eval_csv")
    jsonl_btn.click(export_jsonl, [run, name, table], exported, api_name="export_eval_jsonl")
    refresh_btn.click(list_eval_runs, [run, baseline], [run, baseline], api_name=False)
    app.load(list_eval_runs, [run, baseline], [run, baseline], api_name=False)
    build_preference_panel(run, name)
