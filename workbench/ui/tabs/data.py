"""Data tab: load a dataset, see exactly what the model is trained on, browse, measure and clean it.

Handlers take the dataset fields (source, hub config/split, format, column map) as inputs every time and
get the loaded view from browse.open_view's cache, so API clients and the browser drive them the same
way. Every local path goes through read.ui_source → paths.confine (the allowed folders only).
"""
from __future__ import annotations

import gradio as gr
import pandas as pd

from workbench.config.fields import parse_column_map
from workbench.config.run import DEFAULT_DATA, DataCfg
from workbench.core.errors import WorkbenchError
from workbench.core.paths import display
from workbench.data import browse, formats, load, preview, quality, read, repair, stats
from workbench.prompts import registry
from workbench.ui.errors import handler
from workbench.ui.tabs.data_panels import (build_pairs_panel, column_widths, fit_columns, preview_outputs,
                                           preview_settings, selected_row)

ALL = "(all)"  # category filter: no filter
NONE = "(none)"  # category filter: rows without a category
FORMATS = ["auto", *formats.FORMATS]


def _view(source, hub_config, hub_split, fmt, column_map) -> browse.DatasetView:
    return browse.open_view(read.ui_source(source), fmt or "auto", parse_column_map(column_map),
                            (hub_config or "").strip(), (hub_split or "train").strip())


def _category(value):
    return None if value in (None, "", ALL) else "" if value == NONE else value


def _frame(page: browse.Page) -> pd.DataFrame:
    return pd.DataFrame(page.rows, columns=page.columns)


# -- handlers (public: each has an api_name) ------------------------------------------------------

@handler
def load_dataset(source, hub_config, hub_split, fmt, column_map, skip_bad, page_size):
    """Load (or reload) a dataset: status, the source actually used, categories and the first page."""
    note = ""
    try:
        try:
            view = _view(source, hub_config, hub_split, fmt, column_map)
        except repair.MalformedLinesError as e:
            if not skip_bad:
                raise
            valid, skipped = repair.write_valid_lines(e.path)
            source = display(valid)
            note = (f"\n\n⚠️ Skipped {skipped:,} malformed lines of `{e.path.name}` (first: line {e.bad[0][0]}); "
                    f"the {e.n_good:,} valid rows were copied to `{source}`, which is loaded now.")
            view = _view(source, hub_config, hub_split, fmt, column_map)
    except WorkbenchError as e:
        gr.Warning(str(e))
        return (f"❌ {e}", source, gr.update(choices=[ALL], value=ALL), 1, pd.DataFrame(), "", "")
    page = view.page(1, page_size)
    cats = [NONE if c == "" else c for c in view.categories()]
    choices = [ALL, *cats] if len(cats) > 1 or (cats and cats[0] != NONE) else [ALL]
    d = DataCfg()
    return (f"✅ {browse.describe(view)}{note}", source, gr.update(choices=choices, value=ALL), 1,
            _frame(page), page.info, load.split_markdown(len(view), d.val_size, d.test_size, d.seed))


@handler
def dataset_page(source, hub_config, hub_split, fmt, column_map, query, category, page, page_size):
    """One page of rows (after search and category filter): table, position text, page number."""
    p = _view(source, hub_config, hub_split, fmt, column_map).page(page, page_size, query, _category(category))
    return _frame(p), p.info, p.page


@handler
def dataset_row(source, hub_config, hub_split, fmt, column_map, row):
    """One row as stored in the file and as the engine turns it into training fields."""
    view = _view(source, hub_config, hub_split, fmt, column_map)
    return view.raw_row(row), view.canonical_row(row)


@handler
def jump_to_row(source, hub_config, hub_split, fmt, column_map, row, page_size):
    """The unfiltered page that holds row number `row`, plus that row's detail."""
    view = _view(source, hub_config, hub_split, fmt, column_map)
    p = view.page(view.page_of_row(row, page_size), page_size)
    return _frame(p), p.info, p.page, "", ALL, view.raw_row(row), view.canonical_row(row)


@handler
def preview_template(source, hub_config, hub_split, fmt, column_map, row, template_name, model, max_length,
                     train_on):
    """A row rendered with a template: prompt, target, token counts and the coloured token sequence."""
    view = _view(source, hub_config, hub_split, fmt, column_map)
    tok = preview.tokenizer_for(model or "default")
    p = preview.preview(registry.load(template_name), view.canonical_row(row), tok, int(max_length or 512),
                        train_on or "responses")
    return p.prompt, p.target, p.counts_markdown(), preview.tokens_html(p, tok)


@handler
def dataset_stats(source, hub_config, hub_split, fmt, column_map, model):
    """Counts, empty and duplicate fields, length histograms in characters and in the model's tokens."""
    view = _view(source, hub_config, hub_split, fmt, column_map)
    tok = preview.tokenizer_for(model or "default")
    s = view.stats(tok, model or "default")
    sampled = f" (sample of {s.token_rows:,} rows)" if s.token_rows < s.rows else ""
    return (stats.stats_markdown(s), stats.length_histogram(s.chars, "characters"),
            stats.length_histogram(s.tokens, "tokens", f"Length in {model or 'default'} tokens{sampled}"),
            stats.category_bar(s.categories))


