"""The Evaluate tab's judge: the judge settings (an OpenAI-compatible endpoint or a local model), the rubric
files of templates/judge/ to read, edit, preview and save, the judge's part of the summary and the score
histogram. Logic: workbench.judging."""
from __future__ import annotations

import gradio as gr
import plotly.graph_objects as go

from workbench.config.tasks import MODES, JudgeConfig
from workbench.core.errors import WorkbenchError
from workbench.judging import rubric as rubrics
from workbench.ui.errors import handler
from workbench.ui.form import setting_input

SAMPLE = {"input": "Name the capital of France.", "ground_truth": "Paris is the capital of France.",
          "generated": "The capital of France is Paris.", "base_generated": "France is a country in Europe."}


def judge_markdown(j: dict | None, other: str = "base model") -> str:
    """The judge's lines of the summary: mean score (and the baseline's, `other`), or win / tie / loss against
    it with 95% intervals."""
    if not j:
        return ""

    def ci(key):
        return f" (95% CI {j[key][0]:.2f}–{j[key][1]:.2f})" if j.get(key) else ""

    def f(x, digits=1):
        return "–" if x is None else f"{x:.{digits}f}"

    head = f"\n\n**Judge** `{j.get('model')}` · {j.get('mode')} mode · rubric `{j.get('rubric')}`"
    if j.get("mode") == "score":
        body = (f"\n\n| | judge score (0-100) |\n|---|---|\n| adapter | **{f(j.get('mean_score'))}**"
                f"{ci('mean_score_ci')} |\n| {other} | {f(j.get('base_mean_score'))} |")
    else:
        body = "".join(f"\n- {k} rate **{f(j.get(k + '_rate'), 2)}**{ci(k + '_rate_ci')}"
                       for k in ("win", "tie", "loss"))
        body = f"\n\nThe adapter against the {other} (both answer orders):" + body
    failed = j.get("failed_rows") or 0
    tail = f"\n\n⚠️ {failed} row(s) failed to be judged: see `judge_status`." if failed else ""
    return head + body + tail


def score_histogram(rows: list[dict], other: str = "base model") -> go.Figure:
    """Judge scores of the adapter (and of the baseline, `other`) in 10-point bins."""
    fig = go.Figure()
    for key, label in (("judge_score", "adapter"), ("base_judge_score", other)):
        values = [float(r[key]) for r in rows if r.get(key) is not None]
        if values:
            fig.add_trace(go.Histogram(x=values, name=label, xbins={"start": 0, "end": 100.001, "size": 10},
                                       opacity=0.7))
    fig.update_layout(barmode="overlay", title="Judge scores", xaxis_title="score (0-100)", yaxis_title="rows",
                      xaxis_range=[0, 100], height=300, margin={"l": 40, "r": 10, "t": 40, "b": 40})
    return fig


# -- handlers -----------------------------------------------------------------------------------------

@handler
def rubric_source(name):
    """The YAML text of a rubric file, as written, for the editor (and its name as the 'save as' name)."""
    if not name:
        raise WorkbenchError("choose a rubric")
    return rubrics.read_text(name), name


@handler
def save_rubric(text, name, overwrite):
    """Validate the editor text and save it as templates/judge/<name>.yaml (never over a file unless asked)."""
    path = rubrics.save_text(text or "", (name or "").strip(), bool(overwrite))
    return f"✅ Saved `templates/judge/{path.name}`.", gr.update(choices=_eval_rubrics(), value=path.stem)


@handler
def preview_rubric(text):
    """What the judge reads for a sample row, from the editor's text (saved or not)."""
    r = rubrics.parse(text or "", "draft")
    row = SAMPLE
    values = {"input": row.get("input"), "reference": row.get("ground_truth")}
    if r.mode == "score":
        values["response"] = row.get("generated")
    else:
        values.update(response_a=row.get("generated"), response_b=row.get("base_generated"))
    parts = [f"**{m['role']}**\n\n```text\n{m['content']}\n```" for m in r.messages(**values)]
    return f"Preview ({r.mode} rubric on a sample row):\n\n" + "\n\n".join(parts)


def _eval_rubrics() -> list[str]:
    """The rubrics an evaluation can use (the Generate tab's pair rubrics are not among them)."""
    return sorted({*rubrics.available("score"), *rubrics.available("pairwise")})


# -- layout -------------------------------------------------------------------------------------------

def key_choice(label: str = "API key (environment variable)") -> gr.Dropdown:
    """A choice among the key names the operator offers (--secret-env; core/policy.py), never a typed name:
    the value is the variable's name, the key itself never reaches the page. Used by the Evaluate and Generate
    judges and the Runs tab's Serve panel."""
    from workbench.core.policy import current

    offered = list(current().secret_envs)
    info = ("none offered: the operator can offer one by starting the app with --secret-env NAME" if not offered
            else "a key the operator offers; empty: no key")
    return gr.Dropdown([("(none)", ""), *offered], value="", label=label, allow_custom_value=False, info=info)


def build_judge_inputs(app: gr.Blocks) -> list[gr.components.Component]:
    """The judge settings (defaults, ranges and help from JudgeConfig) and the rubric editor. Returns the
    inputs in the order eval_config takes them: mode, url, model, key_env, local, rubric, concurrency."""
    with gr.Accordion("LLM judge (optional)", open=False):
        gr.Markdown("Score every answer against the reference with a stronger model (0-100, with a reason), or "
                    "let it pick between the adapter's and the base model's answers. Any OpenAI-compatible "
                    "endpoint (Ollama, vLLM, llama.cpp, a hosted API, or a run served from the Runs tab), or a "
                    "model loaded here. The key is one the operator offers (started with --secret-env NAME), "
                    "read from the server's environment when needed, never saved or shown; it is sent only to "
                    "loopback or an endpoint the operator allowed (--judge-endpoint URL).")
        with gr.Row():
            mode = gr.Radio(MODES, value="score", label="Judge mode")
            url = gr.Textbox("", label="Judge endpoint (base URL)", placeholder="http://127.0.0.1:11434/v1")
            model = gr.Textbox("", label="Judge model", placeholder="llama3.1:8b")
            key_env = key_choice()
        with gr.Row():
            local = gr.Textbox("", label="…or a local judge model", placeholder="default (the embedded model)")
            concurrency = setting_input(JudgeConfig, "concurrency", "Requests in flight", step=1)
            rubric = gr.Dropdown([""] + _eval_rubrics(), value="", label="Rubric (empty: the mode's own)",
                                 allow_custom_value=False)
        with gr.Accordion("Rubric file (templates/judge/)", open=False):
            editor = gr.Code(label="Rubric YAML", language="yaml", interactive=True)
            with gr.Row():
                save_as = gr.Textbox(label="Save as", scale=2)
                overwrite = gr.Checkbox(label="Overwrite", value=False)
                save_btn = gr.Button("Save rubric", size="sm")
                preview_btn = gr.Button("Preview", size="sm")
            rubric_msg = gr.Markdown()
            preview = gr.Markdown()
    rubric.change(lambda name, m: rubric_source(name or m), [rubric, mode], [editor, save_as], api_name=False)
    mode.change(lambda name, m: rubric_source(name or m), [rubric, mode], [editor, save_as], api_name=False)
    save_btn.click(save_rubric, [editor, save_as, overwrite], [rubric_msg, rubric], api_name="save_rubric")
    preview_btn.click(preview_rubric, editor, preview, api_name="preview_rubric")
    app.load(lambda: rubric_source("score"), None, [editor, save_as], api_name=False)
    return [mode, url, model, key_env, local, rubric, concurrency]
