"""Golden tests: the exact text every template renders and the exact label list (-100 on masked tokens)
for the SmolLM2 tokenizer; chatml against SmolLM2's own chat template; saving; rendering never runs code."""
from __future__ import annotations

import shutil

import pytest

from workbench.core.errors import TemplateError
from workbench.core.paths import templates_dir
from workbench.data import preview
from workbench.prompts import registry, rendering
from workbench.prompts.rendering import IGNORE_INDEX as M

WITH_INPUT = {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour", "category": "x"}
NO_INPUT = {"instruction": "Name a color.", "input": "", "output": "Blue.", "category": ""}
CHAT = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                     {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"},
                     {"role": "assistant", "content": "Goodbye."}]}
REVERSE = ("### Instruction:\nUse the Input below to create an instruction, which could have been used to generate "
           "the input using an LLM.\n\n### Input:\n")
PREFACE_IN = ("Below is an instruction that describes a task, paired with an input that provides further context. "
              "Write a response that appropriately completes the request.\n\n")
PREFACE_NO = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
              "request.\n\n")
SMOL_SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"

# template → row → [(text, trained)] exactly. {bos}/{eos} are SmolLM2's <|im_start|> / <|im_end|>.
GOLDEN = {
    "alpaca": {
        "with_input": [("### Instruction:\nTranslate to French.\n\n### Input:\nGood morning\n\n### Response:\n", False),
                       ("Bonjour<|im_end|>", True)],
        "no_input": [("### Instruction:\nName a color.\n\n### Response:\n", False), ("Blue.<|im_end|>", True)],
    },
    "alpaca_preface": {
        "with_input": [(PREFACE_IN + "### Instruction:\nTranslate to French.\n\n### Input:\nGood morning\n\n"
                        "### Response:\n", False), ("Bonjour<|im_end|>", True)],
        "no_input": [(PREFACE_NO + "### Instruction:\nName a color.\n\n### Response:\n", False),
                     ("Blue.<|im_end|>", True)],
    },
    "reverse_instruction": {
        "with_input": [(REVERSE + "Bonjour\n\n### Response:\n", False), ("Translate to French.<|im_end|>", True)],
        "no_input": [(REVERSE + "Blue.\n\n### Response:\n", False), ("Name a color.<|im_end|>", True)],
    },
    "chatml": {
        "with_input": [("<|im_start|>user\nTranslate to French.\n\nGood morning<|im_end|>\n<|im_start|>assistant\n",
                        False), ("Bonjour<|im_end|>\n", True)],
        "chat": [("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
                  False), ("Hello!<|im_end|>\n", True),
                 ("<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n", False), ("Goodbye.<|im_end|>\n", True)],
    },
    "llama2_chat": {
        "no_input": [("<|im_start|>[INST] Name a color. [/INST] ", False), ("Blue. <|im_end|>", True)],
        "chat": [("<|im_start|>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] ", False), ("Hello! <|im_end|>", True),
                 ("<|im_start|>[INST] Bye [/INST] ", False), ("Goodbye. <|im_end|>", True)],
    },
    "human_assistant": {
        "no_input": [("<s>Human: Name a color.</s><s>Assistant: ", False), ("Blue.</s>", True)],
        "chat": [("<s>System: Be brief.</s><s>Human: Hi</s><s>Assistant: ", False), ("Hello!</s>", True),
                 ("<s>Human: Bye</s><s>Assistant: ", False), ("Goodbye.</s>", True)],
    },
    "deepseek": {
        "no_input": [("<|im_start|>User: Name a color.\n\nAssistant: ", False), ("Blue.<|im_end|>", True)],
        "chat": [("<|im_start|>Be brief.\n\nUser: Hi\n\nAssistant: ", False), ("Hello!<|im_end|>", True),
                 ("User: Bye\n\nAssistant: ", False), ("Goodbye.<|im_end|>", True)],
    },
    "model": {
        "no_input": [(SMOL_SYSTEM + "<|im_start|>user\nName a color.<|im_end|>\n<|im_start|>assistant\n", False),
                     ("Blue.<|im_end|>\n", True)],
        "chat": [("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
                  False), ("Hello!<|im_end|>\n", True),
                 ("<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n", False), ("Goodbye.<|im_end|>\n", True)],
    },
}
ROWS = {"with_input": WITH_INPUT, "no_input": NO_INPUT, "chat": CHAT}

