"""Inference on the real default model + a real 3-step adapter: streaming, batching, stop, base comparison,
the adapter/base check and the one-model cache."""
import gc
import json
import shutil
import threading
import time

import pytest
import torch

from workbench.config.decoding import GenerationConfig
from workbench.core.errors import ConfigError, ModelError
from workbench.generation.chat_model import (ModelCache, chat_prompt, message_text, prompt_fields, row_input,
                                             template_for)
from workbench.generation.decoding import ReplyText, cut_at_stop, generate_batch, reply_text, settings_from
from workbench.generation.stream import chat_once, stream_reply
from workbench.models.resolve import check_adapter_base, find_adapter
from workbench.models.resolve import canonical_model
from workbench.prompts import registry, rendering

REVERSE = registry.load("reverse_instruction")
GREEDY = GenerationConfig(max_new_tokens=16, do_sample=False)
RESPONSES = ["Paris is the capital of France and its largest city.",
             "Water boils at 100 degrees Celsius at sea level.",
             "The mitochondria is the part of the cell that produces energy."]


@pytest.fixture(scope="module")
def cache():
    return ModelCache()


@pytest.fixture(scope="module")
def cm(cache, lora_run):
    return cache.get("default", str(lora_run.run_dir))


# -- pure: prompts, fields, stop strings ----------------------------------------------------------------

def test_user_text_goes_where_the_template_prompt_shows_it(tokenizer):
    assert prompt_fields(REVERSE) == ["output"]
    assert prompt_fields(registry.load("alpaca")) == ["instruction", "input"]
    row = {"instruction": "Name a colour.", "input": "", "output": "Blue is a colour."}
    assert row_input(REVERSE, row) == "Blue is a colour."  # reverse: the response is the input
    assert row_input(registry.load("alpaca"), row) == "Name a colour."
    assert row_input(registry.load("chatml"), {"messages": [{"role": "user", "content": "hi"},
                                                             {"role": "assistant", "content": "yo"}]}) == "hi"


def test_multi_turn_prompt_renders_past_exchanges_and_the_new_prompt(tokenizer):
    history = [{"role": "user", "content": "First response text."}, {"role": "assistant", "content": "Write A."}]
    prompt = chat_prompt(REVERSE, history, "Second response text.", tokenizer)
    first = rendering.prompt_text(REVERSE, {"output": "First response text."}, tokenizer)
    assert prompt.startswith(first + "Write A." + tokenizer.eos_token)
    assert prompt.endswith("### Input:\nSecond response text.\n\n### Response:\n")
    # A preface is said once, not once per turn.
    pre = registry.parse('{kind: instruction, preface: "You answer briefly.\\n", prompt: "Q: {instruction}\\nA: "}',
                          "with_preface")
    p = chat_prompt(pre, [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}], "q2", tokenizer)
    assert p == f"You answer briefly.\nQ: q1\nA: a1{tokenizer.eos_token}Q: q2\nA: "
    # Chat-kind templates take the whole conversation as messages.
    chatml = chat_prompt(registry.load("chatml"), history, "next", tokenizer)
    assert "First response text." in chatml and chatml.rstrip().endswith("assistant")


def test_stop_strings_are_cut_and_gradio_content_is_flattened():
    assert cut_at_stop("Write a poem.\n### Instruction: more", ["### Instruction:", "### Input:"]) == "Write a poem.\n"
    assert cut_at_stop("no stop here", ["###"]) == "no stop here"
    assert message_text([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]) == "ab"
    assert message_text("plain") == "plain"


def test_reply_text_decodes_token_by_token_as_the_whole_reply_decodes(tokenizer):
    """The one incremental decoder (chat, batch, serve): token by token it shows what a full decode shows
    (multi-byte characters split across tokens, spacing), holds back a possible stop, and cuts at the first."""
    text = "Hello , world! It's 100°C. Ünïcødé 日本語 😀🎉\n\n  end."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    reply, deltas = ReplyText(tokenizer, ["### Instruction:"]), []
    for i in ids:
        deltas.append(reply.add([i]))
    deltas.append(reply.close())
    assert "".join(deltas) == reply.text == tokenizer.decode(ids, skip_special_tokens=True)
    assert "\ufffd" not in "".join(deltas[:-1])  # half a character is never shown
    assert reply_text(tokenizer, ids, ["😀"]) == text[:text.index("😀")]  # a whole reply at once, cut

    reply, shown = ReplyText(tokenizer, ["### Instruction:", "### Input:"]), ""
    for i in tokenizer("Write a poem.\n### Instruction: more", add_special_tokens=False)["input_ids"]:
        shown += reply.add([i])
        assert "#" not in shown  # "###" might begin a stop: held back until it resolves
    assert reply.stopped and shown == reply.text == "Write a poem.\n"
    held = ReplyText(tokenizer, ["### Instruction:"])
    shown = held.add(tokenizer("Total ##", add_special_tokens=False)["input_ids"])
    assert shown == "Total " and held.close() == "##"  # never became a stop: shown at the end