@handler
def first_row(status, source, hub_config, hub_split, fmt, column_map, template_name, model, max_length, train_on):
    """After a successful load: row 0 as stored, as trained, and rendered with the template."""
    if not str(status).startswith("✅"):
        return (gr.skip(),) * 7
    view_args = (source, hub_config, hub_split, fmt, column_map)
    try:
        shown = preview_template(*view_args, 0, template_name, model, max_length, train_on)
    except gr.Error:  # e.g. a template that does not fit this data: the row is still worth showing
        shown = ("", "", "", "")
    return (0, *dataset_row(*view_args, 0), *shown)


@handler
def clean_dataset(source, hub_config, hub_split, fmt, column_map, min_tokens, max_tokens, length_template,
                  exact_dedup, near_dedup, near_threshold, mask_pii, model):
    """Run the quality steps and save the kept rows as a new file: (report, path of the new file)."""
    view = _view(source, hub_config, hub_split, fmt, column_map)
    options = quality.CleanOptions(min_tokens=int(min_tokens or 0), max_tokens=int(max_tokens or 0),
                                   template=length_template or "", exact_dedup=bool(exact_dedup),
                                   near_dedup=bool(near_dedup), near_threshold=float(near_threshold or 0.85),
                                   mask_pii=bool(mask_pii))
    tok = preview.tokenizer_for(model or "default") if (options.min_tokens or options.max_tokens) else None
    result = quality.clean_dataset(view.raw, view.format, options, tok, view.stem)
    return result.markdown(), display(result.path)


@handler
def split_sizes(source, hub_config, hub_split, fmt, column_map, val_size, test_size, seed):
    view = _view(source, hub_config, hub_split, fmt, column_map)
    return load.split_markdown(len(view), float(val_size), float(test_size), int(seed))


@handler
def upload_dataset(file):
    """Copy an upload into data/uploads/ (a new name) and return that path as the dataset source."""
    if not file:
        raise gr.Error("no file received")
    return display(load.save_upload(file))


# -- layout and wiring -----------------------------------------------------------------------------

