"""Bad input, as a user (or any API caller) can send it, through the launched app's public endpoints.

Each case asserts three things: the user-facing message says what is wrong, the app still answers the next
request, and nothing under data/, templates/ or outputs/ was changed or left half-written (no temp files).
Cases span dataset files, template files, config values, model ids, adapter folders and uploads.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from e2e_helpers import TINY_API, diff_snapshots, leftovers, tree_snapshot, wait_idle, watched_roots
from workbench.core.paths import outputs_dir

DOLLY = ["data/dolly_sample.jsonl", "", "train", "auto", ""]  # source, hub config, hub split, format, column map
BAD_FILES = {
    "empty.jsonl": b"",
    "spaces.jsonl": b"   \n\n  \n",
    "latin1.jsonl": '{"instruction": "café", "output": "x"}\n'.encode("latin-1"),
    "picture.json": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
    "numbers.json": b"[1, 2, 3]",
    "cols.jsonl": b'{"text": "a", "label": 1}\n',
    "broken.jsonl": b'{"instruction": "a", "output": "b"}\n{"instruction": "c", "output":\nnot json\n',
    "header_only.csv": b"instruction,output\n",
    "notes.txt": b"instruction: a\n",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory, client):
    """Own data/ and templates/ folders holding the bad files, and run folders in outputs/ that are not
    what a handler needs (no adapter, completed, stopped without a checkpoint, a broken adapter)."""
    from workbench.core.paths import templates_dir

    wait_idle(client)  # a run from another module would write to outputs/ while we watch it
    root = tmp_path_factory.mktemp("bad-input")
    data, tpl = root / "data", root / "templates"
    data.mkdir()
    shutil.copytree(templates_dir(), tpl)
    for name, content in BAD_FILES.items():
        (data / name).write_bytes(content)
    (data / "passwd.jsonl").symlink_to("/etc/passwd")  # a link inside data/ that leads out of it
    (root / "outside.jsonl").write_text('{"instruction": "secret", "output": "secret"}\n')

    runs = outputs_dir() / "bad-input-fixtures"
    cfg = 'data:\n  source: data/dolly_sample.jsonl\n  template: reverse_instruction\n'
    for name, state in (("completed-no-adapter", "completed"), ("stopped-no-checkpoint", "stopped")):
        run = runs / name
        run.mkdir(parents=True)
        (run / "config.yaml").write_text(cfg)
        (run / "status.json").write_text(json.dumps({"state": state, "step": 1, "max_steps": 3}))
    (runs / "empty-folder").mkdir()
    (runs / "corrupt-adapter").mkdir()
    (runs / "corrupt-adapter" / "adapter_config.json").write_text("{not json")
    weightless = runs / "weightless-adapter"  # a valid adapter config whose weights never got written
    weightless.mkdir()
    (weightless / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj"],
        "base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct"}))

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_DATA", str(data))
        mp.setenv("WORKBENCH_TEMPLATES", str(tpl))
        mp.delenv("WORKBENCH_ALLOWED_ROOTS", raising=False)
        yield {"data": data, "templates": tpl, "root": root, "runs": runs, "mp": mp}
    shutil.rmtree(runs, ignore_errors=True)


# -- how a message reaches the user -------------------------------------------------------------------

def refused(client, api_name, *args, **kwargs) -> str:
    """The gr.Error text the user sees as a toast (AppError for an API caller)."""
    try:
        result = client.predict(*args, api_name=api_name, **kwargs)
    except AppError as e:
        return str(e)
    return f"NOT REFUSED, returned: {result!r}"[:500]


def load_status(client, source, fmt="auto", column_map="", skip=False) -> str:
    """The Data tab's status line after Load (it also raises a gr.Warning toast with the same text)."""
    status = client.predict(source, "", "train", fmt, column_map, skip, 25, api_name="/load_dataset")[0]
    assert status.startswith("❌"), status
    return status


def template_status(client, text, name, overwrite=False) -> str:
    status = client.predict(text, name, overwrite, api_name="/save_template")[0]
    assert status.startswith("❌ Not saved"), status
    return status


def start(client, **settings) -> str:
    message = refused(client, "/start_training", **{**TINY_API, **settings})
    if message.startswith("NOT REFUSED"):  # a run slipped through: end it so the next cases are not affected
        client.predict(api_name="/stop_training")
        wait_idle(client)
    return message


def upload(client, env, name: str, content: bytes, api_name="/upload_dataset", *more) -> str:
    """A file sent from the browser: the upload button of the Data tab, or the Train tab's config upload."""
    path = env["root"] / "to-upload" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    return refused(client, api_name, handle_file(str(path)), *more)


