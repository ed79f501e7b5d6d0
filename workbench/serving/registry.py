"""The served models: one base loaded once, every run's adapter attached to it under its own PEFT adapter
name, each answering under its run id with its run's prompt template (so replies match the Chat tab)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from workbench.config.decoding import GenerationConfig
from workbench.core.errors import ModelError, RunError, WorkbenchError
from workbench.generation.chat_model import ChatModel, load_chat_model, template_for
from workbench.models.resolve import AdapterSource, check_adapter_base, find_adapter
from workbench.models.resolve import canonical_model
from workbench.prompts.registry import Template

log = logging.getLogger(__name__)
BASE_NAME = "base"  # the base model with every adapter off, under the first run's template


class ServeError(WorkbenchError):
    """A request the server refuses: an OpenAI-style error with its HTTP status."""

    def __init__(self, message: str, status: int = 400, code: str | None = None, param: str | None = None,
                 kind: str = "invalid_request_error", headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.param, self.kind, self.headers = status, code, param, kind, headers


@dataclass
class Served:
    name: str  # what clients put in `model`
    adapter: str | None  # the PEFT adapter name on the shared model; None: the base alone
    template: Template
    gen: GenerationConfig  # the run's own generation defaults
    source: str  # where the weights come from, for /v1/models and the log


class ModelRegistry:
    """Load the base with the first adapter, then attach the others to the same weights (PEFT load_adapter)."""

    def __init__(self, runs: list[str], quantization: str = "none"):
        if not runs:
            raise ModelError("no run to serve")
        sources = [find_adapter(r) for r in runs]
        if any(s.path is None for s in sources):
            raise ModelError("every served run needs a saved adapter")
        if len(sources) > 1 and any(s.full_model for s in sources):
            raise ModelError("a full fine-tune is a whole model: serve it alone, not beside adapters")
        base = sources[0].base or "default"
        for s in sources[1:]:
            check_adapter_base(s, base)  # one copy of the base serves them all, so they must share it
        self.cm: ChatModel = load_chat_model(base, str(sources[0].path), quantization)
        self.models: dict[str, Served] = {}
        for i, source in enumerate(sources):
            name = _name(source)
            if name in self.models or name == BASE_NAME:
                raise ModelError(f"two served runs are both named {name!r}", "serve each run once")
            adapter = None
            if self.cm.has_adapter:
                adapter = "default" if i == 0 else f"adapter{i}"  # PEFT's name for the first one loaded
                if i:
                    self.cm.model.load_adapter(str(source.path), adapter_name=adapter)
            self.models[name] = Served(name, adapter, template_for(source), _gen(source), str(source.path))
            log.info("serving %s from %s (template %s)", name, source.path, self.models[name].template.name)
        if self.cm.has_adapter:
            first = next(iter(self.models.values()))
            self.models[BASE_NAME] = Served(BASE_NAME, None, first.template, first.gen, canonical_model(base))

    def get(self, name: str) -> Served:
        if name not in self.models:
            raise ServeError(f"The model '{name}' does not exist; served: {', '.join(self.models)}", 404,
                             "model_not_found", "model")
        return self.models[name]

    def activate(self, served: Served):
        """Switch the shared weights to this model's adapter; the context keeps the base alone for `base`.
        Only the batcher's one thread generates, so switching between batches is safe."""
        if served.adapter is None:
            return self.cm.base_only()
        self.cm.model.set_adapter(served.adapter)
        from contextlib import nullcontext

        return nullcontext()


def _name(source: AdapterSource) -> str:
    path = Path(source.path)
    return source.run.id if source.run is not None else (path.parent.name if path.name == "adapter" else path.name)


def _gen(source: AdapterSource) -> GenerationConfig:
    if source.run is None:
        return GenerationConfig()
    try:
        return source.run.config().gen
    except RunError:
        return GenerationConfig()