def build_data_tab(app: gr.Blocks) -> None:
    d = DataCfg()
    gr.Markdown("Load a dataset and see exactly what the model will be trained on: the detected format, every "
                "row, the prompt and the trained tokens under a template, stats, and cleaning.")
    with gr.Row():
        source = gr.Textbox(label="Dataset", value=DEFAULT_DATA, scale=4,
                            info="a file under data/ (JSON list, JSONL, CSV, Parquet) or a hub dataset id")
        files = gr.Dropdown(read.local_files(), value=None, label="…or a file in data/", scale=2)
        upload_btn = gr.UploadButton("Upload a file", file_types=list(read.FILE_TYPES), scale=1)
    with gr.Row():
        fmt = gr.Dropdown(FORMATS, value="auto", label="Format", info="auto detects it from the columns")
        column_map = gr.Textbox(label="Column map", placeholder="context→input, response→output",
                                info="rename columns before detection")
        hub_config = gr.Textbox(label="Hub config", info="hub datasets only")
        hub_split = gr.Textbox(label="Hub split", value="train", info="hub datasets only")
    with gr.Row():
        skip_bad = gr.Checkbox(label="Skip malformed lines", info="copy the valid JSONL lines to a new file and use it")
        load_btn = gr.Button("Load", variant="primary")
    status = gr.Markdown()
    view_inputs = [source, hub_config, hub_split, fmt, column_map]

    gr.Markdown("### Rows")
    with gr.Row():
        query = gr.Textbox(label="Search", placeholder="text in any field (case-insensitive)", scale=3)
        category = gr.Dropdown([ALL], value=ALL, label="Category")
        page_size = gr.Dropdown(list(browse.PAGE_SIZES), value=25, label="Rows per page")
    with gr.Row():
        prev_btn = gr.Button("← Previous", size="sm")
        page = gr.Number(value=1, precision=0, minimum=1, label="Page", show_label=False, container=False)
        next_btn = gr.Button("Next →", size="sm")
        page_info = gr.Markdown()
    table = gr.Dataframe(interactive=False, wrap=True, max_height=520, label="Rows (click one to see it below)",
                         column_widths=column_widths(["#", "category", *browse.INSTRUCTION_FIELDS]))

    gr.Markdown("### One row")
    with gr.Row():
        row_no = gr.Number(value=0, precision=0, minimum=0, label="Row #")
        jump_btn = gr.Button("Jump to row", size="sm")
    with gr.Row():
        raw_json = gr.JSON(label="As stored in the file")
        canon_json = gr.JSON(label="As trained (canonical fields)")
    with gr.Row():
        template = gr.Dropdown(registry.available(), value=d.template, label="Template", scale=2,
                               allow_custom_value=True)  # files dropped in later are valid too
        refresh_tpl = gr.Button("↻", size="sm", scale=0, min_width=40)
        model, max_length, train_on = preview_settings(d)
        preview_btn = gr.Button("Preview", variant="primary")
    preview_out = preview_outputs()

    with gr.Accordion("Stats", open=False):
        stats_btn = gr.Button("Compute stats")
        stats_md = gr.Markdown()
        with gr.Row():
            chars_plot = gr.Plot(label="Characters")
            tokens_plot = gr.Plot(label="Tokens")
        category_plot = gr.Plot(label="Categories")

    with gr.Accordion("Clean (length filter, duplicates, PII) → a new file", open=False):
        with gr.Row():
            min_tokens = gr.Number(value=0, precision=0, minimum=0, label="Min tokens (0 = none)")
            max_tokens = gr.Number(value=0, precision=0, minimum=0, label="Max tokens (0 = none)")
            length_template = gr.Dropdown(["", *registry.available()], value="", label="Count tokens under template",
                                          allow_custom_value=True,
                                          info="empty: the row's text fields")
        with gr.Row():
            exact = gr.Checkbox(value=True, label="Drop exact duplicates")
            near = gr.Checkbox(value=True, label="Drop near duplicates (MinHash)")
            threshold = gr.Slider(0.5, 1.0, value=0.85, step=0.01, label="Near-duplicate similarity")
            pii = gr.Checkbox(value=True, label="Mask PII (e-mail, phone, IP, card)")
        clean_btn = gr.Button("Clean and save", variant="primary")
        cleaned_path = gr.Textbox(label="Cleaned file (use it as the dataset)", interactive=False)
        clean_md = gr.Markdown()

    with gr.Accordion("Train / validation / test split", open=False):
        with gr.Row():
            val_size = gr.Number(value=d.val_size, minimum=0, maximum=0.5, label="Validation fraction")
            test_size = gr.Number(value=d.test_size, minimum=0, maximum=0.5, label="Test fraction")
            seed = gr.Number(value=d.seed, precision=0, minimum=0, label="Seed")
            split_btn = gr.Button("Show sizes")
        split_md = gr.Markdown()
    build_pairs_panel(view_inputs)

    # -- wiring --
    page_inputs = [*view_inputs, query, category, page, page_size]
    page_outputs = [table, page_info, page]
    load_inputs, load_outputs = [*view_inputs, skip_bad, page_size], [status, source, category, page, table,
                                                                      page_info, split_md]
    preview_inputs = [*view_inputs, row_no, template, model, max_length, train_on]

    def then_show_first_row(event):
        event.success(first_row, [status, *view_inputs, template, model, max_length, train_on],
                      [row_no, raw_json, canon_json, *preview_out], api_name=False)
        event.success(fit_columns, table, table, api_name=False)  # a chat dataset has other columns

    then_show_first_row(load_btn.click(load_dataset, load_inputs, load_outputs, api_name="load_dataset"))
    then_show_first_row(source.submit(load_dataset, load_inputs, load_outputs, api_name=False))
    then_show_first_row(upload_btn.upload(upload_dataset, upload_btn, source, api_name="upload_dataset").success(
        load_dataset, load_inputs, load_outputs, api_name=False))
    then_show_first_row(app.load(load_dataset, load_inputs, load_outputs, api_name=False))
    files.focus(lambda: gr.update(choices=read.local_files()), None, files, api_name=False)  # new files at once
    then_show_first_row(files.input(lambda f: f, files, source, api_name=False).success(
        load_dataset, load_inputs, load_outputs, api_name=False))

    page.submit(dataset_page, page_inputs, page_outputs, api_name="dataset_page")
    for trigger in (query.submit, category.input, page_size.input):
        trigger(lambda: 1, None, page, api_name=False).then(dataset_page, page_inputs, page_outputs, api_name=False)
    prev_btn.click(lambda p: max(1, int(p or 1) - 1), page, page, api_name=False).then(
        dataset_page, page_inputs, page_outputs, api_name=False)
    next_btn.click(lambda p: int(p or 1) + 1, page, page, api_name=False).then(
        dataset_page, page_inputs, page_outputs, api_name=False)

    row_no.submit(dataset_row, [*view_inputs, row_no], [raw_json, canon_json], api_name="dataset_row")
    jump_btn.click(jump_to_row, [*view_inputs, row_no, page_size],
                   [table, page_info, page, query, category, raw_json, canon_json], api_name="jump_to_row").success(
        preview_template, preview_inputs, preview_out, api_name=False)
    table.select(selected_row, None, row_no, api_name=False).success(
        dataset_row, [*view_inputs, row_no], [raw_json, canon_json], api_name=False).success(
        preview_template, preview_inputs, preview_out, api_name=False)
    preview_btn.click(preview_template, preview_inputs, preview_out, api_name="preview_template")
    refresh_tpl.click(lambda: gr.update(choices=registry.available()), None, template, api_name=False)

    stats_btn.click(dataset_stats, [*view_inputs, model], [stats_md, chars_plot, tokens_plot, category_plot],
                    api_name="dataset_stats")
    clean_btn.click(clean_dataset, [*view_inputs, min_tokens, max_tokens, length_template, exact, near, threshold,
                                    pii, model], [clean_md, cleaned_path], api_name="clean_dataset")
    split_btn.click(split_sizes, [*view_inputs, val_size, test_size, seed], split_md, api_name="split_sizes")