def upload_over_limit(client, env) -> str:
    env["mp"].setenv("WORKBENCH_MAX_UPLOAD_MB", "0.001")  # 1 kB; the app reads it per upload
    return upload(client, env, "big.jsonl", b'{"instruction": "a", "output": "b"}\n' * 100)


def chat(client, message, base="default", adapter="(none)") -> str:
    return refused(client, "/chat", message, [], [], base, adapter, "auto", False, 8, 0.7, 0.9, 50, 1.1, False, 0)


def evaluate(client, run, source="test", data_path="") -> str:
    return refused(client, "/evaluate", run, source, None, data_path, 2, 0, 2, 8, False)


def d(env, name) -> str:
    return str(env["data"] / name)


def r(env, name) -> str:
    return str(env["runs"] / name)


TEMPLATE_OK = 'kind: instruction\nprompt: "Q: {instruction}\\nA: "\nresponse: "{output}"\n'

CASES = [
    # -- dataset files ---------------------------------------------------------------------------------
    ("empty file", lambda c, e: load_status(c, d(e, "empty.jsonl")), "is empty (0 bytes)"),
    ("whitespace only", lambda c, e: load_status(c, d(e, "spaces.jsonl")), "holds only whitespace"),
    ("not UTF-8", lambda c, e: load_status(c, d(e, "latin1.jsonl")), "is not UTF-8 text"),
    ("binary named .json", lambda c, e: load_status(c, d(e, "picture.json")), "looks like a binary file"),
    ("JSON list of numbers", lambda c, e: load_status(c, d(e, "numbers.json")), "no known format fits"),
    ("no format fits", lambda c, e: load_status(c, d(e, "cols.jsonl")),
     "no known format fits the columns found (label, text)"),
    ("malformed lines", lambda c, e: load_status(c, d(e, "broken.jsonl")), "2 malformed lines"),
    ("CSV header only", lambda c, e: load_status(c, d(e, "header_only.csv")), "holds no rows"),
    ("unsupported type", lambda c, e: load_status(c, d(e, "notes.txt")), "unsupported file type"),
    ("missing file", lambda c, e: load_status(c, d(e, "nope.jsonl")), "dataset file not found"),
    ("no dataset given", lambda c, e: load_status(c, "   "), "no dataset given"),
    ("path escape", lambda c, e: load_status(c, "../../../../etc/passwd"), "outside the folders"),
    ("absolute path outside", lambda c, e: load_status(c, str(e["root"] / "outside.jsonl")), "outside the folders"),
    ("symlink out of data/", lambda c, e: load_status(c, d(e, "passwd.jsonl")), "outside the folders"),
    ("hub id offline", lambda c, e: load_status(c, "nobody/no-such-dataset"), "not cached locally"),
    ("column map syntax", lambda c, e: load_status(c, DOLLY[0], column_map="context→input, oops"),
     "column map entry 'oops'"),
    ("column map names a missing column", lambda c, e: load_status(c, DOLLY[0], column_map="question→instruction"),
     "not in the data"),
    ("format that does not fit", lambda c, e: load_status(c, DOLLY[0], fmt="sharegpt"),
     "format sharegpt needs columns"),
    ("row out of range", lambda c, e: refused(c, "/dataset_row", *DOLLY, 100000), "there is no row 100000"),
    ("page of a file outside", lambda c, e: refused(c, "/dataset_page", "/etc/hostname", "", "train", "auto", "",
                                                     "", "(all)", 1, 10), "outside the folders"),
    ("clean a file outside", lambda c, e: refused(c, "/clean_dataset", "/etc/hostname", "", "train", "auto", "", 0, 0,
                                                   "", True, True, 0.85, True, "default"), "outside the folders"),
    ("evaluate a data file outside", lambda c, e: evaluate(c, r(e, "completed-no-adapter"), "file", "/etc/hostname"),
     "outside the folders"),
    # -- template files --------------------------------------------------------------------------------
    ("template not YAML", lambda c, e: template_status(c, "prompt: [unclosed", "t_yaml"), "not valid YAML"),
    ("template is a list", lambda c, e: template_status(c, "- a\n- b\n", "t_list"), "must be a YAML mapping"),
    ("template unknown keys", lambda c, e: template_status(c, TEMPLATE_OK + "script: rm -rf /\n", "t_keys"),
     "unknown template keys: script"),
    ("template unknown kind", lambda c, e: template_status(c, TEMPLATE_OK.replace("instruction", "python", 1),
                                                           "t_kind"), "template kind must be"),
    ("template without prompt", lambda c, e: template_status(c, "kind: instruction\nresponse: '{output}'\n", "t_np"),
     "needs a 'prompt'"),
    ("template response without placeholder",
     lambda c, e: template_status(c, TEMPLATE_OK.replace('"{output}"', '"fixed"'), "t_resp"),
     "must contain a placeholder"),
    ("template name escapes", lambda c, e: template_status(c, TEMPLATE_OK, "../../escape"), "template name"),
    ("template replaces a shipped one", lambda c, e: template_status(c, TEMPLATE_OK, "alpaca"), "already exists"),
    ("template draft broken", lambda c, e: refused(c, "/preview_template_draft", "kind: [", *DOLLY[:1], "", 0,
                                                   "default", 512, "responses"), "not valid YAML"),
    ("template unknown name", lambda c, e: refused(c, "/preview_template", *DOLLY, 0, "klingon", "default", 512,
                                                   "responses"), "template 'klingon' not found"),
    ("template name as a path", lambda c, e: refused(c, "/template_source", "../../etc/passwd"),
     "template name '../../etc/passwd' must be"),
    # -- config values ---------------------------------------------------------------------------------
    ("learning rate 0", lambda c, e: start(c, train__learning_rate=0), "train.learning_rate must be > 0.0"),
    ("batch size 0", lambda c, e: start(c, train__batch_size=0), "train.batch_size must be >= 1"),
    ("batch size 2.5", lambda c, e: start(c, train__batch_size=2.5), "train.batch_size must be a whole number"),
    ("unknown optimizer", lambda c, e: start(c, train__optimizer="adamw_9000"), "not in the list of choices"),
    ("no rows left to train", lambda c, e: start(c, data__val_size=0.5, data__test_size=0.45),
     "must leave rows to train on"),
    ("column map not a mapping", lambda c, e: start(c, data__column_map="[a, b]"),
     "data.column_map must be a mapping"),
    ("qlora on 8-bit", lambda c, e: start(c, adapter__method="qlora", model__quantization="8bit"),
     "qlora trains on a 4-bit base"),
    ("data file missing", lambda c, e: start(c, data__source="data/nope.jsonl"), "data.source: file not found"),
    ("train on a file outside", lambda c, e: start(c, data__source=str(e["root"] / "outside.jsonl")),
     "outside the folders"),
    ("resume a completed run", lambda c, e: refused(c, "/resume_training", r(e, "completed-no-adapter")),
     "only a stopped or interrupted run can be resumed"),
    ("resume without a checkpoint", lambda c, e: refused(c, "/resume_training", r(e, "stopped-no-checkpoint")),
     "has no checkpoint to resume from"),
    ("resume outside outputs", lambda c, e: refused(c, "/resume_training", "/etc"), "is not a run this app may use"),
    ("config path outside", lambda c, e: refused(c, "/load_config", None, "/etc/ssl/openssl.yaml"),
     "outside the folders this app may read"),
    ("config name with a folder", lambda c, e: refused(c, "/save_config", "../evil", False, 1, **TINY_API),
     "no folders"),
    # -- model ids -------------------------------------------------------------------------------------
    ("train a model folder outside", lambda c, e: start(c, model__name="/etc"), "outside the folders"),
    ("train a folder that is no model", lambda c, e: start(c, model__name=str(e["data"])), "model.name"),
    ("chat with an uncached hub model", lambda c, e: refused(c, "/load_adapter", "nobody/no-such-model", "(none)"),
     "not in the local Hugging Face cache"),
    ("tokenizer of a folder outside", lambda c, e: refused(c, "/preview_template", *DOLLY, 0, "alpaca", "~/.ssh", 512,
                                                           "responses"), "outside the folders"),
    ("stats with an uncached model", lambda c, e: refused(c, "/dataset_stats", *DOLLY, "nobody/no-such-model"),
     "not in the local Hugging Face cache"),
    # -- adapter folders -------------------------------------------------------------------------------
    ("adapter outside", lambda c, e: refused(c, "/load_adapter", "default", "/etc"), "outside the folders"),
    ("adapter folder empty", lambda c, e: refused(c, "/load_adapter", "default", r(e, "empty-folder")),
     "holds no adapter_config.json"),
    ("adapter config corrupt", lambda c, e: refused(c, "/load_adapter", "default", r(e, "corrupt-adapter")),
     "the adapter does not fit"),
    ("adapter weights missing", lambda c, e: refused(c, "/load_adapter", "default", r(e, "weightless-adapter")),
     "the adapter does not fit"),
    ("run without an adapter", lambda c, e: chat(c, "hello", adapter=r(e, "completed-no-adapter")),
     "has no saved adapter yet"),
    ("evaluate a run without an adapter", lambda c, e: evaluate(c, r(e, "completed-no-adapter")),
     "has no saved adapter yet"),
    ("evaluate no run", lambda c, e: evaluate(c, ""), "choose a run"),
    ("delete without confirmation", lambda c, e: refused(c, "/delete_run", r(e, "completed-no-adapter"), False),
     "tick the confirmation box"),
    ("merge into a folder outside", lambda c, e: refused(c, "/merge_adapter", r(e, "completed-no-adapter"), "/tmp/x"),
     "outside the folders"),
    # -- uploads ---------------------------------------------------------------------------------------
    ("upload an executable", lambda c, e: upload(c, e, "tool.exe", b"MZ\x90\x00"), "Invalid file type"),
    ("upload over the size limit", lambda c, e: upload_over_limit(c, e), "upload limit"),
    ("upload a config with a bad value", lambda c, e: upload(c, e, "run.yaml", b"train:\n  max_steps: lots\n",
                                                             "/load_config", ""), "train.max_steps must be a number"),
    ("upload a config that is no mapping", lambda c, e: upload(c, e, "list.yaml", b"- 1\n- 2\n", "/load_config", ""),
     "mapping"),
]


