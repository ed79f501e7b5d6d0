"""Streaming chat: the reply yielded as it grows, stoppable by the user or by a cancelled request."""
from __future__ import annotations

import threading
from contextlib import nullcontext
from typing import Iterator

from workbench.config.generation import GenerationConfig
from workbench.generation.chat_model import ChatModel
from workbench.generation.chat_prompts import chat_prompt, message_text
from workbench.generation.decoding import cut_at_stop, generate_kwargs, held_back, stop_strings
from workbench.prompts import schema


def stream_reply(cm: ChatModel, prompt: str, settings: GenerationConfig, template: schema.Template,
                 stop: threading.Event | None = None, use_adapter: bool = True) -> Iterator[str]:
    """Yield the reply as it grows. Generation runs in a thread feeding a TextIteratorStreamer; setting
    `stop` (the user's Stop) or closing this generator (a cancelled request) ends that thread at the
    next token. `stop` is only read here, so after the call it still tells whether the user stopped."""
    import torch
    from transformers import TextIteratorStreamer

    stop = stop or threading.Event()
    finished = threading.Event()  # set when this reader is done, for whatever reason
    tok = cm.tokenizer
    stops = stop_strings(template, tok)
    inputs = tok(prompt, return_tensors="pt", add_special_tokens=False).to(cm.model.device)
    streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True, timeout=600)
    kwargs = dict(**inputs, **generate_kwargs(settings, tok), streamer=streamer,
                  stopping_criteria=cm.stopping(stops, stop, finished))
    errors: list[BaseException] = []

    def work():
        try:
            with cm.lock, (nullcontext() if use_adapter else cm.base_only()), torch.inference_mode():
                if settings.do_sample:
                    torch.manual_seed(int(settings.seed))
                cm.model.generate(**kwargs)
        except BaseException as e:  # surfaced to the reader below instead of dying silently in the thread
            errors.append(e)
            streamer.on_finalized_text("", stream_end=True)

    thread = threading.Thread(target=work, daemon=True, name="workbench-generate")
    thread.start()
    text, shown = "", ""
    try:
        for piece in streamer:
            text += piece
            visible = cut_at_stop(text, stops)
            if len(visible) < len(text):  # a stop string arrived: the reply is complete
                finished.set()
                shown = visible
                yield shown
                break
            visible = visible[:len(visible) - held_back(visible, stops)]
            if visible != shown:
                shown = visible
                yield shown
        else:
            final = cut_at_stop(text, stops)
            if final != shown:
                yield final
    finally:
        finished.set()  # also reached when the consumer is cancelled: the thread stops at the next token
    thread.join(timeout=60)
    if errors:
        raise errors[0]

def chat_stream(cm: ChatModel, history: list[dict], message: str, settings: GenerationConfig,
                template: schema.Template, stop: threading.Event | None = None,
                use_adapter: bool = True) -> Iterator[str]:
    turns = [{"role": m["role"], "content": message_text(m.get("content"))} for m in history or []]
    prompt = chat_prompt(template, turns, message, cm.tokenizer)
    yield from stream_reply(cm, prompt, settings, template, stop, use_adapter)

def chat_once(cm: ChatModel, history: list[dict], message: str, settings: GenerationConfig,
              template: schema.Template, use_adapter: bool = True) -> str:
    reply = ""
    for reply in chat_stream(cm, history, message, settings, template, use_adapter=use_adapter):
        pass
    return reply
