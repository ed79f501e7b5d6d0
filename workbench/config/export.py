"""ExportConfig: what `python -m workbench export`, the `export` job and the Runs tab's Export panel take."""
from __future__ import annotations

from dataclasses import dataclass

from workbench.config.fields import Settings, opt

FORMATS = ("merged", "gguf")


@dataclass
class ExportConfig(Settings):
    run: str = opt("", "A finished run folder (a LoRA / QLoRA adapter run or a full fine-tune).")
    format: str = opt("gguf", "merged: the adapter folder and the merged Hugging Face folder; gguf: those plus "
                      "GGUF files and an Ollama Modelfile.", choices=FORMATS)
    quant: str = opt("f16,q8_0", "GGUF types, comma-separated: f32, f16, bf16, q8_0 (llama.cpp's converter); "
                     "q4_0, q4_k_m, q5_k_m, q6_k need llama.cpp's llama-quantize on PATH.")
    out: str = opt("", "Output folder (default: <run>/export). Written under a temporary name, renamed at the end.")
    name: str = opt("", "Model name for the GGUF files and Ollama (default: the run id).")
    overwrite: bool = opt(False, "Replace an existing output folder (only once the new export is complete).")
    check: bool = opt(True, "Greedy-decode held-out prompts with each export and compare its tokens with the run's.",
                      flag="--no-check")
    check_prompts: int = opt(3, "Held-out prompts the check decodes.", min=1, max=20)
    check_tokens: int = opt(32, "Tokens the check decodes per prompt.", min=4, max=256)
    min_free_gb: float = opt(0.5, "Free space (GB) that must remain on the target after the export.", min=0)

    def quants(self) -> list[str]:
        """The GGUF types asked for, lower-case, in order, without repeats (none for format merged)."""
        if self.format != "gguf":
            return []
        seen: list[str] = []
        for q in str(self.quant or "").replace(" ", "").lower().split(","):
            if q and q not in seen:
                seen.append(q)
        return seen
