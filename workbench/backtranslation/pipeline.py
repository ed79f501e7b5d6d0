"""The generation itself, the function the CLI and the `generate` job's worker call: read and chunk the texts
(once), label the chunks not yet labelled in batches (the evaluation's batched path), score every candidate,
then build the pairs for review and, when an output is given, write the dataset.

Labels (and the judge's verdicts) are appended to the work folder batch by batch, so a stop or a kill loses at
most one batch and a second start with the same settings labels (and judges) only what is missing: every chunk
ends up labelled exactly once.

The dataset out: data/generated/<name>.jsonl in Alpaca form (instruction, empty input, the original text as
output) with each row's provenance, and <name>.card.md saying how it was made. Both are written atomically
and never replace a file unless asked.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from workbench.backtranslation import review
from workbench.backtranslation.chunks import Chunk, chunk_texts, token_counter
from workbench.backtranslation.plan import GenerationPlan, plan
from workbench.backtranslation.review import Thresholds, instruction_length, judge_result, judge_text
from workbench.backtranslation.sources import read_texts, work_file_notes
from workbench.backtranslation.workdir import WorkDir
from workbench.config.generate import GenerateConfig
from workbench.core.errors import ConfigError, DataError
from workbench.core.files import atomic_write_text, create_text
from workbench.core.paths import data_dir, display
from workbench.generation.decoding import generate_batch
from workbench.prompts.rendering import prompt_text

log = logging.getLogger(__name__)
Progress = Callable[[int, int, str], None]


@dataclass
class GenerationResult:
    state: str  # completed | stopped
    work: str  # the work folder
    labelled: int
    total: int
    pairs: list[dict] = field(default_factory=list)
    dataset: str | None = None
    kept: int = 0
    seconds: float = 0.0
    judge: dict | None = None  # judging/run.py judge_pairs' summary, when a judge was given
    files: list[str] = field(default_factory=list)  # files skipped (why) and decoded by detection (encoding)

    def summary(self) -> str:
        """The CLI's last lines: the outcome, then what happened to the files (one line each kind)."""
        return "\n".join([self._outcome(), *self.files])

    def _outcome(self) -> str:
        if self.state != "completed":
            where = ("while judging, every chunk labelled" if self.labelled == self.total
                     else f"after {self.labelled:,} of {self.total:,} chunks")
            return f"stopped {where}; start it again with the same settings to finish it ({self.work})"
        kept = f" · kept {self.kept:,} → {self.dataset}" if self.dataset else " · review them in the Generate tab"
        judged = f" · {judge_text(self.judge)}" if self.judge else ""
        return f"{len(self.pairs):,} pairs labelled and scored in {self.seconds:.0f} s{judged}{kept}"


def prompt_budget(p: GenerationPlan, tokenizer) -> int:
    """Tokens the reverse prompt takes around an empty text."""
    return len(tokenizer(prompt_text(p.template, {"instruction": "", "input": "", "output": ""}, tokenizer),
                         add_special_tokens=False)["input_ids"])


def prepare_chunks(cfg: GenerateConfig, p: GenerationPlan, tokenizer) -> list[Chunk]:
    """The work folder's chunks, read and chunked on the first start only."""
    saved = p.work.chunks()
    if saved is not None:
        return saved
    reading = read_texts(cfg.texts, cfg.pasted, cfg.column, cfg.split_paragraphs)
    budget = cfg.max_chunk_tokens or max(32, p.run.config().data.max_length - prompt_budget(p, tokenizer))
    chunking = chunk_texts(reading.texts, tokenizer, budget, cfg.min_tokens, cfg.dedup, cfg.near_threshold)
    chunks = chunking.chunks[:cfg.limit] if cfg.limit else chunking.chunks
    if not chunks:
        raise DataError(f"no chunk left to label: {chunking.summary()}",
                        "lower min_tokens, or give longer texts")
    p.work.save_chunks(chunks, {"run": p.run.id, "template": p.template.name, "base": p.base,
                                "reading": reading.summary(), "texts": len(reading.texts),
                                "skipped_files": reading.skipped, "encodings": reading.encodings,
                                "marked": reading.marked,
                                "chunking": chunking.summary(), "chunks": len(chunks), "budget_tokens": budget,
                                "too_short": chunking.too_short, "duplicates": chunking.duplicates,
                                "near_duplicates": chunking.near_duplicates, "limited": len(chunking.chunks) -
                                len(chunks)})
    log.info("%s · %s", reading.summary(), chunking.summary())
    return chunks


def by_length(chunks: list[Chunk], tokenizer) -> list[Chunk]:
    """Chunks shortest first, so each batch holds texts of similar length and pads less (3.45x vs 3.10x over one
    at a time at batch 8, benchmarks/NOTES.md). The pairs keep the source order: they are built by chunk id."""
    return sorted(chunks, key=lambda c: len(tokenizer(c.text, add_special_tokens=False)["input_ids"]))


