"""Generate tab: your own texts → an instruction dataset. Label them with a reverse-instruction run (a
`generate` job), review the pairs (scores, flags, keep / drop / edit, a threshold), save them as
data/generated/<name>.jsonl and train a forward model on it. Logic: workbench.backtranslation and workbench.jobs.
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from workbench.backtranslation import review
from workbench.backtranslation.sources import TEXT_SUFFIXES
from workbench.backtranslation.workdir import list_generations
from workbench.config.generate import GenerateConfig
from workbench.core.errors import ConfigError, DataError
from workbench.core.formatting import timestamped
from workbench.core.paths import display
from workbench.data.read import FILE_TYPES
from workbench.ui.errors import handler
from workbench.ui.form import setting_input
from workbench.ui.tabs.evaluate_judge import key_choice
from workbench.ui.tabs.generate_review import (
    DATATYPES,
    apply_threshold,
    count_kept,
    files_note,
    open_generation,
    save_generated,
    sort_review,
)

UPLOAD_TYPES = (*TEXT_SUFFIXES, *FILE_TYPES)


# -- handlers -----------------------------------------------------------------------------------------

@handler
def list_reverse_runs(current=None):
    """Finished runs trained with a reverse-instruction template (the only ones that can label texts)."""
    from workbench.backtranslation.plan import reverse_run
    from workbench.runs.compare import run_choices

    choices = []
    for label, path in run_choices():
        try:
            reverse_run(path, confined=True)
        except ConfigError:
            continue
        choices.append((label, path))
    return gr.update(choices=choices, value=current or (choices[0][1] if choices else None))


@handler
def list_previous(current=None):
    names = [w.name for w in list_generations()]
    return gr.update(choices=names, value=current if current in names else None)


@handler
def upload_texts(files):
    """Uploads go to data/uploads/: one file as itself, several into a new folder of their own."""
    from workbench.data.load import save_upload, uploads_dir

    files = [f for f in (files if isinstance(files, list) else [files]) if f]
    if not files:
        raise DataError("no file received")
    if len(files) == 1:
        return display(save_upload(files[0], file_types=UPLOAD_TYPES))
    folder = uploads_dir() / timestamped("texts")
    for f in files:
        save_upload(f, file_types=UPLOAD_TYPES, folder=folder)
    return display(folder)


def generate_config(run, texts, pasted, column, split_paragraphs, candidates, min_tokens, max_chunk_tokens, limit,
                    batch_size, max_new_tokens, name, judge_url, judge_model, judge_key_env,
                    judge_local) -> GenerateConfig:
    cfg = GenerateConfig().with_values(
        run=run or "", texts=(texts or "").strip(), pasted=pasted or "", column=column or "",
        split_paragraphs=bool(split_paragraphs), candidates=candidates or 1, min_tokens=min_tokens or 0,
        max_chunk_tokens=max_chunk_tokens or 0, limit=limit or 0, batch_size=batch_size or 8,
        name=(name or "").strip() or timestamped("generate"), judge__url=(judge_url or "").strip(),
        judge__model=(judge_model or "").strip(), judge__key_env=(judge_key_env or "").strip(),
        judge__local=(judge_local or "").strip())
    cfg.gen.max_new_tokens = int(max_new_tokens or cfg.gen.max_new_tokens)
    return confined(cfg)


def confined(cfg: GenerateConfig) -> GenerateConfig:
    """The web's rule: the run lies under the allowed folders too (texts and out always must)."""
    from workbench.backtranslation.plan import reverse_run

    from workbench.core.policy import current

    cfg.judge.check_policy(current())  # an offered key only, sent only to an allowed endpoint
    cfg.validate()
    cfg.run = str(reverse_run(cfg.run, confined=True)[0].path)
    return cfg


@handler
def start_generation(*form):
    from workbench.jobs.submit import submit

    cfg = generate_config(*form)
    job = submit("generate", cfg)
    return (f"Queued generation job `{job.id}` ({job.name}). It runs in its own process; this page follows it.",
            job.id, cfg.name)


