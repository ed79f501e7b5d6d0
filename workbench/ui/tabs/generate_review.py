"""The Generate tab's review: a generation's pairs as an editable table (keep, scores, flags, the instruction),
the threshold that sets the default keep, sorting, and saving the kept rows as data/generated/<name>.jsonl.
Logic: workbench.backtranslation (review.py, pipeline.py: the dataset out)."""
from __future__ import annotations

import pandas as pd

from workbench.backtranslation import review
from workbench.backtranslation.pipeline import generated_dir, save_dataset
from workbench.backtranslation.sources import work_file_notes
from workbench.backtranslation.workdir import WorkDir, generated_root
from workbench.core.errors import ConfigError, DataError
from workbench.core.formatting import check_name
from workbench.core.paths import display
from workbench.ui.errors import handler

DATATYPES = ["bool", "number", "number", "str", "str", "str", "number", "str", "str"]  # review.COLUMNS


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=review.COLUMNS)


def _rows(table) -> list[dict]:
    if table is None:
        return []
    df = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table.get("data", []),
                                                                      columns=table.get("headers", review.COLUMNS))
    return df.astype(object).where(pd.notna(df), None).to_dict("records")


def _work(name: str) -> WorkDir:
    if not (name or "").strip():
        raise DataError("no generation chosen", "start one above, or pick a previous one")
    work = WorkDir(generated_root() / check_name(name, "generation name", DataError))
    if work.config() is None:
        raise DataError(f"no generation named '{name}'")
    return work


def limits(threshold, judge_threshold) -> review.Thresholds:
    """The two sliders (back-translation score, judge score) as the review's thresholds."""
    return review.Thresholds(float(threshold or 0), float(judge_threshold or 0))


@handler
def open_generation(name, threshold, judge_threshold=0):
    work = _work(name)
    pairs = work.pairs()
    if not pairs:
        done = len(work.labels())
        total = len(work.chunks() or [])
        raise DataError(f"generation '{name}' is not finished ({done} of {total} chunks labelled)",
                        "resume its job to finish it")
    rows = review.table_rows(pairs, limits(threshold, judge_threshold))
    return _frame(rows), survivors_text(work, rows)


def survivors_text(work: WorkDir, rows: list[dict]) -> str:
    summary = work.summary()
    judge = summary.get("judge")
    judged = f" · {review.judge_text(judge)}" if judge else ""
    return f"{review.survivors(rows)} · {summary.get('reading', '')} · {summary.get('chunking', '')}{judged}"


def files_note(name: str) -> str:
    """Files skipped (why) and decoded by detection (encoding), once the job has read the texts: said in the
    job's message, so nobody misses a file left out."""
    notes = work_file_notes(WorkDir(generated_root() / name).summary()) if name else []
    return "\n\n⚠️ " + " · ".join(notes) if notes else ""


@handler
def apply_threshold(name, table, threshold, judge_threshold=0):
    work = _work(name)
    rows = review.rethreshold(_rows(table), {p["id"]: p for p in work.pairs()}, limits(threshold, judge_threshold))
    return _frame(rows), survivors_text(work, rows)


@handler
def count_kept(name, table):
    return survivors_text(_work(name), _rows(table))


@handler
def sort_review(name, table, sort):
    order = [p["id"] for p in _work(name).pairs()]
    return _frame(review.sort_rows(_rows(table), sort, order))


@handler
def save_generated(name, table, threshold, judge_threshold, out_name, overwrite):
    work = _work(name)
    out_name = check_name((out_name or "").strip() or work.name, "dataset name", ConfigError)
    pairs, counts = review.curated(work, _rows(table), limits(threshold, judge_threshold))
    path = save_dataset(pairs, generated_dir() / f"{out_name}.jsonl", work, limits(threshold, judge_threshold),
                        overwrite=bool(overwrite), review=counts)
    return (f"✅ saved {len(pairs):,} rows to `{display(path)}` (card: `{display(path.with_suffix(''))}.card.md`); "
            "it is listed in the Data tab now.", display(path))
