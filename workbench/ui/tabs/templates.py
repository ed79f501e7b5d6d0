"""Templates tab: read, edit and save prompt templates (YAML files in templates/) and preview a draft.

A template is data, never code: placeholders are filled by a fixed regex and the 'model' kind is
rendered by transformers' sandboxed Jinja. Saving never replaces a file unless 'overwrite' is ticked.
"""
from __future__ import annotations

import gradio as gr

from workbench.config.fields import parse_column_map
from workbench.config.run import DEFAULT_DATA, DataCfg
from workbench.core.errors import WorkbenchError
from workbench.data import browse, preview
from workbench.data.read import ui_source
from workbench.prompts import registry
from workbench.ui.errors import handler
from workbench.ui.tabs.data_panels import preview_outputs, preview_settings


def _about(t: registry.Template) -> str:
    trained = {"instruction": "the response", "chat": ", ".join(t.train_roles) + " turns",
               "model": "assistant turns"}[t.kind]
    lines = [f"**{t.name}** ({t.kind}): {t.description or 'no description'}  ",
             f"trained: {trained} · stop strings: {', '.join(f'`{s!r}`' for s in t.stop) or 'none'}"]
    lines += [f"⚠️ {n}" for n in registry.lint(t)]
    return "\n".join(lines)


@handler
def template_source(name):
    """The YAML text of a template, its description, and its name (as the default 'save as' name)."""
    t = registry.load(name)
    return registry.read_text(name), _about(t), name


@handler
def save_template(text, name, overwrite):
    """Validate and save the editor text as templates/<name>.yaml; refuses to replace one unless asked."""
    try:
        path = registry.save_text(text or "", name, bool(overwrite))
        t = registry.load(path.stem)
    except WorkbenchError as e:
        gr.Warning(str(e))
        return f"❌ Not saved: {e}", gr.update(choices=registry.available())
    return (f"✅ Saved `templates/{path.name}`. It is now in every template list (Data tab: ↻).\n\n{_about(t)}",
            gr.update(choices=registry.available(), value=t.name))


@handler
def preview_draft(text, source, column_map, row, model, max_length, train_on):
    """The editor text (saved or not) rendered on one dataset row: prompt, target, counts, tokens."""
    template = registry.parse(text or "", "draft")
    view = browse.open_view(ui_source(source), "auto", parse_column_map(column_map))
    tok = preview.tokenizer_for(model or "default")
    p = preview.preview(template, view.canonical_row(row), tok, int(max_length or 512), train_on or "responses")
    return p.prompt, p.target, p.counts_markdown(), preview.tokens_html(p, tok)


def build_templates_tab(app: gr.Blocks) -> None:
    d = DataCfg()
    gr.Markdown("Templates are YAML files in `templates/`: drop a file there (then ↻) or edit one here and save it "
                "under a new name. Placeholders: " + ", ".join(f"`{{{f}}}`" for f in registry.FIELDS) + ".")
    with gr.Row():
        choice = gr.Dropdown(registry.available(), value=d.template, label="Template", scale=3,
                             allow_custom_value=True)  # files dropped in later are valid too
        refresh = gr.Button("↻", size="sm", scale=0, min_width=40)
    about = gr.Markdown()
    editor = gr.Code(language="yaml", label="Template file (YAML)", lines=14)
    with gr.Row():
        name = gr.Textbox(label="Save as", info="letters, digits, _, - or .; becomes templates/<name>.yaml", scale=2)
        overwrite = gr.Checkbox(label="Overwrite if it exists")
        save_btn = gr.Button("Save template", variant="primary")
    save_md = gr.Markdown()

    gr.Markdown("### Preview the editor's text on a row")
    with gr.Row():
        source = gr.Textbox(value=DEFAULT_DATA, label="Dataset", scale=3)
        column_map = gr.Textbox(label="Column map", placeholder="context→input")
        row = gr.Number(value=0, precision=0, minimum=0, label="Row #")
    with gr.Row():
        model, max_length, train_on = preview_settings(d)
        preview_btn = gr.Button("Preview", variant="primary")
    outputs = preview_outputs()

    choice.change(template_source, choice, [editor, about, name], api_name="template_source")
    app.load(template_source, choice, [editor, about, name], api_name=False)
    refresh.click(lambda: gr.update(choices=registry.available()), None, choice, api_name=False)
    save_btn.click(save_template, [editor, name, overwrite], [save_md, choice], api_name="save_template")
    preview_btn.click(preview_draft, [editor, source, column_map, row, model, max_length, train_on],
                      outputs, api_name="preview_template_draft")
