"""The Runs, Chat and Evaluate endpoints driven by gradio_client against the real app and a real short run."""
import json
import shutil
import time

import pytest
import torch
from gradio_client.exceptions import AppError

from conftest import free_port
from workbench.core.paths import outputs_dir
from workbench.runs.folder import RunDir

pytestmark = pytest.mark.slow

SETTINGS = dict(max_new_tokens=16, temperature=0.7, top_p=0.9, top_k=50, repetition_penalty=1.1, do_sample=False,
                seed=0)


def _chat_args(message, adapter, history=(), base="default", compare=False, template="auto", **overrides):
    s = {**SETTINGS, **overrides}
    return (message, list(history), [], base, adapter, template, compare, s["max_new_tokens"], s["temperature"],
            s["top_p"], s["top_k"], s["repetition_penalty"], s["do_sample"], s["seed"])


def _chat(client, *args, **kwargs):
    return client.predict(*_chat_args(*args, **kwargs), api_name="/chat")


def _text(message) -> str:
    content = message["content"]
    if isinstance(content, list):
        return "".join(c.get("text", "") for c in content if isinstance(c, dict))
    return content


@pytest.fixture(scope="module")
def api_runs(lora_run):
    """Two copies of the session run inside outputs/ (the UI only reaches runs there); the second one
    with another learning rate so the comparison has a difference to show."""
    first = outputs_dir() / "20990101-000000-api-a"
    second = outputs_dir() / "20990101-000001-api-b"
    for target in (first, second):
        shutil.copytree(lora_run.run_dir, target, ignore=shutil.ignore_patterns("checkpoints", "eval", "merged"))
    cfg = (second / "config.yaml").read_text()
    (second / "config.yaml").write_text(cfg.replace("learning_rate: 0.002", "learning_rate: 0.0005"))
    yield RunDir(first), RunDir(second)
    for target in (first, second):
        shutil.rmtree(target, ignore_errors=True)


def test_runs_are_listed_compared_and_opened(client, api_runs):
    a, b = api_runs
    table, _, _ = client.predict(api_name="/list_runs")
    ids = [row[0] for row in table["data"]]
    assert a.id in ids and b.id in ids
    row = table["data"][ids.index(a.id)]
    assert dict(zip(table["headers"], row))["status"] == "completed"

    fig, diff = client.predict([str(a.path), str(b.path)], api_name="/compare_runs")
    assert [r[0] for r in diff["data"]] == ["train.learning_rate"]
    assert diff["headers"] == ["setting", a.id, b.id]
    plot = json.loads(fig["plot"]) if isinstance(fig, dict) and isinstance(fig.get("plot"), str) else fig
    assert len(plot["data"]) >= 2
    with pytest.raises(AppError, match="at least two"):
        client.predict([str(a.path)], api_name="/compare_runs")

    config, status, _, evals_md, plan_md, out_dir = client.predict(str(a.path), api_name="/open_run")
    assert "reverse_instruction" in config and status["state"] == "completed"
    assert "MB" in plan_md and out_dir.endswith("merged")


def test_chat_streams_a_reply_and_compares_with_base(client, api_runs):
    a, _ = api_runs
    status = client.predict("default", str(a.path), api_name="/load_adapter")
    assert "Loaded" in status and "adapter" in status
    history, base_history, box = _chat(client, "Paris is the capital of France.", str(a.path), compare=True)
    assert box == ""
    assert history[0]["role"] == "user" and history[-1]["role"] == "assistant" and _text(history[-1]).strip()
    assert base_history[-1]["role"] == "assistant" and _text(base_history[-1]).strip()
    # A second turn carries the history.
    history2, _, _ = _chat(client, "Water boils at 100 degrees Celsius.", str(a.path), history=history)
    assert len(history2) == 4 and _text(history2[-1]).strip()
    assert client.predict(api_name="/stop_chat")
    with pytest.raises(AppError, match="type a message"):
        _chat(client, "  ", str(a.path))


def test_stop_ends_a_long_reply_early(client, api_runs):
    a, _ = api_runs
    job = client.submit(*_chat_args("Count from 1 to 1000, one number per line.", str(a.path), template="model",
                                    max_new_tokens=600, repetition_penalty=1.0), api_name="/chat")
    t0 = time.time()
    while not any(_text(h[0][-1]) for h in job.outputs() if h[0]) and time.time() - t0 < 120:
        time.sleep(0.2)
    assert client.predict(api_name="/stop_chat") == "⏹ stopped"
    t_stop = time.time()
    while not job.done() and time.time() - t_stop < 60:
        time.sleep(0.2)
    assert job.done() and time.time() - t_stop < 30  # not the minutes 600 tokens would take here
    reply = _text(job.outputs()[-1][0][-1])
    assert reply.strip() and len(reply.split()) < 300


