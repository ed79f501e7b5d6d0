"""An Ollama Modelfile for an exported GGUF: the run's prompt template translated to Ollama's Go TEMPLATE
syntax, its stop strings as PARAMETER stop, the run's generation defaults, a SYSTEM line where the template
has a system prompt; and the `ollama create` command.

  instruction templates  one turn: the user's message takes the place of the field the prompt shows
                         ({instruction}, or {output} for reverse instruction), {system} becomes .System
  chat templates         every turn of .Messages with the template's per-role prefix / suffix
  model                  no TEMPLATE: Ollama reads the chat template the GGUF carries (tokenizer.chat_template)
"""
from __future__ import annotations

import re

from workbench.core.errors import ExportError
from workbench.prompts.registry import PLACEHOLDER, Template


def _literal(text: str) -> str:
    """Template text with Go-template delimiters kept literal."""
    return text.replace("{{", '{{ "{{" }}')


def _fill(text: str, values: dict) -> str:
    """Placeholders → Go template actions or literal text; the rest stays literal."""
    out, last = [], 0
    for m in PLACEHOLDER.finditer(text):
        out += [_literal(text[last:m.start()]), values.get(m.group(1), "")]
        last = m.end()
    return "".join(out) + _literal(text[last:])


def _user_field(t: Template) -> tuple[str, str]:
    """(prompt text, the placeholder the user's message fills): the one-field prompt when there is one."""
    prompt = t.prompt_no_input or t.prompt
    answer = set(re.findall(r"\{(instruction|input|output)\}", t.response))
    shown = [f for f in re.findall(r"\{(instruction|input|output)\}", t.preface + prompt) if f not in answer]
    if not shown:
        raise ExportError(f"template '{t.name}' shows no field of the row in its prompt; it cannot take a message")
    return prompt, shown[0]


def instruction_template(t: Template, bos: str, eos: str) -> str:
    prompt, field = _user_field(t)
    values = {"bos": bos, "eos": eos, field: "{{ .Prompt }}", "system": "{{ .System }}"}
    return _fill(t.preface + prompt, values) + "{{ .Response }}"


def chat_template(t: Template, bos: str, eos: str) -> str:
    special = {"bos": bos, "eos": eos}
    parts = []
    for role in ("system", "user", "assistant"):
        layout = t.roles.get(role)
        if layout is None:
            continue
        prefix, suffix = _fill(layout.get("prefix", ""), special), _fill(layout.get("suffix", ""), special)
        if "prefix_after_system" in layout:  # e.g. llama2: the first user turn continues the system block
            after = _fill(layout["prefix_after_system"], special)
            prefix = f'{{{{ if eq $prev "system" }}}}{after}{{{{ else }}}}{prefix}{{{{ end }}}}'
        parts.append(f'{{{{ {"if" if not parts else "else if"} eq .Role "{role}" }}}}{prefix}{{{{ .Content }}}}'
                     f"{suffix}")
    opener = _fill(t.roles["assistant"].get("prefix", ""), special)
    return (_fill(t.preface, special) + '{{ $prev := "" }}{{ range .Messages }}' + "".join(parts)
            + "{{ end }}{{ $prev = .Role }}{{ end }}" + opener)


def ollama_template(t: Template, bos: str = "", eos: str = "") -> str | None:
    if t.kind == "instruction":
        return instruction_template(t, bos, eos)
    if t.kind == "chat":
        return chat_template(t, bos, eos)
    return None


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def modelfile(gguf_name: str, t: Template, gen: dict, bos: str = "", eos: str = "") -> str:
    """The Modelfile text; `gen` is the run's generation settings (RunConfig.gen)."""
    lines = [f"# Made by the fine-tuning workbench from template '{t.name}'.", f"FROM ./{gguf_name}", ""]
    template = ollama_template(t, bos, eos)
    if template is None:
        lines.append("# template 'model': Ollama uses the chat template stored in the GGUF")
    else:
        if '"""' in template:
            raise ExportError(f"template '{t.name}' contains \"\"\", which a Modelfile TEMPLATE cannot hold")
        lines.append(f'TEMPLATE """{template}"""')
    if t.system:
        lines.append(f'SYSTEM """{t.system}"""')
    for stop in t.stop:
        lines.append(f"PARAMETER stop {_quote(stop)}")
    sampled = bool(gen.get("do_sample"))
    lines += [f"PARAMETER temperature {gen.get('temperature', 0.7) if sampled else 0}",
              f"PARAMETER top_p {gen.get('top_p', 0.9)}", f"PARAMETER top_k {gen.get('top_k', 50)}",
              f"PARAMETER repeat_penalty {gen.get('repetition_penalty', 1.0)}",
              f"PARAMETER num_predict {gen.get('max_new_tokens', 128)}"]
    if gen.get("seed"):
        lines.append(f"PARAMETER seed {gen['seed']}")
    return "\n".join(lines) + "\n"


def parse(text: str) -> list[tuple[str, str]]:
    """A Modelfile as (INSTRUCTION, argument) pairs, triple-quoted arguments across lines included."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        word, _, arg = line.partition(" ")
        if arg.startswith('"""') and not (len(arg) >= 6 and arg.endswith('"""')):
            while i < len(lines) and not arg.endswith('"""'):
                arg += "\n" + lines[i]
                i += 1
        if arg.startswith('"""'):
            arg = arg[3:-3]
        out.append((word.upper(), arg))
    return out


def create_command(name: str, modelfile_path) -> str:
    return f"ollama create {name.lower()} -f {modelfile_path}"
