"""The OpenAI request bodies this server reads (unknown fields are ignored, as OpenAI-compatible servers do),
and the response objects it writes."""
from __future__ import annotations

import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str
    content: str | list[Any] | None = None


# Fields that change what a reply means and that this server does not implement: a request that uses one is
# refused by name (400) rather than answered as if it had not asked. The value that means "not used" is fine.
UNUSED = {"tools": ([], None), "functions": ([], None), "tool_choice": ("none", None),
          "function_call": ("none", None), "response_format": ({"type": "text"}, None),
          "logprobs": (False, None), "top_logprobs": (0, None), "logit_bias": ({}, None), "echo": (False, None),
          "suffix": ("", None), "best_of": (1, None)}
MAX_STOPS = 4  # as OpenAI's API


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    max_tokens: int | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=8)
    stream: bool = False
    stream_options: dict | None = None
    seed: int | None = Field(None, ge=0)

    logprobs: Any = None
    logit_bias: Any = None

    def unsupported(self) -> str | None:
        """The first field this request uses that the server does not implement."""
        return next((name for name, unused in UNUSED.items() if name in type(self).model_fields
                     and getattr(self, name) not in unused), None)

    def stops(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return [s for s in stops if s]

    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


class ChatRequest(_Sampling):
    messages: list[Message]
    max_completion_tokens: int | None = None  # the newer name of max_tokens
    tools: Any = None
    tool_choice: Any = None
    functions: Any = None
    function_call: Any = None
    response_format: Any = None
    top_logprobs: Any = None


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    echo: Any = None
    suffix: Any = None
    best_of: Any = None


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def chat_response(rid: str, model: str, texts: list[str], finishes: list[str], use: dict) -> dict:
    return {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": i, "message": {"role": "assistant", "content": t}, "logprobs": None,
                         "finish_reason": f} for i, (t, f) in enumerate(zip(texts, finishes))],
            "usage": use}


def chat_chunk(rid: str, model: str, index: int | None, delta: dict | None, finish: str | None,
               use: dict | None = None) -> dict:
    choices = [] if index is None else [{"index": index, "delta": delta or {}, "logprobs": None,
                                         "finish_reason": finish}]
    return {"id": rid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": choices, **({"usage": use} if use is not None else {})}


def completion_response(rid: str, model: str, texts: list[str], finishes: list[str], use: dict | None,
                        ) -> dict:
    return {"id": rid, "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [{"index": i, "text": t, "logprobs": None, "finish_reason": f}
                        for i, (t, f) in enumerate(zip(texts, finishes))],
            **({"usage": use} if use is not None else {})}


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None,
               param: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