@pytest.mark.parametrize("call,expected", [pytest.param(call, expected, id=name) for name, call, expected in CASES])
def test_bad_input_is_refused_clearly_and_changes_nothing(client, env, call, expected):
    roots = watched_roots() + [env["data"], env["templates"]]
    before = tree_snapshot(*roots)
    try:
        message = call(client, env)
    finally:
        env["mp"].delenv("WORKBENCH_MAX_UPLOAD_MB", raising=False)
    assert expected in message, message
    assert "Traceback" not in message
    # The app still answers, with real work: a page of the bundled dataset.
    table, info, page = client.predict(*DOLLY, "", "(all)", 1, 10, api_name="/dataset_page")
    assert page == 1 and len(table["data"]) == 10 and "of 240" in info
    assert not client.predict(api_name="/training_status")["active"]  # no run slipped through
    assert diff_snapshots(before, tree_snapshot(*roots)) == {}
    assert leftovers(*roots) == []


def test_at_least_thirty_cases_across_every_kind_of_input():
    assert len(CASES) >= 30


# -- secure defaults that only the UI endpoints can show --------------------------------------------------

@pytest.mark.parametrize("evil", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{instruction.__class__.__mro__}",
    "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
    "{__import__('os').system('id')}",
])
def test_template_code_renders_as_plain_text_through_the_ui(client, env, evil):
    """A template (saved or a draft) is data: placeholders are a fixed list filled by a regex, so Jinja and
    attribute lookups stay literal text in the prompt; nothing is evaluated."""
    text = f'kind: instruction\nprompt: "{evil}\\n{{instruction}}\\n"\nresponse: "{{output}}"\n'
    prompt, target, _, html = client.predict(text, DOLLY[0], "", 0, "default", 512, "responses",
                                             api_name="/preview_template_draft")
    assert prompt == f"{evil}\nWhy does ice float on water?\n"  # verbatim: no class names, no subclass list
    assert "<class" not in prompt + target and "uid=" not in prompt
    status, _ = client.predict(text, "evil_probe", True, api_name="/save_template")
    assert status.startswith("✅"), status  # a template is data: saving it is harmless
    prompt, *_ = client.predict(*DOLLY, 0, "evil_probe", "default", 512, "responses", api_name="/preview_template")
    assert prompt == f"{evil}\nWhy does ice float on water?\n"