def test_adapter_for_another_base_is_refused(client, api_runs):
    a, _ = api_runs
    foreign = outputs_dir() / "foreign-adapter"
    shutil.copytree(a.adapter, foreign, dirs_exist_ok=True)
    cfg = json.loads((foreign / "adapter_config.json").read_text())
    (foreign / "adapter_config.json").write_text(json.dumps({**cfg, "base_model_name_or_path": "gpt2"}))
    try:
        with pytest.raises(AppError, match="trained for base model gpt2"):
            client.predict("default", str(foreign), api_name="/load_adapter")
        with pytest.raises(AppError, match="outside the folders"):
            client.predict("default", "/etc", api_name="/load_adapter")
    finally:
        shutil.rmtree(foreign)


def test_evaluate_eight_rows_sort_and_export(client, api_runs):
    a, _ = api_runs
    summary, table, name = client.predict(str(a.path), "file", None, "data/dolly_sample.jsonl", 8, 0, 8, 16, True,
                                          api_name="/evaluate")
    assert len(table["data"]) == 8 and name == "dolly_sample-n8-seed0"
    rows = [dict(zip(table["headers"], r)) for r in table["data"]]
    for r in rows:
        assert r["generated"].strip() and r["ground_truth"].strip() and r["base_generated"] is not None
        for key in ("rouge_l", "bleu", "base_rouge_l", "base_bleu"):
            assert 0.0 <= float(r[key]) <= 1.0
    assert "ROUGE-L" in summary and "base model" in summary
    saved = json.loads((a.path / "eval" / f"{name}.json").read_text())
    assert saved["n"] == 8 and set(saved) >= {"adapter_rouge_l", "base_rouge_l", "adapter_bleu", "base_bleu"}

    worst = client.predict(table, "ROUGE-L, worst first", api_name="/sort_eval")
    scores = [float(r[table["headers"].index("rouge_l")]) for r in worst["data"]]
    assert scores == sorted(scores)
    exported = client.predict(str(a.path), name, worst, api_name="/export_eval_csv")
    assert exported.endswith(".csv") and (a.path / "eval" / f"{name}.csv").is_file()
    with pytest.raises(AppError, match="upload a file or give a data file path"):
        client.predict(str(a.path), "file", None, "", 2, 0, 2, 8, False, api_name="/evaluate")


def test_evaluate_in_one_call_with_a_judge(client, api_runs):
    """/evaluate takes the judge settings too: a half-set judge is refused before any generation; a judge at a
    real closed port fails its rows (each with its status), never the evaluation."""
    a, _ = api_runs
    form = (str(a.path), "file", None, "data/dolly_sample.jsonl", 2, 0, 2, 8, True, "")
    with pytest.raises(AppError, match="needs the judge's model name"):
        client.predict(*form, "score", "http://127.0.0.1:9/v1", "", api_name="/evaluate")
    closed = f"http://127.0.0.1:{free_port()}/v1"
    summary, table, name = client.predict(*form, "pairwise", closed, "judge-m", "", "", "", 2, api_name="/evaluate")
    rows = [dict(zip(table["headers"], r)) for r in table["data"]]
    assert len(rows) == 2 and all(r["judge_status"].startswith("unreachable host") for r in rows), rows
    assert "**Judge** `judge-m` · pairwise mode" in summary and "2 row(s) failed to be judged" in summary
    saved = json.loads((a.path / "eval" / f"{name}.json").read_text())["judge"]
    assert (saved["mode"], saved["model"], saved["failed_rows"]) == ("pairwise", "judge-m", 2)


def test_merge_gives_the_same_greedy_text_as_base_plus_adapter(client, api_runs, model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, b = api_runs
    message = client.predict(str(b.path), "", api_name="/merge_adapter")
    merged_dir = b.path / "merged"
    assert "Merged model saved" in message and (merged_dir / "model.safetensors").is_file()
    with pytest.raises(AppError, match="not empty"):
        client.predict(str(b.path), "", api_name="/merge_adapter")

    tok = AutoTokenizer.from_pretrained(str(merged_dir))
    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir)).eval()
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(model_dir)), str(b.adapter)).eval()
    ids = tok("### Instruction:\nUse the Input below to create an instruction, which could have been used to "
              "generate the input using an LLM.\n\n### Input:\nThe Nile is the longest river in Africa.\n\n"
              "### Response:\n", return_tensors="pt")
    with torch.inference_mode():
        g1 = merged.generate(**ids, max_new_tokens=16, do_sample=False)
        g2 = peft.generate(**ids, max_new_tokens=16, do_sample=False)
    assert tok.decode(g1[0]) == tok.decode(g2[0])

    zipped = client.predict(str(b.path), api_name="/export_adapter")
    assert zipped.endswith("-adapter.zip")


def test_delete_needs_confirmation(client, lora_run):
    victim = outputs_dir() / "20990101-000002-api-delete"
    shutil.copytree(lora_run.run_dir, victim, ignore=shutil.ignore_patterns("checkpoints", "eval", "merged"))
    with pytest.raises(AppError, match="confirmation"):
        client.predict(str(victim), False, api_name="/delete_run")
    assert victim.exists()
    message, table, *_ = client.predict(str(victim), True, api_name="/delete_run")
    assert "Deleted" in message and not victim.exists()
    assert victim.name not in [r[0] for r in table["data"]]
