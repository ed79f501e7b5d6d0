"""A generation's work folder, outputs/generated/<name>/: what resume and review read.

  config.yaml    the GenerateConfig it runs with (a second start must describe the same labelling)
  chunks.jsonl   the chunks to label, written once
  labels.jsonl   one line per labelled chunk (its candidates and their scores), appended batch by batch
  judgements.jsonl  one line per judged pair (when a judge is set), appended round by round
  pairs.jsonl    the scored pairs once every chunk is labelled (best candidate, flags) - what review shows
  summary.json   counts of the reading and chunking, for the card
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from workbench.backtranslation.chunks import Chunk
from workbench.config.generate import GenerateConfig
from workbench.core.errors import ConfigError
from workbench.core.files import atomic_write_text
from workbench.core.formatting import check_name, timestamped
from workbench.core.paths import outputs_dir

# The settings that decide what is labelled and how: a resumed generation must not change them.
IDENTITY = ("run", "texts", "pasted", "column", "split_paragraphs", "max_chunk_tokens", "min_tokens", "dedup",
            "near_threshold", "limit", "candidates", "gen")


def generated_root() -> Path:
    return outputs_dir() / "generated"


def work_name(cfg: GenerateConfig) -> str:
    if cfg.name.strip():
        return check_name(cfg.name, "generation name", ConfigError)
    if cfg.out.strip():
        return check_name(Path(cfg.out).stem, "output name", ConfigError)
    return timestamped("generate")


class WorkDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def name(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    def config(self) -> GenerateConfig | None:
        f = self.file("config.yaml")
        return GenerateConfig.load(f) if f.exists() else None

    def check(self, cfg: GenerateConfig) -> None:
        """An existing folder must label the same way as `cfg` (then `cfg` resumes it)."""
        old = self.config()
        if old is not None:
            changed = [k for k in IDENTITY if _value(old, k) != _value(cfg, k)]
            if changed:
                raise ConfigError(f"a generation named '{self.name}' already exists with other settings "
                                  f"({', '.join(changed)})",
                                  "give it another name, or the same settings to resume it")

    def claim(self, cfg: GenerateConfig) -> None:
        """Start this folder for `cfg`, or re-enter it to resume."""
        self.check(cfg)
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.file("config.yaml"), cfg.to_yaml())

    # -- chunks -------------------------------------------------------------------------------------
    def chunks(self) -> list[Chunk] | None:
        f = self.file("chunks.jsonl")
        if not f.exists():
            return None
        return [Chunk(**json.loads(line)) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]

    def save_chunks(self, chunks: list[Chunk], summary: dict) -> None:
        atomic_write_text(self.file("chunks.jsonl"), (json.dumps(asdict(c), ensure_ascii=False) + "\n"
                                                      for c in chunks))
        self.save_summary(summary)

    def summary(self) -> dict:
        f = self.file("summary.json")
        return json.loads(f.read_text(encoding="utf-8")) if f.exists() else {}

    def save_summary(self, summary: dict) -> None:
        atomic_write_text(self.file("summary.json"), json.dumps(summary, indent=2, ensure_ascii=False))

    # -- labels and judgements: appended, so a stop or a kill loses at most the batch being written ---
    def labels(self) -> dict[str, dict]:
        """Labelled chunks by id (the last line wins)."""
        return self._appended("labels.jsonl")

    def append_labels(self, records: list[dict]) -> None:
        self._append("labels.jsonl", records)

    def judgements(self) -> dict[str, dict]:
        """The judge's verdicts on pairs by id (judging/run.py judge_pairs decides which it reuses)."""
        return self._appended("judgements.jsonl")

    def append_judgements(self, records: list[dict]) -> None:
        self._append("judgements.jsonl", records)

    def _appended(self, name: str) -> dict[str, dict]:
        """An appended file's records by id (the last line wins); a torn last line from a killed worker is cut
        off."""
        f = self.file(name)
        if not f.exists():
            return {}
        data = f.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(f, "r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)
            data = data[:data.rfind(b"\n") + 1]
        out = {}
        for line in data.decode("utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                out[record["id"]] = record
        return out

    def _append(self, name: str, records: list[dict]) -> None:
        with open(self.file(name), "a", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
            fh.flush()
            os.fsync(fh.fileno())

    # -- pairs --------------------------------------------------------------------------------------
    def pairs(self) -> list[dict]:
        f = self.file("pairs.jsonl")
        if not f.exists():
            return []
        return [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]

    def save_pairs(self, pairs: list[dict]) -> None:
        atomic_write_text(self.file("pairs.jsonl"), (json.dumps(p, ensure_ascii=False) + "\n" for p in pairs))


def _value(cfg: GenerateConfig, key: str):
    value = cfg.get(key) if key != "gen" else cfg.gen.to_dict()
    return value.strip() if isinstance(value, str) else value


def list_generations() -> list[WorkDir]:
    """Work folders, newest first."""
    root = generated_root()
    if not root.is_dir():
        return []
    found = [WorkDir(p) for p in root.iterdir() if (p / "config.yaml").exists()]
    return sorted(found, key=lambda w: w.file("config.yaml").stat().st_mtime, reverse=True)
