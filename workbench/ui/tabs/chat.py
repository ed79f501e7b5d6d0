"""Chat tab: talk to a base model with a trained adapter, streamed token by token, optionally side by side
with the same base model without the adapter. Components and wiring only; logic is in workbench.generation.
"""
from __future__ import annotations

import threading

import gradio as gr

from workbench.config.decoding import GenerationConfig
from workbench.core.errors import WorkbenchError
from workbench.core.paths import confine
from workbench.generation import chat_model, decoding, stream
from workbench.models.resolve import find_adapter
from workbench.prompts import registry
from workbench.runs.compare import run_choices
from workbench.ui.errors import handler
from workbench.ui.form import setting_input

NO_ADAPTER = "(none)"
_STOPS: dict[str, threading.Event] = {}  # session → the stop flag of its current generation


def _adapter_path(adapter: str | None) -> str | None:
    """A typed folder must lie under the folders this app may read; run choices already do."""
    if not adapter or adapter == NO_ADAPTER:
        return None
    return str(confine(adapter))


def _base_name(base: str | None) -> str:
    base = (base or "").strip() or "default"
    if base.startswith((".", "/", "~")):
        return str(confine(base))
    return base


def _model(base, adapter) -> chat_model.ChatModel:
    return chat_model.CACHE.get(_base_name(base), _adapter_path(adapter))


# -- handlers -----------------------------------------------------------------------------------------

@handler
def list_adapters():
    """Refresh the adapter dropdown with every run that saved an adapter."""
    return gr.update(choices=[NO_ADAPTER, *run_choices()])


@handler
def suggest_base(adapter):
    """Choosing a run's adapter selects the base model it was trained on."""
    try:
        source = find_adapter(_adapter_path(adapter))
    except WorkbenchError:
        return gr.update()
    return gr.update(value=source.base) if source.base and not source.full_model else gr.update()


@handler
def load_adapter(base, adapter):
    """Load base (+ adapter) into the cache (releasing the previous one) and say what is loaded."""
    cm = _model(base, adapter)
    tpl = chat_model.template_for(cm.adapter)
    return f"✅ Loaded **{cm.describe()}**  \ntemplate (auto): `{tpl.name}`"


@handler
def chat(message, history, base_history, base, adapter, template, compare_base, max_new_tokens, temperature,
         top_p, top_k, repetition_penalty, do_sample, seed, request: gr.Request = None):
    """Stream the adapter's reply (then the base model's, with compare on) to `message`."""
    message = (message or "").strip()
    if not message:
        raise gr.Error("type a message first", print_exception=False)
    settings = decoding.settings_from(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                                       top_k=top_k, repetition_penalty=repetition_penalty,
                                       do_sample=do_sample, seed=seed)
    cm = _model(base, adapter)
    tpl = chat_model.template_for(cm.adapter, template or "auto")
    stop = threading.Event()
    key = getattr(request, "session_hash", None) or "api"
    _STOPS[key] = stop
    history, base_history = list(history or []), list(base_history or [])
    past, base_past = list(history), list(base_history)
    history += [{"role": "user", "content": message}, {"role": "assistant", "content": ""}]
    if compare_base and cm.has_adapter:
        base_history += [{"role": "user", "content": message}, {"role": "assistant", "content": ""}]
    yield history, base_history, ""
    try:
        for text in stream.chat_stream(cm, past, message, settings, tpl, stop):
            history[-1] = {"role": "assistant", "content": text}
            yield history, base_history, ""
        if compare_base and cm.has_adapter and not stop.is_set():
            for text in stream.chat_stream(cm, base_past, message, settings, tpl, threading.Event(),
                                              use_adapter=False):
                base_history[-1] = {"role": "assistant", "content": text}
                yield history, base_history, ""
    finally:
        if _STOPS.get(key) is stop:
            del _STOPS[key]