def label_batch(cfg: GenerateConfig, p: GenerationPlan, cm, chunks: list[Chunk]) -> list[dict]:
    """Candidates for each chunk, each with its back-translation score and flags."""
    tok = cm.tokenizer
    prompts = [prompt_text(p.template, {"instruction": "", "input": "", "output": c.text}, tok) for c in chunks]
    per_chunk: list[list[dict]] = [[] for _ in chunks]
    for k in range(cfg.candidates):
        # The first candidate decodes as configured; the others are sampled, each with its own seed.
        settings = cfg.gen if k == 0 else cfg.gen.with_values(do_sample=True, seed=cfg.gen.seed + k)
        outs = generate_batch(cm, prompts, settings, p.template, cfg.batch_size)
        scores = review.backtranslation_scores(cm, [(o, c.text) for o, c in zip(outs, chunks)], cfg.batch_size)
        for i, (out, score) in enumerate(zip(outs, scores)):
            per_chunk[i].append({"instruction": out, "score": score, **review.flags(out, chunks[i].text)})
    return [{"id": c.id, "candidates": cands} for c, cands in zip(chunks, per_chunk)]


def build_pairs(chunks: list[Chunk], labels: dict[str, dict], tokenizer) -> list[dict]:
    """One pair per chunk in chunk order: the best candidate, its scores, flags and length in tokens."""
    count, pairs = token_counter(tokenizer), []
    for c in chunks:
        cands = labels[c.id]["candidates"]
        best = review.best_candidate(cands)
        pairs.append({"id": c.id, "source": c.source, "chunk": c.index, "text": c.text,
                      "instruction": best["instruction"], "score": best["score"],
                      "instruction_tokens": count(best["instruction"]), "empty": best["empty"],
                      "copies_text": best["copies_text"], "candidates": len(cands),
                      "candidate_scores": [x["score"] for x in cands]})
    review.mark_repeats(pairs)
    return pairs


def generate_dataset(cfg: GenerateConfig, progress: Progress | None = None,
                     stop: threading.Event | None = None) -> GenerationResult:
    from workbench.generation.chat_model import load_chat_model

    t0 = time.time()
    p = plan(cfg, claim=True)
    cm = load_chat_model(p.base, p.adapter)
    chunks = prepare_chunks(cfg, p, cm.tokenizer)
    files = work_file_notes(p.work.summary())
    labels = p.work.labels()
    todo = by_length([c for c in chunks if c.id not in labels], cm.tokenizer)
    if labels:
        log.info("resuming %s: %d of %d chunks already labelled", p.work.name, len(chunks) - len(todo), len(chunks))
    done = len(chunks) - len(todo)
    if progress:
        progress(done, len(chunks), "labelling")
    for start in range(0, len(todo), cfg.batch_size):
        if stop is not None and stop.is_set():
            return GenerationResult("stopped", display(p.work.path), done, len(chunks), seconds=time.time() - t0,
                                    files=files)
        records = label_batch(cfg, p, cm, todo[start:start + cfg.batch_size])
        p.work.append_labels(records)
        labels.update({r["id"]: r for r in records})
        done += len(records)
        if progress:
            progress(done, len(chunks), "labelling")
    pairs = build_pairs(chunks, labels, cm.tokenizer)
    judge, verdict = cfg.judge.validate(), None
    if judge.enabled:
        from workbench.judging.run import judge_pairs

        verdict = judge_pairs(pairs, judge, progress=lambda d, n: progress and progress(d, n, "judging"),
                              known=p.work.judgements(), record=p.work.append_judgements, stop=stop)
        if verdict is None:
            return GenerationResult("stopped", display(p.work.path), done, len(chunks), seconds=time.time() - t0,
                                    files=files)
        p.work.save_summary(p.work.summary() | {"judge": verdict})
        log.info("judge %s: mean score %s (%d pairs failed)", verdict["model"], verdict["mean_score"],
                 verdict["failed_rows"])
    p.work.save_pairs(pairs)
    result = GenerationResult("completed", display(p.work.path), len(chunks), len(chunks), pairs,
                              seconds=time.time() - t0, judge=verdict, files=files)
    if p.out is not None:
        limits = Thresholds(cfg.min_score, cfg.min_judge_score)
        kept = [x for x in pairs if limits.passes(x)]
        result.dataset = display(save_dataset(kept, p.out, p.work, limits, overwrite=cfg.overwrite,
                                              review={"below_threshold": len(pairs) - len(kept)}))
        result.kept = len(kept)
    return result


# The dataset out, with its card.

def generated_dir() -> Path:
    return data_dir() / "generated"


def card_path(out: Path) -> Path:
    return out.with_name(out.stem + ".card.md")