@handler
def follow_generation(job_id, threshold, judge_threshold):
    """Timer: progress while the job runs; the review table once it completed; the error if it failed."""
    from workbench.core.formatting import clock
    from workbench.jobs import queue, view

    if not job_id:
        return gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=False)
    job = queue.get(job_id)
    row = view.row(job)
    name = GenerateConfig.from_text(job.config).name
    if job.state in ("queued", *queue.ACTIVE):
        step = view.progress_note(job) or "labelling"  # labelling, then judging when a judge was given
        done = f"{step} {row['progress']} chunks" if row["progress"] else "reading the texts and loading the model"
        eta = f", about {row['ETA']} left" if row["ETA"] else ""
        return f"⏳ generation job `{job.id}` is {job.state}: {done}{eta} ({clock(view.elapsed(job))})" + \
            files_note(name), gr.skip(), gr.skip(), gr.skip()
    if job.state != "completed":
        return (f"❌ generation job `{job.id}` {job.state}" + (f": {job.error}" if job.error else "") +
                " — Resume labels only the chunks not yet labelled." + files_note(name), gr.skip(), gr.skip(),
                gr.Timer(active=False))
    table, count = open_generation(name, threshold, judge_threshold)
    return f"✅ generation job `{job.id}` completed" + files_note(name), table, count, gr.Timer(active=False)


@handler
def act_on_job(action, job_id):
    from workbench.jobs import submit

    if not job_id:
        raise DataError("no generation job to act on yet")
    if action == "stop":
        return submit.cancel(job_id)
    job = submit.resume(job_id)
    return f"Job `{job.id}` queued again: it labels only the chunks not yet labelled."


# -- layout -------------------------------------------------------------------------------------------

