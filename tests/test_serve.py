"""`serve`: a run's adapter on an OpenAI-compatible API, driven by the official `openai` client against a real
uvicorn server on a free port (the session's 3-step LoRA run, replies of at most 8 tokens)."""
from __future__ import annotations

import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from conftest import PY, ROOT, free_port
from workbench.config.tasks import ServeConfig
from workbench.jobs.queue import Job
from workbench.jobs.processes import devices_for
from workbench.serving.server import start_in_thread

ASK = "The tide came in slowly over the flat grey sand."


@pytest.fixture(scope="module")
def served(lora_run):
    srv = start_in_thread(ServeConfig(run=str(lora_run.run_dir), port=free_port(), max_prompt_tokens=256))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def api(served):
    return openai.OpenAI(base_url=served.url, api_key="unused", max_retries=0, timeout=120)


def chat(api, model, text, **kw):
    return api.chat.completions.create(model=model, messages=[{"role": "user", "content": text}],
                                       max_tokens=8, **kw)


@pytest.mark.slow
def test_models_chat_stream_and_completion_through_the_openai_client(served, api, lora_run):
    from workbench.config.decoding import GenerationConfig
    from workbench.generation.stream import chat_once

    run_id = lora_run.run_dir.name
    assert [m.id for m in api.models.list()] == [run_id, "base"]
    reply = chat(api, run_id, ASK)
    text = reply.choices[0].message.content
    assert text.strip() and reply.choices[0].finish_reason in ("stop", "length")
    u = reply.usage
    assert 0 < u.completion_tokens <= 8 and u.prompt_tokens > 10
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    # The same words the Chat tab shows for this message (same template, greedy, same weights).
    model = served.registry.models[run_id]
    assert text == chat_once(served.registry.cm, [], ASK, GenerationConfig(max_new_tokens=8), model.template)

    chunks = list(chat(api, run_id, ASK, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == \
        [reply.choices[0].finish_reason]
    assert chunks[-1].usage.completion_tokens == u.completion_tokens

    done = api.completions.create(model="base", prompt="Once upon a time", max_tokens=6, stop=["\n\n"])
    assert done.choices[0].text and done.usage.completion_tokens <= 6
    streamed = "".join(c.choices[0].text for c in api.completions.create(
        model="base", prompt="Once upon a time", max_tokens=6, stop=["\n\n"], stream=True) if c.choices)
    assert streamed == done.choices[0].text
    assert len(chat(api, run_id, ASK, n=2).choices) == 2


@pytest.mark.slow
def test_concurrent_requests_are_batched_and_never_mixed(served, api, lora_run):
    run_id = lora_run.run_dir.name
    asks = [ASK, "A recipe for bread needs flour, water, salt and time.", "Mountains"]
    alone = [chat(api, run_id, a).choices[0].message.content for a in asks]
    before = served.batcher.batches
    barrier = threading.Barrier(len(asks))

    def ask(a):
        barrier.wait()
        return chat(api, run_id, a).choices[0].message.content

    with ThreadPoolExecutor(len(asks)) as pool:
        together = list(pool.map(ask, asks))
    assert together == alone  # each reply is its own prompt's, word for word
    assert served.batcher.batches - before < len(asks)  # at least two of them shared one generate call


@pytest.mark.slow
def test_bad_requests_get_openai_errors_and_the_server_keeps_serving(served, api, lora_run, monkeypatch):
    run_id = lora_run.run_dir.name
    with pytest.raises(openai.NotFoundError) as e:
        chat(api, "no-such-model", ASK)
    assert e.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError, match="messages"):
        api.chat.completions.create(model=run_id, messages=[], max_tokens=4)
    with pytest.raises(openai.BadRequestError, match="max_tokens must be at least 1"):
        api.chat.completions.create(model=run_id, messages=[{"role": "user", "content": ASK}], max_tokens=-3)
    with pytest.raises(openai.BadRequestError) as e:
        chat(api, run_id, "word " * 400)
    assert e.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError, match="temperature"):
        chat(api, run_id, ASK, temperature=9)

    monkeypatch.setenv("WB_TEST_SERVE_KEY", "s3cret")
    keyed = start_in_thread(ServeConfig(run=str(lora_run.run_dir), port=free_port(), api_key_env="WB_TEST_SERVE_KEY"),
                            registry=served.registry)  # the same loaded weights behind a second app
    try:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=keyed.url, api_key="wrong", max_retries=0).models.list()
        good = openai.OpenAI(base_url=keyed.url, api_key="s3cret", max_retries=0)
        assert next(m.id for m in good.models.list()) == run_id
    finally:
        keyed.stop()
    assert chat(api, run_id, ASK).choices[0].message.content  # still serving after every refusal


def test_public_host_without_a_key_is_refused_before_loading_anything(tmp_path):
    out = subprocess.run([PY, "-m", "workbench", "serve", "--run", str(tmp_path), "--host", "0.0.0.0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2 and "a key is required" in out.stderr, out.stderr


def test_a_run_without_an_adapter_is_refused_with_the_loaders_message(tmp_path):
    """The models load on the batcher's thread: its error still reaches the CLI (exit 2, the message)."""
    out = subprocess.run([PY, "-m", "workbench", "serve", "--run", str(tmp_path), "--port", str(free_port())],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2 and "no adapter_config.json" in out.stderr, out.stderr


def test_a_serve_job_runs_beside_the_one_cpu_job_at_a_time():
    def job(kind, state="running"):
        return Job(id=kind, kind=kind, name=kind, config="", state=state, run_dir="")

    # On this CPU machine: a training job waits for another, but a server (mostly waiting) runs beside it.
    assert devices_for("train", 1, [job("eval")]) is None
    assert devices_for("serve", 1, [job("train")]) == ()
    assert devices_for("train", 1, [job("serve")]) == ()
