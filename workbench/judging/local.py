"""The judge as a model loaded in this process (default: the embedded model: weak, but offline). Its chats
are rendered with the model's own chat template and generated in batches, greedily."""
from __future__ import annotations

from collections.abc import Callable

from workbench.config.decoding import GenerationConfig
from workbench.generation.batch import generate_batch
from workbench.generation.chat_model import CACHE, ModelCache
from workbench.prompts import registry, rendering


class LocalJudge:
    def __init__(self, model: str = "default", max_tokens: int = 64, batch_size: int = 8,
                 cache: ModelCache | None = None):
        self.cm = (cache or CACHE).get(model or "default", None)
        self.template = registry.load("model")  # the judge's own chat format, whatever run is judged
        self.settings = GenerationConfig(max_new_tokens=int(max_tokens), repetition_penalty=1.0)
        self.batch_size = batch_size
        self.name = f"local:{model or 'default'}"

    def complete_all(self, chats: list[list[dict]], progress: Callable[[int, int], None] | None = None
                     ) -> list[str]:
        prompts = [rendering.prompt_text(self.template, {"messages": chat}, self.cm.tokenizer) for chat in chats]
        return generate_batch(self.cm, prompts, self.settings, self.template, self.batch_size, progress=progress)

    def close(self) -> None:
        pass