def test_model_kind_template_uses_the_sandboxed_chat_template(client):
    """The 'model' kind renders the tokenizer's own chat template in transformers' sandboxed Jinja; row text
    that looks like Jinja is data, never evaluated."""
    row = "{{ ''.__class__.__mro__ }} {% raw %}"
    path = Path(outputs_dir()) / "jinja-row.jsonl"  # outputs/ is readable by the UI
    path.write_text(json.dumps({"instruction": row, "output": "ok"}) + "\n")
    try:
        prompt, target, *_ = client.predict(str(path), "", "train", "auto", "", 0, "model", "default", 512,
                                            "responses", api_name="/preview_template")
    finally:
        path.unlink()
    assert row in prompt and "<class" not in prompt and target.startswith("ok")


@pytest.mark.parametrize("path", ["/etc/passwd", "app.py", "data/dolly_sample.jsonl", "outputs"])
def test_the_file_route_serves_nothing_outside_gradios_own_uploads(app_url, path):
    """Gradio's /file= route is how a browser fetches a file: it must not hand out the server's files
    (project sources, datasets, run outputs), only what the app itself put in its temp folder."""
    import urllib.error
    import urllib.request

    from conftest import ROOT

    target = path if path.startswith("/") else str(ROOT / path) if path != "outputs" else str(
        next(outputs_dir().rglob("*.json*"), outputs_dir()))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{app_url}/gradio_api/file={target}", timeout=10)
    assert e.value.code in (403, 404)