# template → labels of NO_INPUT, exactly. "Blue." is [23390, 30]; <|im_end|> is 2; "\n" 198; " " 216;
# the literal text "</s>" is [9617, 99, 46] (it is not a special token for SmolLM2).
GOLDEN_LABELS = {
    "alpaca": [M] * 14 + [23390, 30, 2],
    "alpaca_preface": [M] * 34 + [23390, 30, 2],
    "reverse_instruction": [M] * 41 + [5820, 253, 2380, 30, 2],  # "Name a color." + <|im_end|>
    "chatml": [M] * 13 + [23390, 30, 2, 198],
    "llama2_chat": [M] * 13 + [23390, 30, 216, 2],
    "human_assistant": [M] * 18 + [23390, 30, 9617, 99, 46],
    "deepseek": [M] * 13 + [23390, 30, 2],
    "model": [M] * 34 + [23390, 30, 2, 198],
}


def test_the_required_templates_ship():
    assert set(GOLDEN) <= set(registry.available())
    for name in registry.available():
        t = registry.load(name)
        assert t.description and registry.lint(t) == [], name


@pytest.mark.parametrize("name,row", [(n, r) for n, rows in GOLDEN.items() for r in rows])
def test_golden_rendering(name, row, tokenizer):
    assert rendering.render(registry.load(name), ROWS[row], tokenizer) == GOLDEN[name][row]


@pytest.mark.parametrize("name", list(GOLDEN_LABELS))
def test_golden_labels(name, tokenizer):
    enc = rendering.encode_row(registry.load(name), NO_INPUT, tokenizer)
    assert enc["labels"] == GOLDEN_LABELS[name]
    # trained labels are the input ids themselves (no shift: the model shifts)
    assert [i for i, lab in zip(enc["input_ids"], enc["labels"]) if lab != M] == [x for x in enc["labels"] if x != M]


def test_chatml_equals_smollm2_chat_template(tokenizer):
    """With an explicit system message the chatml file renders exactly SmolLM2's own template, tokens too."""
    t = registry.load("chatml")
    msgs = CHAT["messages"]
    rendered = "".join(s for s, _ in rendering.render(t, CHAT, tokenizer))
    assert rendered == tokenizer.apply_chat_template(msgs, tokenize=False)
    ids = tokenizer.apply_chat_template(msgs, tokenize=True)
    ids = ids["input_ids"] if not isinstance(ids, list) else ids
    assert rendering.encode_row(t, CHAT, tokenizer)["input_ids"] == list(ids)
    assert rendering.prompt_text(t, CHAT, tokenizer) == tokenizer.apply_chat_template(msgs[:-1], tokenize=False,
                                                                            add_generation_prompt=True)


def test_train_on_strategies(tokenizer):
    t = registry.load("chatml")
    last = rendering.encode_row(t, CHAT, tokenizer, train_on="last_response")["labels"]
    assert [x for x in last if x != M] == [14229, 25257, 30, 2, 198]  # "Goodbye.<|im_end|>\n" only
    everything = rendering.encode_row(t, CHAT, tokenizer, train_on="all")
    assert everything["labels"] == everything["input_ids"]


