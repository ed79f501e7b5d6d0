"""`serve` with limits, and honest (issue 23.6): fields the server does not implement, too many stop strings,
a wrong key or a body over the limit (refused before the body is read), a full queue (429 + Retry-After), a
client that goes away (its rows are not generated), a fresh seed per sampled request. Real uvicorn server on
a free port, the official `openai` client where it can send the bad thing, httpx or a raw socket where it
cannot; after every refusal the server still answers a good request."""
from __future__ import annotations

import socket
import threading
import time

import httpx
import openai
import pytest

from conftest import free_port
from workbench.config.tasks import ServeConfig
from workbench.serving.server import start_in_thread

KEY = "limits-s3cret"
ASK = "The tide came in slowly over the flat grey sand."
LIMIT = 4096  # bytes of request body this test server accepts


@pytest.fixture(scope="module")
def srv(lora_run):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WB_TEST_LIMITS_KEY", KEY)
        # One row per batch and one waiting request, so the queue test can fill the queue with two requests.
        s = start_in_thread(ServeConfig(run=str(lora_run.run_dir), port=free_port(), max_prompt_tokens=256,
                                        api_key_env="WB_TEST_LIMITS_KEY", max_body_bytes=LIMIT, max_queue=1,
                                        max_batch=1, batch_wait_ms=0))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def api(srv):
    return openai.OpenAI(base_url=srv.url, api_key=KEY, max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def run_id(lora_run):
    return lora_run.run_dir.name


def chat(api, model, text=ASK, **kw):
    return api.chat.completions.create(model=model, messages=[{"role": "user", "content": text}],
                                       **{"max_tokens": 6, **kw})


def still_serving(api, run_id) -> None:
    assert chat(api, run_id).choices[0].message.content.strip()


TOOL = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}}
CHAT_REFUSED = [
    ("tools", {"tools": [TOOL]}),
    ("tool_choice", {"tool_choice": "required"}),
    ("functions", {"functions": [TOOL["function"]]}),
    ("function_call", {"function_call": {"name": "weather"}}),
    ("response_format", {"response_format": {"type": "json_object"}}),
    ("response_format", {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}),
    ("logprobs", {"logprobs": True}),
    ("top_logprobs", {"top_logprobs": 3}),
    ("logit_bias", {"logit_bias": {"42": -100}}),
]


@pytest.mark.slow
@pytest.mark.parametrize("field,extra", CHAT_REFUSED, ids=[f"{f}-{i}" for i, (f, _) in enumerate(CHAT_REFUSED)])
def test_chat_fields_the_server_does_not_implement_are_refused_by_name(api, run_id, field, extra):
    with pytest.raises(openai.BadRequestError) as e:
        chat(api, run_id, **extra)
    assert e.value.status_code == 400
    assert e.value.body["param"] == field and f"'{field}'" in e.value.body["message"]
    assert e.value.body["code"] == "unsupported_parameter"
    still_serving(api, run_id)


COMPLETION_REFUSED = [("logprobs", {"logprobs": 2}), ("echo", {"echo": True}), ("suffix", {"suffix": " end."}),
                      ("best_of", {"best_of": 3})]


@pytest.mark.slow
@pytest.mark.parametrize("field,extra", COMPLETION_REFUSED, ids=[f for f, _ in COMPLETION_REFUSED])
def test_completion_fields_the_server_does_not_implement_are_refused_by_name(api, run_id, field, extra):
    with pytest.raises(openai.BadRequestError) as e:
        api.completions.create(model="base", prompt="Once upon a time", max_tokens=4, **extra)
    assert e.value.status_code == 400 and e.value.body["param"] == field and f"'{field}'" in e.value.message
    still_serving(api, run_id)


@pytest.mark.slow
def test_the_values_that_mean_not_used_are_accepted(api, run_id):
    reply = chat(api, run_id, response_format={"type": "text"}, logprobs=False, tool_choice="none")
    assert reply.choices[0].message.content.strip()


@pytest.mark.slow
def test_at_most_four_stop_strings(api, run_id):
    with pytest.raises(openai.BadRequestError) as e:
        chat(api, run_id, stop=["a1", "b2", "c3", "d4", "e5"])
    assert e.value.body["param"] == "stop" and "at most 4" in e.value.body["message"]
    assert chat(api, run_id, stop=["a1", "b2", "c3", "d4"]).choices[0].message.content is not None
    still_serving(api, run_id)