@handler
def stop_chat(request: gr.Request = None):
    """Stop this session's generation at the next token (the event is also cancelled by Gradio)."""
    stop = _STOPS.get(getattr(request, "session_hash", None) or "api")
    if stop is not None:
        stop.set()
    return "⏹ stopped"


@handler
def clear_chat():
    return [], [], ""


@handler
def release_model():
    chat_model.CACHE.release()
    return "Model released from memory."


@handler
def _toggle_base(compare_base):
    return gr.update(visible=bool(compare_base))


# -- layout -------------------------------------------------------------------------------------------

def build_chat_tab(app: gr.Blocks) -> None:
    with gr.Row():
        base = gr.Dropdown(["default"], value="default", label="Base model", allow_custom_value=True, scale=2,
                           info="'default' (embedded SmolLM2-135M-Instruct), a hub id or a model folder")
        adapter = gr.Dropdown([NO_ADAPTER], value=NO_ADAPTER, label="Adapter", allow_custom_value=True, scale=3,
                              info="a run's adapter, or a folder with adapter_config.json")
        template = gr.Dropdown(["auto", *registry.available()], value="auto", label="Template", scale=1,
                               info="auto: the run's template, else the model's chat template")
    with gr.Row():
        load_btn = gr.Button("Load", variant="secondary", size="sm")
        refresh_btn = gr.Button("Refresh adapters", size="sm")
        release_btn = gr.Button("Release model", size="sm")
    status = gr.Markdown("Choose an adapter and press **Load** (or just send a message).")
    with gr.Accordion("Generation settings", open=False):
        # Defaults, ranges and help text are GenerationConfig's own (config/decoding.py).
        with gr.Row():
            max_new_tokens = setting_input(GenerationConfig, "max_new_tokens", "Max new tokens", step=1)
            do_sample = setting_input(GenerationConfig, "do_sample", "Sampling")
            seed = setting_input(GenerationConfig, "seed", "Seed")
        with gr.Row():
            temperature = setting_input(GenerationConfig, "temperature", "Temperature", step=0.05)
            top_p = setting_input(GenerationConfig, "top_p", "Top-p", step=0.05)
            top_k = setting_input(GenerationConfig, "top_k", "Top-k", step=1)
            repetition_penalty = setting_input(GenerationConfig, "repetition_penalty", "Repetition penalty",
                                               step=0.05)
    compare_base = gr.Checkbox(value=False, label="Compare with base: the same prompt without the adapter, "
                                                  "side by side")
    with gr.Row():
        chatbot = gr.Chatbot(label="With adapter", height=420)
        base_chatbot = gr.Chatbot(label="Base model (adapter off)", height=420, visible=False)
    message = gr.Textbox(label="Message", lines=3, placeholder="For reverse_instruction runs: paste a response; "
                                                              "the model writes the instruction for it.")
    with gr.Row():
        send_btn = gr.Button("Send", variant="primary")
        stop_btn = gr.Button("Stop", variant="stop")
        clear_btn = gr.Button("Clear")

    inputs = [message, chatbot, base_chatbot, base, adapter, template, compare_base, max_new_tokens, temperature,
              top_p, top_k, repetition_penalty, do_sample, seed]
    outputs = [chatbot, base_chatbot, message]
    send_evt = send_btn.click(chat, inputs, outputs, api_name="chat")
    submit_evt = message.submit(chat, inputs, outputs, api_name=False)
    stop_btn.click(stop_chat, None, status, api_name="stop_chat", cancels=[send_evt, submit_evt])
    clear_btn.click(clear_chat, None, outputs, api_name=False)
    load_btn.click(load_adapter, [base, adapter], status, api_name="load_adapter")
    refresh_btn.click(list_adapters, None, adapter, api_name="list_adapters")
    release_btn.click(release_model, None, status, api_name="release_model")
    adapter.change(suggest_base, adapter, base, api_name=False)
    compare_base.change(_toggle_base, compare_base, base_chatbot, api_name=False)
    app.load(list_adapters, None, adapter, api_name=False)