def test_generation_settings_are_checked_against_the_config_ranges():
    s = settings_from(max_new_tokens=8, temperature=0.5, do_sample=True, seed=3)
    assert (s.max_new_tokens, s.temperature, s.do_sample, s.seed) == (8, 0.5, True, 3)
    with pytest.raises(ConfigError, match="top_p must be > 0.0 and <= 1.0; got 1.5"):
        settings_from(top_p=1.5)


@pytest.mark.slow
def test_adapter_for_another_base_is_refused(lora_run, tmp_path, model_dir):
    source = find_adapter(str(lora_run.run_dir))
    assert source.template == "reverse_instruction" and canonical_model(source.base) == canonical_model("default")
    # 'default', the hub id and the converted folder are one model.
    for same in ("default", "HuggingFaceTB/SmolLM2-135M-Instruct", str(model_dir)):
        check_adapter_base(source, same)
    # An adapter folder (outside its run) that names another base is refused by name.
    foreign = tmp_path / "foreign"
    shutil.copytree(source.path, foreign)
    cfg = json.loads((foreign / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "gpt2"
    (foreign / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="trained for base model gpt2"):
        check_adapter_base(find_adapter(foreign), "default")
    # A base folder of another shape is refused with the sizes that differ.
    other = tmp_path / "wide-model"
    other.mkdir()
    conf = json.loads((model_dir / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**conf, "hidden_size": 1024}))
    with pytest.raises(ModelError, match="hidden_size 576 vs 1024"):
        check_adapter_base(source, str(other))
    with pytest.raises(ModelError, match="not found"):
        find_adapter(tmp_path / "missing")


# -- real generation ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_streamed_reply_grows_and_matches_batched_generation(cm):
    assert cm.has_adapter and template_for(cm.adapter).name == "reverse_instruction"
    prompts = [rendering.prompt_text(REVERSE, {"output": r}, cm.tokenizer) for r in RESPONSES]
    pieces = list(stream_reply(cm, prompts[0], GREEDY, REVERSE))
    assert pieces and pieces[-1].strip()
    assert all(pieces[-1].startswith(p) for p in pieces)  # each update extends the last
    one_by_one = [generate_batch(cm, [p], GREEDY, REVERSE, batch_size=1)[0] for p in prompts]
    seen = []
    batched = generate_batch(cm, prompts, GREEDY, REVERSE, batch_size=3, progress=lambda d, t: seen.append((d, t)))
    assert batched == one_by_one  # left padding: the same greedy text as one row at a time
    assert batched[0] == pieces[-1].strip()
    assert seen == [(3, 3)]
    assert not any("### Instruction:" in b for b in batched)


@pytest.mark.slow
def test_stop_flag_ends_the_generation_thread(cm):
    stop = threading.Event()
    long = GenerationConfig(max_new_tokens=400, do_sample=False, repetition_penalty=1.0)
    prompt = rendering.prompt_text(registry.load("model"), {"instruction": "Count from 1 to 500."}, cm.tokenizer)
    t = time.time()
    text = ""
    for text in stream_reply(cm, prompt, long, registry.load("model"), stop):
        stop.set()  # the user pressed Stop at the first words
    assert time.time() - t < 30
    assert len(cm.tokenizer(text)["input_ids"]) < 40
    assert cm.lock.acquire(timeout=10)  # the generation thread is gone and released the model
    cm.lock.release()


@pytest.mark.slow
def test_compare_with_base_switches_the_adapter_off_on_the_same_weights(cm, cache):
    ids = cm.tokenizer(rendering.prompt_text(REVERSE, {"output": RESPONSES[0]}, cm.tokenizer), return_tensors="pt")
    with torch.inference_mode():
        with_adapter = cm.model(**ids).logits
        with cm.base_only():
            without = cm.model(**ids).logits
        again = cm.model(**ids).logits
    assert not torch.allclose(with_adapter, without)  # the trained LoRA update changes the output
    assert torch.equal(with_adapter, again)  # and is back on after the context
    assert chat_once(cm, [], RESPONSES[1], GREEDY, REVERSE, use_adapter=False).strip()

    # Switching to the plain base releases the adapter model (at most one model in memory), and the
    # plain base gives the same logits as the adapter switched off.
    base = cache.get("default")
    assert not base.has_adapter and cache.current() is base
    gc.collect()
    with torch.inference_mode():
        plain = base.model(**ids).logits
    assert torch.allclose(plain, without, atol=1e-5)
    del cm
    gc.collect()
    assert cache.get("default") is base  # same key: no reload


@pytest.mark.slow
def test_model_chat_template_reply_is_text(cache):
    base = cache.get("default")
    reply = chat_once(base, [], "Name one primary colour.", GREEDY, registry.load("model"))
    assert reply.strip() and "<|im_end|>" not in reply
