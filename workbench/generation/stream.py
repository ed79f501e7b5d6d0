"""Streaming chat: the reply yielded as it grows, stoppable by the user or by a cancelled request."""
from __future__ import annotations

import queue
import threading
from contextlib import nullcontext
from typing import Iterator

from workbench.config.decoding import GenerationConfig
from workbench.generation.chat_model import ChatModel, chat_prompt, message_text
from workbench.generation.decoding import ReplyText, generate_kwargs, stop_strings
from workbench.prompts.registry import Template


class _ReplyStreamer:
    """transformers' streamer protocol (put / end, called by generate's thread) feeding one ReplyText: the
    first put is the prompt (skipped); each later one a step's token, whose visible text goes to `pieces`."""
    END = None

    def __init__(self, reply: ReplyText, finished: threading.Event):
        self.reply, self.finished = reply, finished
        self.pieces: queue.Queue = queue.Queue()
        self._prompt_seen = False

    def put(self, value) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        delta = self.reply.add(value.reshape(-1).tolist())
        if delta:
            self.pieces.put(delta)
        if self.reply.stopped:  # the reply is complete: generation ends at the next step
            self.finished.set()
            self.pieces.put(self.END)

    def end(self) -> None:
        rest = self.reply.close()
        if rest:
            self.pieces.put(rest)
        self.pieces.put(self.END)

    def __iter__(self):
        while (piece := self.pieces.get(timeout=600)) is not self.END:
            yield piece


def stream_reply(cm: ChatModel, prompt: str, settings: GenerationConfig, template: Template,
                 stop: threading.Event | None = None, use_adapter: bool = True) -> Iterator[str]:
    """Yield the reply as it grows. Generation runs in a thread feeding a ReplyText (decoding.py); setting
    `stop` (the user's Stop) or closing this generator (a cancelled request) ends that thread at the
    next token. `stop` is only read here, so after the call it still tells whether the user stopped."""
    import torch

    stop = stop or threading.Event()
    finished = threading.Event()  # set when this reader is done, for whatever reason
    tok = cm.tokenizer
    stops = stop_strings(template, tok)
    inputs = tok(prompt, return_tensors="pt", add_special_tokens=False).to(cm.model.device)
    streamer = _ReplyStreamer(ReplyText(tok, stops), finished)
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
            streamer.pieces.put(streamer.END)

    thread = threading.Thread(target=work, daemon=True, name="workbench-generate")
    thread.start()
    shown = ""
    try:
        for piece in streamer:
            shown += piece
            yield shown
    finally:
        finished.set()  # also reached when the consumer is cancelled: the thread stops at the next token
    thread.join(timeout=60)
    if errors:
        raise errors[0]

def chat_stream(cm: ChatModel, history: list[dict], message: str, settings: GenerationConfig,
                template: Template, stop: threading.Event | None = None,
                use_adapter: bool = True) -> Iterator[str]:
    turns = [{"role": m["role"], "content": message_text(m.get("content"))} for m in history or []]
    prompt = chat_prompt(template, turns, message, cm.tokenizer)
    yield from stream_reply(cm, prompt, settings, template, stop, use_adapter)

def chat_once(cm: ChatModel, history: list[dict], message: str, settings: GenerationConfig,
              template: Template, use_adapter: bool = True) -> str:
    reply = ""
    for reply in chat_stream(cm, history, message, settings, template, use_adapter=use_adapter):
        pass
    return reply
