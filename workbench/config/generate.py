"""GenerateConfig: instruction back-translation. A reverse-instruction run writes the instruction for each of
the user's own texts; the pairs are scored, curated and saved as an Alpaca dataset to train a forward model.
The CLI's options, the Generate tab's form and the `generate` job all read these fields."""
from __future__ import annotations

from dataclasses import dataclass, field

from workbench.config.fields import Settings, opt
from workbench.config.decoding import GenerationConfig
from workbench.config.tasks import JudgeConfig, WithJudge
from workbench.core.errors import ConfigError


@dataclass
class LabellingGeneration(GenerationConfig):
    # An instruction is short: a long budget only lets a weak model ramble on past it.
    max_new_tokens: int = opt(64, "Longest instruction in tokens.", min=1, max=8192)


@dataclass
class GenerateConfig(WithJudge, Settings):
    run: str = opt("", "A finished reverse-instruction run (outputs/<run-id> or its id): its adapter writes the "
                       "instructions.")
    texts: str = opt("", "Your texts: a folder of .txt / .md files, one such file, or a dataset file (JSON, JSONL, "
                         "CSV, Parquet) whose text column is used.")
    pasted: str = opt("", "Texts pasted directly instead of `texts` (split on blank lines).", flag="--pasted")
    column: str = opt("", "Dataset files only: the column holding the texts (empty: output, response, text, "
                          "content or completion, the first one present).")
    split_paragraphs: bool = opt(False, "Files: every blank-line-separated paragraph is its own text (off: one text "
                                        "per file, long ones chunked by paragraphs).", flag="--split-paragraphs")
    max_chunk_tokens: int = opt(0, "Longest chunk in tokens of the run's model; longer texts are split at paragraph "
                                   "boundaries (0 = the run's max_length minus the prompt).", min=0, max=32768)
    min_tokens: int = opt(10, "Chunks with fewer tokens (of the run's tokenizer, so any script counts) are skipped.",
                          min=0, max=10000)
    dedup: bool = opt(True, "Drop exact and near-duplicate chunks (MinHash, as the Data tab's cleaning).",
                      flag="--keep-duplicates")
    near_threshold: float = opt(0.85, "Near-duplicate similarity (estimated Jaccard of word 3-grams).",
                                min=0.5, max=1.0)
    limit: int = opt(0, "Label at most this many chunks (0 = all).", min=0)
    candidates: int = opt(1, "Instructions written per text; the best-scoring one is kept. Beyond the first they "
                             "are sampled (gen.temperature, gen.top_p).", min=1, max=16)
    batch_size: int = opt(8, "Texts generated together.", min=1, max=256)
    gen: LabellingGeneration = field(default_factory=LabellingGeneration)
    min_score: float = opt(0.0, "Keep pairs whose back-translation score is at least this (0-100: the text's "
                                "average token probability given the instruction, under the base model).",
                           min=0.0, max=100.0)
    min_judge_score: float = opt(0.0, "With a judge: keep pairs the judge scored at least this (0-100; 0 = no "
                                      "judge threshold; a pair the judge could not score is dropped above 0).",
                                 min=0.0, max=100.0)
    out: str = opt("", "The dataset to write (data/generated/<name>.jsonl). Empty: label and score only, for "
                       "review in the Generate tab.")
    overwrite: bool = opt(False, "Replace an existing dataset of that name.")
    name: str = opt("", "Name of this generation (its work folder outputs/generated/<name>/); default: from out, "
                        "else timestamped.")
    # The optional LLM judge: scores each pair 0-100 with the `pair` rubric (templates/judge/pair.yaml); the
    # `judge:` section (config/tasks.py: JudgeConfig), the flags --judge-url, --judge-model, --judge-local… (judge.mode stays
    # score: a pair is always scored; validate() says so rather than ignoring another mode).
    judge: JudgeConfig = field(default_factory=JudgeConfig)

    @classmethod
    def from_dict(cls, d: dict | None):
        # Work folders made before lengths were tokens say min_words; read it as min_tokens so they still open.
        if isinstance(d, dict) and "min_words" in d:
            d = {**{k: v for k, v in d.items() if k != "min_words"}, "min_tokens": d["min_words"]}
        return super().from_dict(d)

    def validate(self) -> "GenerateConfig":
        """Pure checks of values and their combinations (files are looked at by backtranslation.plan)."""
        self.check_ranges()
        self.gen.validate()
        if not self.run.strip():
            raise ConfigError("choose a reverse-instruction run (run)", "train one with the default recipe first")
        if bool(self.texts.strip()) == bool(self.pasted.strip()):
            raise ConfigError("give either texts (a folder, a file or a dataset) or pasted text, not both"
                              if self.texts.strip() else "no texts given",
                              "texts: data/my-emails/ or a .txt / .jsonl file under data/")
        if self.out.strip() and not self.out.strip().endswith(".jsonl"):
            raise ConfigError(f"out must be a .jsonl file, got {self.out!r}", "e.g. data/generated/my-emails.jsonl")
        if self.judge.mode != "score":
            raise ConfigError("judge.mode: a generated pair is always scored (0-100) with the pair rubric; "
                              f"got {self.judge.mode!r}", "leave judge.mode at score (pairwise is for evaluations)")
        self.judge.validate()
        return self