def test_rendering_never_runs_code(tokenizer):
    """Placeholders are a fixed list filled by a regex: no Jinja, no attribute access, no re-expansion."""
    t = registry.parse('kind: instruction\nprompt: "{{ 7*7 }} {instruction.__class__} {__import__} {instruction}\\n"\n'
                'response: "{output}"\neos: false\n', "evil")
    row = {"instruction": "{output} {{ 7*7 }}", "input": "", "output": "secret"}
    literal = "{{ 7*7 }} {instruction.__class__} {__import__} {output} {{ 7*7 }}\n"
    assert rendering.render(t, row, tokenizer) == [(literal, False), ("secret", True)]
    assert "unknown placeholders" in registry.lint(t)[0]


def test_save_validates_and_never_overwrites_silently(tmp_path, monkeypatch):
    folder = tmp_path / "templates"
    shutil.copytree(templates_dir(), folder)
    monkeypatch.setenv("WORKBENCH_TEMPLATES", str(folder))
    text = registry.read_text("alpaca").replace("description: Stanford", "description: My")
    path = registry.save_text(text, "my_alpaca")
    assert path == folder / "my_alpaca.yaml" and path.read_text() == text  # written as typed, comments kept
    assert "my_alpaca" in registry.available() and registry.load("my_alpaca").description.startswith("My")
    with pytest.raises(TemplateError, match="already exists"):
        registry.save_text(text.replace("My", "Other"), "my_alpaca")
    assert registry.load("my_alpaca").description.startswith("My")
    registry.save_text(text.replace("My", "Other"), "my_alpaca", overwrite=True)
    assert registry.load("my_alpaca").description.startswith("Other")
    assert registry.save_text(text, "alpaca.v2-B_1").name == "alpaca.v2-B_1.yaml"  # letters, digits, _ - .
    assert registry.load("alpaca.v2-B_1").name == "alpaca.v2-B_1"
    for bad_name in ("../evil", "Bad Name", "", "x" * 81, ".hidden"):  # the one name rule (core.formatting)
        with pytest.raises(TemplateError, match="name"):
            registry.save_text(text, bad_name)
    with pytest.raises(TemplateError, match="not valid YAML"):
        registry.save_text("prompt: [unclosed", "broken")
    with pytest.raises(TemplateError, match="unknown template keys"):
        registry.save_text("kind: instruction\nprompt: x\nscript: rm -rf /\n", "broken")
    with pytest.raises(TemplateError, match="train_roles"):
        registry.save_text("kind: chat\nroles: {user: {prefix: a}, assistant: {prefix: b}}\n"
                           "train_roles: [tool]\n", "broken")
    assert not (folder / "broken.yaml").exists() and not list(folder.glob(".*"))  # no temp files left
    (folder / "dropped.yaml").write_text("kind: instruction\nprompt: 'Q: {instruction}\\nA: '\n")
    assert registry.load("dropped").prompt.startswith("Q:")  # a dropped file is a template


def test_preview_counts_truncation_and_escaped_tokens(tokenizer):
    row = {"instruction": "Reply with <script>alert(1)</script>", "input": "", "output": "<b>ok</b> " * 20}
    p = preview.preview(registry.load("alpaca"), row, tokenizer, max_length=32)
    assert p.prompt == "### Instruction:\nReply with <script>alert(1)</script>\n\n### Response:\n"
    assert p.target == "<b>ok</b> " * 20 + "<|im_end|>"
    assert p.prompt_tokens + p.target_tokens == p.total == len(p.labels) and p.cut == p.total - 32 > 0
    assert "Truncated" in p.counts_markdown()
    html = preview.tokens_html(p, tokenizer)
    assert "<script" not in html and "<b>" not in html and "&lt;" in html  # token text is escaped
    assert html.count('class="tok tok-trained"') == sum(1 for x in p.labels[:32] if x != M)
    assert html.count('class="tok tok-cut"') == p.cut
    short = preview.preview(registry.load("alpaca"), NO_INPUT, tokenizer, max_length=512)
    assert short.cut == 0 and "Truncated" not in short.counts_markdown()
