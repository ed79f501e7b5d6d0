"""The OpenAI-compatible API: GET /v1/models, POST /v1/chat/completions and /v1/completions, plain or streamed
(server-sent events in OpenAI's chunk format). Every refusal is an OpenAI-style JSON error with a 4xx status,
and the server keeps serving. The key and the body size are checked before this app runs (server.py: Gate);
prompts are rendered and tokenized in a worker thread, never on the event loop."""
from __future__ import annotations

import asyncio
import json
import logging
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from workbench.config.tasks import ServeConfig
from workbench.core.errors import WorkbenchError
from workbench.generation.chat_model import chat_prompt, message_text
from workbench.serving import schemas as S
from workbench.serving.batcher import Batcher, Pending, QueueFull, Row
from workbench.serving.registry import ModelRegistry, Served, ServeError

log = logging.getLogger(__name__)
ROLES = ("system", "user", "assistant")
MAX_CHOICES = 64  # rows one request may add to the queue


class _Generation:
    """The rows of one request, submitted to the batcher; their events arrive on this request's loop."""

    def __init__(self, batcher: Batcher, served: Served, prompts: list[str], max_tokens: int, stops: list[str],
                 settings, seeded: bool):
        loop = asyncio.get_running_loop()
        self.events: asyncio.Queue = asyncio.Queue()
        self.left = len(prompts)

        def sink_for(i):
            def sink(delta, finish, tokens):
                try:
                    loop.call_soon_threadsafe(self.events.put_nowait, (i, delta, finish, tokens))
                except RuntimeError:  # the loop is gone (server shutting down): nobody is listening
                    pass
            return sink

        self.rows = [Row(p, max_tokens, stops, sink_for(i)) for i, p in enumerate(prompts)]
        try:
            batcher.submit(Pending(served, self.rows, settings, seeded))
        except QueueFull as e:
            raise ServeError(f"{e.args[0]} requests are already waiting on this server (max_queue); retry "
                             "shortly", 429, "rate_limit_exceeded", kind="rate_limit_error",
                             headers={"Retry-After": "1"}) from None

    async def __aiter__(self):
        try:
            while self.left:
                event = await self.events.get()
                if event[2] is not None:
                    self.left -= 1
                yield event
        finally:  # a client that went away (or a finished request) stops its rows at the next token
            for r in self.rows:
                r.cancelled.set()


def create_app(registry: ModelRegistry, batcher: Batcher, cfg: ServeConfig) -> FastAPI:
    app = FastAPI(title="workbench serve", docs_url=None, redoc_url=None)
    tok = registry.cm.tokenizer

    @app.exception_handler(ServeError)
    async def _serve_error(request: Request, e: ServeError):
        return JSONResponse(S.error_body(e.message, e.kind, e.code, e.param), status_code=e.status,
                            headers=e.headers)

    @app.exception_handler(WorkbenchError)
    async def _workbench_error(request: Request, e: WorkbenchError):
        return JSONResponse(S.error_body(e.display()), status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError):
        first = (e.errors() or [{}])[0]
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return JSONResponse(S.error_body(f"{param or 'body'}: {first.get('msg', 'invalid request')}", param=param),
                            status_code=400)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, e: HTTPException):
        return JSONResponse(S.error_body(str(e.detail), code=str(e.status_code)), status_code=e.status_code)

    @app.get("/health")
    async def health():
        return {"status": "ok", "models": list(registry.models)}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": m.name, "object": "model", "created": int(time.time()),
                                            "owned_by": "workbench", "root": m.source}
                                           for m in registry.models.values()]}

    def checked(req) -> None:
        """Refusals that need no tokenizer: fields this server does not implement, too many stop strings."""
        field = req.unsupported()
        if field:
            raise ServeError(f"Unsupported parameter: '{field}' is not supported by this server (it would change "
                             "what the reply means); the README's serve section lists the supported fields.", 400,
                             "unsupported_parameter", field)
        if len(req.stops()) > S.MAX_STOPS:
            raise ServeError(f"stop may hold at most {S.MAX_STOPS} strings; got {len(req.stops())}", 400,
                             "invalid_value", "stop")

    def budget(req, served: Served, prompts: list[str], field: str = "messages") -> tuple[int, int]:
        """(max new tokens, prompt tokens); runs in a worker thread (it tokenizes)."""
        asked = getattr(req, "max_completion_tokens", None) or req.max_tokens
        if asked is not None and asked < 1:
            raise ServeError(f"max_tokens must be at least 1; got {asked}", 400, "invalid_value", "max_tokens")
        if asked is not None and asked > cfg.max_tokens:
            raise ServeError(f"max_tokens may be at most {cfg.max_tokens} on this server; got {asked}", 400,
                             "invalid_value", "max_tokens")
        used = 0
        for p in prompts:
            n = len(tok(p, add_special_tokens=False)["input_ids"])
            if n > cfg.max_prompt_tokens:
                raise ServeError(f"This server accepts prompts of at most {cfg.max_prompt_tokens} tokens; yours "
                                 f"has {n}.", 400, "context_length_exceeded", field)
            used += n
        return int(asked or min(served.gen.max_new_tokens, cfg.max_tokens)), used

    def settings(req, served: Served):
        """The request's generation settings, and whether its seed is its own (False: the batcher picks a
        fresh one for a sampled request, so two requests without a seed do not draw the same reply)."""
        s = served.gen.copy()
        if req.temperature is not None:
            s.do_sample = req.temperature > 0  # 0 means the most likely token, as in OpenAI's API
            if s.do_sample:
                s.temperature = req.temperature
        if req.top_p is not None:
            s.top_p = req.top_p
        if req.seed is not None:
            s.seed = req.seed
        return s, req.seed is not None

    @app.post("/v1/chat/completions")
    async def chat(req: S.ChatRequest, request: Request):
        served = registry.get(req.model)
        checked(req)
        if not req.messages:
            raise ServeError("messages must hold at least one message", 400, "invalid_value", "messages")
        bad = [m.role for m in req.messages if m.role not in ROLES]
        if bad:
            raise ServeError(f"unsupported role {bad[0]!r}; roles are {', '.join(ROLES)}", 400, "invalid_value",
                             "messages")
        if req.messages[-1].role != "user":
            raise ServeError("the last message must be the user's", 400, "invalid_value", "messages")
        turns = [{"role": m.role, "content": message_text(m.content)} for m in req.messages]

        def prepare():
            prompt = chat_prompt(served.template, turns[:-1], turns[-1]["content"], tok)
            return prompt, *budget(req, served, [prompt])

        prompt, max_tokens, used = await asyncio.to_thread(prepare)
        gen = _Generation(batcher, served, [prompt] * req.n, max_tokens, _stops(served, req.stops(), tok),
                          *settings(req, served))
        rid = S.new_id("chatcmpl")
        if req.stream:
            return _sse(_chat_stream(gen, rid, req.model, used, req.include_usage()))
        texts, finishes, completion = await _collect(gen, request)
        return S.chat_response(rid, req.model, texts, finishes, S.usage(used, completion))

    @app.post("/v1/completions")
    async def complete(req: S.CompletionRequest, request: Request):
        served = registry.get(req.model)
        checked(req)
        texts_in = [req.prompt] if isinstance(req.prompt, str) else list(req.prompt)
        if not texts_in:
            raise ServeError("prompt must not be an empty list", 400, "invalid_value", "prompt")
        if len(texts_in) * req.n > MAX_CHOICES:
            raise ServeError(f"at most {MAX_CHOICES} completions per request (prompts × n); got "
                             f"{len(texts_in) * req.n}", 400, "invalid_value", "prompt")
        prompts = [p for p in texts_in for _ in range(req.n)]
        max_tokens, used = await asyncio.to_thread(budget, req, served, texts_in, "prompt")
        gen = _Generation(batcher, served, prompts, max_tokens, req.stops(), *settings(req, served))
        rid = S.new_id("cmpl")
        if req.stream:
            return _sse(_completion_stream(gen, rid, req.model, used, req.include_usage()))
        texts, finishes, completion = await _collect(gen, request)
        return S.completion_response(rid, req.model, texts, finishes, S.usage(used, completion))

    return app