def _raw_headers_only(srv, headers: str) -> str:
    """Send a request's headers and none of its (announced) body; return the server's first reply line. A
    server that waited for the body would never answer: the socket's timeout fails the test."""
    host, port = srv.url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=20) as s:
        s.sendall((f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                   f"{headers}\r\n").encode())
        # Read to the server's close (it answers 'connection: close'): one recv may return the headers without
        # the body, which arrives in a second segment.
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
        return answer.decode(errors="replace")


@pytest.mark.slow
def test_key_and_body_size_are_checked_before_the_body_is_read(srv, api, run_id):
    huge = "Content-Length: 500000000\r\n"
    for auth in ("", "Authorization: Bearer wrong\r\n"):
        answer = _raw_headers_only(srv, huge + auth)
        assert answer.startswith("HTTP/1.1 401") and "invalid_api_key" in answer, answer
    answer = _raw_headers_only(srv, huge + f"Authorization: Bearer {KEY}\r\n")
    assert answer.startswith("HTTP/1.1 413") and "max_body_bytes" in answer, answer

    # Through the client: a prompt that makes the body too large.
    with pytest.raises(openai.APIStatusError) as e:
        chat(api, run_id, "word " * LIMIT)
    assert e.value.status_code == 413 and "max_body_bytes" in e.value.message

    # A chunked body announces no length: counted as it arrives, refused once past the limit.
    def chunks():
        yield b'{"model": "' + run_id.encode() + b'", "messages": [{"role": "user", "content": "'
        for _ in range(64):
            yield b"x" * 1024
        yield b'"}]}'

    r = httpx.post(f"{srv.url}/chat/completions", content=chunks(), timeout=60,
                   headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["message"].startswith("The request body")
    still_serving(api, run_id)


def _wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.slow
def test_a_full_queue_gets_429_with_retry_after(srv, api, run_id):
    """The model is busy (the test holds its lock, as a long batch would): one request waits on the lock, one
    waits in the queue (max_queue=1), the next is refused at once; the first two are answered afterwards."""
    replies: list = []
    with srv.registry.cm.lock:
        first = threading.Thread(target=lambda: replies.append(chat(api, run_id)))
        first.start()
        time.sleep(1.0)  # taken by the batcher thread, which now waits for the lock
        assert srv.batcher.waiting == 0
        second = threading.Thread(target=lambda: replies.append(chat(api, run_id)))
        second.start()
        _wait_for(lambda: srv.batcher.waiting == 1)
        with pytest.raises(openai.RateLimitError) as e:
            chat(api, run_id)
        assert e.value.status_code == 429 and int(e.value.response.headers["retry-after"]) >= 1
        assert "max_queue" in e.value.message
    first.join(120)
    second.join(120)
    assert len(replies) == 2 and all(r.choices[0].message.content for r in replies)
    still_serving(api, run_id)


@pytest.mark.slow
def test_a_non_streamed_request_whose_client_left_is_not_generated(srv, api, run_id):
    before_cancelled, before_batches = srv.batcher.cancelled, srv.batcher.batches
    with srv.registry.cm.lock:  # the model is busy: the request waits for its batch
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{srv.url}/chat/completions", timeout=1.0, headers={"Authorization": f"Bearer {KEY}"},
                       json={"model": run_id, "messages": [{"role": "user", "content": ASK}], "max_tokens": 200})
        time.sleep(0.5)  # the server hears the disconnect
    _wait_for(lambda: srv.batcher.cancelled == before_cancelled + 1)
    assert srv.batcher.batches == before_batches + 1  # its batch ran, and generated nothing for the row
    still_serving(api, run_id)


@pytest.mark.slow
def test_sampled_requests_without_a_seed_get_a_fresh_one(api, run_id):
    sampled = [chat(api, run_id, temperature=1.5, max_tokens=12).choices[0].message.content for _ in range(3)]
    assert len(set(sampled)) > 1  # seed 0 every time gave three identical replies
    seeded = [chat(api, run_id, temperature=1.5, max_tokens=12, seed=11).choices[0].message.content
              for _ in range(2)]
    assert seeded[0] == seeded[1]
