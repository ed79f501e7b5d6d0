"""Texts → chunks a model can label: long texts split at paragraph boundaries up to a token budget, short
chunks skipped, exact and near duplicates dropped with the Data tab's cleaning steps (data/quality.py).

Every length is counted in tokens of the run's tokenizer, never in whitespace words: a Chinese, Japanese or
Thai paragraph has no spaces, so as words it would be one "word" and skipped as short, or never split."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from workbench.backtranslation.sources import SourceText, paragraphs
from workbench.data.quality import CleanOptions, clean

# Sentence ends: Latin ones before a space; CJK (。！？), Arabic (؟ ۔) and Devanagari (।) ones need none.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？؟۔।])\s*")


@dataclass(frozen=True)
class Chunk:
    id: str  # "<source>:<k>": stable across runs of the same texts, what resume matches on
    source: str
    index: int  # k-th chunk of its source
    text: str


@dataclass
class Chunking:
    chunks: list[Chunk] = field(default_factory=list)
    too_short: int = 0  # chunks under min_tokens
    duplicates: int = 0
    near_duplicates: int = 0
    split_texts: int = 0  # texts longer than the budget, split into several chunks

    def summary(self) -> str:
        return (f"{len(self.chunks):,} chunks ({self.split_texts:,} long texts split) · skipped {self.too_short:,} "
                f"short · dropped {self.duplicates:,} duplicates and {self.near_duplicates:,} near duplicates")


def _pieces(text: str, budget: int, count, tokenizer) -> list[str]:
    """Paragraphs packed greedily into pieces of at most `budget` tokens; an over-long paragraph is split at
    sentence ends, an over-long sentence at words (or, in a script without spaces, at the budget's token)."""
    units: list[str] = []
    for para in paragraphs(text):
        if count(para) <= budget:
            units.append(para)
            continue
        for sentence in filter(str.strip, _SENTENCE_END.split(para)):
            units += _hard_split(sentence, budget, count, tokenizer) if count(sentence) > budget else [sentence]
    pieces: list[str] = []
    current: list[str] = []
    for unit in units:
        if current and count(_join([*current, unit])) > budget:
            pieces.append(_join(current))
            current = []
        current.append(unit)
    if current:
        pieces.append(_join(current))
    return pieces


def _join(units: list[str]) -> str:
    return "\n\n".join(units)


def _hard_split(sentence: str, budget: int, count, tokenizer) -> list[str]:
    words, out, current = [], [], []
    for word in sentence.split():
        words += [word] if count(word) <= budget else _token_split(word, budget, tokenizer)
    for word in words:
        if current and count(" ".join([*current, word])) > budget:
            out.append(" ".join(current))
            current = []
        current.append(word)
    return out + ([" ".join(current)] if current else [])


def _token_split(text: str, budget: int, tokenizer) -> list[str]:
    """Text without spaces cut every `budget` tokens, at the characters where those tokens start (a byte-level
    token may cover part of a character, so a piece re-tokenized can differ by a token: a tenth is spared)."""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    step = max(1, budget * 9 // 10)
    cuts = sorted({0, *(offsets[i][0] for i in range(step, len(offsets), step)), len(text)})
    return [text[a:b] for a, b in zip(cuts, cuts[1:]) if text[a:b].strip()]


def token_counter(tokenizer):
    """The one length measure of chunks and instructions: tokens of the run's tokenizer."""
    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])
    return count


def chunk_texts(texts: list[SourceText], tokenizer, budget: int, min_tokens: int = 0, dedup: bool = True,
                near_threshold: float = 0.85) -> Chunking:
    count = token_counter(tokenizer)
    result = Chunking()
    candidates: list[Chunk] = []
    for st in texts:
        pieces = [st.text] if count(st.text) <= budget else _pieces(st.text, budget, count, tokenizer)
        result.split_texts += len(pieces) > 1
        for k, piece in enumerate(pieces):
            if count(piece) < min_tokens:
                result.too_short += 1
                continue
            candidates.append(Chunk(f"{st.source}:{k}", st.source, k, piece))
    if not dedup:
        result.chunks = candidates
        return result
    # The cleaning steps take canonical rows: the chunk is the row's output, its id rides along untouched.
    rows = [{"instruction": "", "input": "", "output": c.text, "chunk_id": c.id} for c in candidates]
    options = CleanOptions(exact_dedup=True, near_dedup=True, near_threshold=near_threshold, mask_pii=False)
    kept_rows, steps = clean([(list(range(len(rows))), rows)], options)
    kept = {row["chunk_id"] for row in kept_rows}
    result.chunks = [c for c in candidates if c.id in kept]
    by_step = {s.step: s.removed for s in steps}
    result.duplicates, result.near_duplicates = by_step.get("Exact duplicates", 0), by_step.get("Near duplicates", 0)
    return result
