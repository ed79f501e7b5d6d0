"""The Evaluate tab's preference panel: turn a saved evaluation into a pair file (reference or the judge's
preferred answer as chosen, only pairs that differ enough), and measure preference accuracy (how often the
model's own log-likelihood prefers chosen) with the adapter and with the base. Logic: evaluation/results.py."""
from __future__ import annotations

import gradio as gr

from workbench.core.errors import EvalError
from workbench.core.formatting import safe_name
from workbench.core.paths import data_dir, display
from workbench.data import read
from workbench.evaluation import results
from workbench.runs.folder import resolve_run
from workbench.ui.errors import handler


@handler
def build_pairs(run, eval_name, source, min_difference, file_name, overwrite=False):
    """Write data/<file>.jsonl from the run's evaluation; it opens in the Data tab like any dataset. An existing
    file is replaced only with overwrite."""
    if not (run or "").strip() or not (eval_name or "").strip():
        raise EvalError("choose a run and one of its saved evaluations")
    name = safe_name(file_name or "", default="") or f"pairs-{safe_name(eval_name)}"
    out = data_dir() / f"{name}.jsonl"
    done = results.pairs_from_eval(resolve_run(run, confined=True).path, eval_name.strip(), out, source,
                                      float(min_difference or 0), overwrite=bool(overwrite))
    return f"✅ {done['message'].replace(str(out), display(out))}", display(out)


@handler
def accuracy(run, pairs_file, limit):
    """Preference accuracy of the run's adapter and of its base on held-out pairs."""
    if not (run or "").strip():
        raise EvalError("choose a run")
    folder = resolve_run(run, confined=True).path
    data = read.ui_source(pairs_file) if (pairs_file or "").strip() else None
    pairs = results.held_out_pairs(folder, data, int(limit or 64))
    r = results.preference_accuracy(folder, pairs)
    a, b = r["adapter"], r["base"]
    return (f"**Preference accuracy** on {r['pairs']} pairs (log-likelihood of chosen > rejected): adapter "
            f"**{a['accuracy']:.0%}** (mean margin {a['mean_margin']:+.2f} nats) · base **{b['accuracy']:.0%}** "
            f"(mean margin {b['mean_margin']:+.2f})")


def build_preference_panel(run: gr.Dropdown, eval_name: gr.Textbox) -> None:
    """Placed in the Evaluate tab, reading its run and the name of the evaluation shown."""
    with gr.Accordion("Preference: pairs from this evaluation, preference accuracy", open=False,
                      elem_id="preference-panel"):
        with gr.Row():
            shown = gr.Textbox(label="Evaluation", placeholder="the evaluation shown above, or a saved name")
            source = gr.Radio(list(results.SOURCES), value="reference", label="Chosen answer",
                              info="reference: ground truth chosen, the model's answer rejected; judge: the "
                                   "judge's preferred answer (adapter vs base) chosen")
            min_difference = gr.Slider(0.0, 1.0, value=0.2, step=0.05, label="Minimum difference",
                                       info="keep pairs whose answers differ at least this much")
            file_name = gr.Textbox(label="File name in data/", placeholder="pairs-<evaluation>")
            overwrite = gr.Checkbox(False, label="Replace an existing file")
        pairs_btn = gr.Button("Build preference pairs", variant="primary")
        pairs_md = gr.Markdown()
        pairs_path = gr.Textbox(label="Pair file (use it as data.source with train.method dpo / orpo / kto)",
                                interactive=False)
        with gr.Row():
            held_out = gr.Textbox(label="Held-out pairs", placeholder="empty: the run's own held-out pairs",
                                  info="a pair file under data/")
            limit = gr.Number(value=32, precision=0, minimum=1, label="Pairs (at most)")
            acc_btn = gr.Button("Preference accuracy")
        acc_md = gr.Markdown()
    eval_name.change(lambda n: n, eval_name, shown, api_name=False)
    pairs_btn.click(build_pairs, [run, shown, source, min_difference, file_name, overwrite], [pairs_md, pairs_path],
                    api_name="build_preference_pairs")
    acc_btn.click(accuracy, [run, held_out, limit], acc_md, api_name="preference_accuracy")