def build_generate_tab(app: gr.Blocks) -> dict:
    gr.Markdown("Turn your own texts (e-mails, answers, docs) into an instruction dataset: a reverse-instruction run "
                "writes the instruction each text answers, you keep the best pairs, then train a forward model.")
    with gr.Row():
        run = gr.Dropdown([], label="Reverse-instruction run", allow_custom_value=True, scale=3,
                          info="finished runs trained with a reverse-instruction template")
        refresh_btn = gr.Button("Refresh runs", size="sm", scale=0)
    with gr.Row():
        texts = gr.Textbox(label="Texts", scale=3, placeholder="data/my-emails/ (a folder of .txt / .md), a file, "
                           "or a dataset", info="a folder or file under data/")
        upload_btn = gr.UploadButton("Upload files", file_types=list(UPLOAD_TYPES), file_count="multiple", scale=1)
        column = gr.Textbox(label="Dataset column", info="datasets only; empty: output / response / text …")
    pasted = gr.Textbox(label="…or paste texts (one per paragraph)", lines=4)
    with gr.Accordion("Settings", open=False):  # defaults, ranges and help from GenerateConfig
        with gr.Row():
            split_paragraphs = setting_input(GenerateConfig, "split_paragraphs", "One text per paragraph")
            candidates = setting_input(GenerateConfig, "candidates", "Candidates per text", step=1)
            min_tokens = setting_input(GenerateConfig, "min_tokens", "Skip chunks under (tokens)")
            max_chunk_tokens = setting_input(GenerateConfig, "max_chunk_tokens", "Chunk budget (tokens)")
        with gr.Row():
            limit = setting_input(GenerateConfig, "limit", "Label at most (0 = all)")
            batch_size = setting_input(GenerateConfig, "batch_size", "Batch size", step=1)
            max_new_tokens = setting_input(GenerateConfig, "gen.max_new_tokens", "Max instruction tokens", step=8)
            name = gr.Textbox(label="Generation name", info="empty: timestamped")
    with gr.Accordion("LLM judge (optional)", open=False):
        gr.Markdown("Also score every pair 0-100 with a stronger model (rubric `templates/judge/pair.yaml`: is this "
                    "a request a user would make, and does your text answer it?). Any OpenAI-compatible endpoint, "
                    "or a model loaded here. The key is one the operator offers (--secret-env), sent only to "
                    "loopback or an allowed endpoint (--judge-endpoint).")
        with gr.Row():
            judge_url = gr.Textbox("", label="Judge endpoint (base URL)", placeholder="http://127.0.0.1:11434/v1")
            judge_model = gr.Textbox("", label="Judge model", placeholder="llama3.1:8b")
            judge_key_env = key_choice()
            judge_local = gr.Textbox("", label="…or a local judge model", placeholder="default (the embedded model)")
    with gr.Row():
        start_btn = gr.Button("Generate instructions", variant="primary")
        stop_btn = gr.Button("Stop", variant="stop")
        resume_btn = gr.Button("Resume")
    job_msg = gr.Markdown()
    job_id = gr.Textbox(visible=False)
    timer = gr.Timer(1.0, active=False)

    gr.Markdown("### Review")
    with gr.Row():
        previous = gr.Dropdown([], label="Generation", allow_custom_value=True, scale=2)
        open_btn = gr.Button("Open", size="sm", scale=0)
        threshold = setting_input(GenerateConfig, "min_score", "Keep score ≥", step=1, scale=2)
        judge_threshold = setting_input(GenerateConfig, "min_judge_score", "Keep judge score ≥", step=1, scale=2)
        sort = gr.Dropdown(list(review.SORTS), value="score, best first", label="Sort", scale=2)
    kept_md = gr.Markdown()
    table = gr.Dataframe(headers=review.COLUMNS, datatype=DATATYPES, interactive=True, wrap=True, max_height=520,
                         label="Text → generated instruction (untick keep to drop a row; edit an instruction in place)",
                         column_widths=["8%", "7%", "7%", "24%", "31%", "8%", "6%", "9%", "0%"])
    with gr.Row():
        out_name = gr.Textbox(label="Dataset name", info="saved as data/generated/<name>.jsonl with a card")
        overwrite = gr.Checkbox(False, label="overwrite an existing dataset")
        save_btn = gr.Button("Save dataset", variant="primary")
    saved_md = gr.Markdown()
    saved_path = gr.Textbox(label="Saved dataset", interactive=False)
    train_btn = gr.Button("Train a forward model on it")

    form = [run, texts, pasted, column, split_paragraphs, candidates, min_tokens, max_chunk_tokens, limit, batch_size,
            max_new_tokens, name, judge_url, judge_model, judge_key_env, judge_local]
    start_btn.click(start_generation, form, [job_msg, job_id, previous], api_name="start_generation").success(
        lambda: gr.Timer(active=True), None, timer, api_name=False)
    timer.tick(follow_generation, [job_id, threshold, judge_threshold], [job_msg, table, kept_md, timer],
               api_name=False, show_progress="hidden")
    stop_btn.click(lambda j: act_on_job("stop", j), job_id, job_msg, api_name=False)
    resume_btn.click(lambda j: act_on_job("resume", j), job_id, job_msg, api_name=False).success(
        lambda: gr.Timer(active=True), None, timer, api_name=False)
    upload_btn.upload(upload_texts, upload_btn, texts, api_name="upload_texts")
    refresh_btn.click(list_reverse_runs, run, run, api_name=False)
    app.load(list_reverse_runs, run, run, api_name=False)
    previous.focus(list_previous, previous, previous, api_name=False)
    open_btn.click(open_generation, [previous, threshold, judge_threshold], [table, kept_md],
                   api_name="open_generation")
    for slider in (threshold, judge_threshold):
        slider.change(apply_threshold, [previous, table, threshold, judge_threshold], [table, kept_md],
                      api_name=False)
    table.change(count_kept, [previous, table], kept_md, api_name=False)
    sort.input(sort_review, [previous, table, sort], table, api_name=False)
    save_btn.click(save_generated, [previous, table, threshold, judge_threshold, out_name, overwrite],
                   [saved_md, saved_path],
                   api_name="save_generated")
    gr.api(generate_dataset_api, api_name="generate_dataset")
    return {"train_button": train_btn, "dataset": saved_path, "generation": previous}


@handler
def generate_dataset_api(run: str, texts: str = "", pasted: str = "", out: str = "", candidates: int = 1,
                         min_score: float = 0.0, limit: int = 0, name: str = "", overwrite: bool = False,
                         judge_url: str = "", judge_model: str = "", judge_local: str = "",
                         min_judge_score: float = 0.0) -> dict:
    """The CLI's inputs as one call: queues a `generate` job; follow it with /list_jobs (its progress) and read
    the result from `out` (or open the generation in the tab)."""
    from workbench.jobs.submit import submit

    cfg = GenerateConfig().with_values(run=run, texts=texts, pasted=pasted, out=out, candidates=candidates,
                                       min_score=min_score, limit=limit, name=name, overwrite=overwrite,
                                       judge__url=judge_url, judge__model=judge_model, judge__local=judge_local,
                                       min_judge_score=min_judge_score)
    job = submit("generate", confined(cfg))
    return {"job_id": job.id, "generation": Path(job.run_dir).name, "name": job.name}