def _stops(served: Served, asked: list[str], tokenizer) -> list[str]:
    """The template's stop strings (its end-of-turn markers), then the request's own."""
    from workbench.generation.decoding import stop_strings

    return list(dict.fromkeys([*stop_strings(served.template, tokenizer), *asked]))


async def _collect(gen: _Generation, request: Request) -> tuple[list[str], list[str], int]:
    """A non-streamed reply, whole; its rows are cancelled (they leave their batch at the next token, or are
    never generated) as soon as the client disconnects."""
    texts, finishes, tokens = [""] * len(gen.rows), [""] * len(gen.rows), [0] * len(gen.rows)

    async def gather():
        async for i, delta, finish, n in gen:
            texts[i] += delta
            tokens[i] = n
            if finish is not None:
                finishes[i] = finish

    async def disconnected():
        while (await request.receive())["type"] != "http.disconnect":
            pass

    work, gone = asyncio.ensure_future(gather()), asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not work.done():  # the client went away (or this handler was cancelled): stop its rows
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
    if work.cancelled():
        raise ServeError("the client closed the connection", 499, "client_closed")
    work.result()
    if "error" in finishes:
        raise ServeError("generation failed on the server; see its log", 500, "server_error", kind="server_error")
    return texts, finishes, sum(tokens)


def _sse(events) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _data(obj) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


async def _chat_stream(gen: _Generation, rid: str, model: str, used: int, include_usage: bool):
    for i in range(len(gen.rows)):
        yield _data(S.chat_chunk(rid, model, i, {"role": "assistant", "content": ""}, None))
    tokens = [0] * len(gen.rows)
    async for i, delta, finish, n in gen:
        tokens[i] = n
        if finish == "error":
            yield _data(S.error_body("generation failed on the server", "server_error"))
            break
        if delta:
            yield _data(S.chat_chunk(rid, model, i, {"content": delta}, None))
        if finish is not None:
            yield _data(S.chat_chunk(rid, model, i, {}, finish))
    if include_usage:
        yield _data(S.chat_chunk(rid, model, None, None, None, S.usage(used, sum(tokens))))
    yield "data: [DONE]\n\n"


async def _completion_stream(gen: _Generation, rid: str, model: str, used: int, include_usage: bool):
    tokens = [0] * len(gen.rows)
    async for i, delta, finish, n in gen:
        tokens[i] = n
        if finish == "error":
            yield _data(S.error_body("generation failed on the server", "server_error"))
            break
        if delta or finish is not None:
            chunk = S.completion_response(rid, model, [""] * len(gen.rows), [None] * len(gen.rows), None)
            chunk["choices"] = [{"index": i, "text": delta, "logprobs": None, "finish_reason": finish}]
            yield _data(chunk)
    if include_usage:
        yield _data({**S.completion_response(rid, model, [], [], None), "usage": S.usage(used, sum(tokens))})
    yield "data: [DONE]\n\n"