def dataset_rows(pairs: list[dict], work: WorkDir) -> list[dict]:
    cfg, meta = work.config(), work.summary()
    generation = cfg.gen.to_dict() | {"candidates": cfg.candidates}
    return [{"instruction": p["instruction"].strip(), "input": "", "output": p["text"],
             "provenance": {"source": p["source"], "chunk": int(p["chunk"]), "run": meta.get("run", ""),
                            "template": meta.get("template", ""), "generation": generation,
                            "generation_name": work.name, "edited": bool(p.get("edited", False)),
                            "scores": {"backtranslation": float(p["score"]),
                                       "instruction_tokens": instruction_length(p),
                                       "empty": bool(p["empty"]), "copies_text": bool(p["copies_text"]),
                                       "repeated": bool(p["repeated"]),
                                       **({"judge": p["judge_score"]} if p.get("judge_score") is not None else {})}}}
            for p in pairs]


def files_section(meta: dict) -> list[str]:
    """Every file skipped (with why) and every file not read as plain UTF-8 (with its encoding), one a line."""
    lines = [f"- `{f}`: skipped, {why}" for f, why in meta.get("skipped_files", [])]
    lines += [f"- `{f}`: decoded as {enc} (detection)" for f, enc in meta.get("encodings", {}).items()]
    lines += [f"- `{f}`: decoded as {enc} (byte-order mark)" for f, enc in meta.get("marked", {}).items()]
    return ["## Files", "", *lines, ""] if lines else []


def card_text(out: Path, rows: list[dict], work: WorkDir, limits: Thresholds, review: dict) -> str:
    cfg, meta = work.config(), work.summary()
    scores = sorted(r["provenance"]["scores"]["backtranslation"] for r in rows)
    median = scores[len(scores) // 2] if scores else 0.0
    lines = [f"# {out.stem}", "",
             f"An instruction dataset generated by instruction back-translation on {time.strftime('%Y-%m-%d %H:%M')}: "
             f"the reverse-instruction run `{meta.get('run', '')}` (template `{meta.get('template', '')}`, base "
             f"`{meta.get('base', '')}`) wrote an instruction for each text; `output` is the original text.", "",
             "## Counts", "", "| | |", "|---|---|",
             f"| texts read | {meta.get('texts', 0):,} |",
             f"| files skipped | {len(meta.get('skipped_files', [])):,} |",
             f"| chunks skipped as short (< {cfg.min_tokens} tokens) | {meta.get('too_short', 0):,} |",
             f"| duplicates / near duplicates dropped | {meta.get('duplicates', 0):,} / "
             f"{meta.get('near_duplicates', 0):,} |",
             f"| chunks labelled | {meta.get('chunks', 0):,} |",
             f"| dropped below a score threshold | {review.get('below_threshold', 0):,} |",
             f"| dropped / edited by hand | {review.get('dropped', 0):,} / {review.get('edited', 0):,} |",
             f"| **rows written** | **{len(rows):,}** |", "",
             "## Settings", "",
             f"- minimum back-translation score: {limits.score:g} (median of the kept rows: {median:.1f})"
             + (f"; minimum judge score: {limits.judge:g}" if limits.judge else ""),
             f"- chunk budget: {meta.get('budget_tokens', 0)} tokens; deduplication: "
             f"{'on, near threshold ' + str(cfg.near_threshold) if cfg.dedup else 'off'}",
             f"- candidates per text: {cfg.candidates}; generation: `{json.dumps(cfg.gen.to_dict())}`",
             f"- texts: `{cfg.texts or 'pasted'}`; reading: {meta.get('reading', '')}",
             *([f"- LLM judge: `{j['model']}`, rubric `{j['rubric']}`, over all pairs: {judge_result(j)}"]
               if (j := meta.get("judge")) else []), "", *files_section(meta),
             "## Columns", "",
             "`instruction` (generated), `input` (empty), `output` (your text), `provenance` (source file and chunk, "
             "run, template, generation settings, scores: `backtranslation` = 100·exp(mean log-likelihood of the "
             "text given the instruction under the base model), `instruction_tokens` (its length in tokens of the "
             "run's tokenizer), flags `empty`, `copies_text`, `repeated`; `judge` = the LLM judge's 0-100 when one was used).", "",
             f"Train a forward model on it with the `alpaca` template: `python -m workbench train --data.source "
             f"{display(out)} --data.template alpaca`."]
    return "\n".join(lines) + "\n"


def save_dataset(pairs: list[dict], out: str | Path, work: WorkDir, limits: Thresholds, overwrite: bool = False,
                 review: dict | None = None) -> Path:
    out = Path(out)
    if out.suffix != ".jsonl":
        raise ConfigError(f"the dataset must be a .jsonl file, got {out.name}")
    if not pairs:
        raise DataError("no row is left to save", "lower the score thresholds or keep more rows")
    if out.exists() and not overwrite:
        raise ConfigError(f"{display(out)} already exists", "choose another name, or tick overwrite to replace it")
    rows = dataset_rows(pairs, work)
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in rows]
    card = card_text(out, rows, work, limits, review or {})
    write = atomic_write_text if overwrite else create_text
    try:
        write(out, lines)
    except FileExistsError:
        raise ConfigError(f"{display(out)} was created meanwhile", "choose another name") from None
    atomic_write_text(card_path(out), card)
    return out
