"""Judge an evaluation's rows: build every chat from the rubric, ask the judge (all at once: concurrent
over HTTP, batched in-process), read each reply, and add the judge's columns to the rows. A row whose
request or reply failed gets its status and is counted in `failed_rows`; it never stops the evaluation.
The summary's intervals (Wilson for rates, normal for a mean) are at the end."""
from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable

from workbench.config.tasks import JudgeConfig
from workbench.core.errors import EvalError
from workbench.judging import rubric as rubrics
from workbench.judging.client import JudgeCallError
from workbench.judging.rubric import JudgeOutputError, parse_score, parse_verdict

# The columns a judge adds to an evaluation's rows (evaluation/results.py COLUMNS lists them too).
COLUMNS = ["judge_score", "base_judge_score", "judge_verdict", "judge_reason", "judge_status"]
# Generate judges its pairs in rounds of this many requests per concurrency slot: a stop waits for one round at most.
ROUND_PER_SLOT = 4
# Pairwise, adapter's view: answer A is the adapter's in the first order, the base's in the second.
_OUTCOME = {("A", "first"): "win", ("B", "first"): "loss", ("A", "second"): "loss", ("B", "second"): "win"}


def make_judge(cfg: JudgeConfig):
    if cfg.url.strip():
        from workbench.core import policy
        from workbench.judging.client import HttpJudge

        # Under the app's policy (a queued job's worker inherits WORKBENCH_POLICY_*), checked again right before
        # the key is read: a job queued before the operator narrowed the policy sends nothing. The direct CLI in
        # a user's own shell has no policy: its user sees every endpoint's error body.
        governed = policy.ENV_SECRETS in os.environ
        if governed:
            cfg.check_policy(policy.current())
        shown = not governed or policy.current().endpoint_allowed(cfg.url)
        return HttpJudge(cfg.url, cfg.model, cfg.api_key(), cfg.timeout, cfg.retries, cfg.concurrency,
                         cfg.max_tokens, show_body=shown)
    return LocalJudge(cfg.local.strip(), cfg.max_tokens)


class LocalJudge:
    """The judge as a model loaded in this process (default: the embedded model: weak, but offline). Its chats
    are rendered with the model's own chat template and generated in batches, greedily. Its imports are lazy:
    an HTTP judge never loads torch."""

    def __init__(self, model: str = "default", max_tokens: int = 64, batch_size: int = 8, cache=None):
        from workbench.config.decoding import GenerationConfig
        from workbench.generation.chat_model import CACHE
        from workbench.prompts import registry

        self.cm = (cache or CACHE).get(model or "default", None)
        self.template = registry.load("model")  # the judge's own chat format, whatever run is judged
        self.settings = GenerationConfig(max_new_tokens=int(max_tokens), repetition_penalty=1.0)
        self.batch_size = batch_size
        self.name = f"local:{model or 'default'}"

    def complete_all(self, chats: list[list[dict]], progress: Callable[[int, int], None] | None = None
                     ) -> list[str]:
        from workbench.generation.decoding import generate_batch
        from workbench.prompts import rendering

        prompts = [rendering.prompt_text(self.template, {"messages": chat}, self.cm.tokenizer) for chat in chats]
        return generate_batch(self.cm, prompts, self.settings, self.template, self.batch_size, progress=progress)

    def close(self) -> None:
        pass


def ask(judge, chats: list[list[dict]], progress: Callable[[int, int], None] | None) -> list:
    """Every chat's reply (or its error), in order; the judge is closed afterwards, whatever happens."""
    try:
        return judge.complete_all(chats, progress)
    finally:
        judge.close()


def judge_rows(rows: list[dict], cfg: JudgeConfig, progress: Callable[[int, int], None] | None = None) -> dict:
    """Fill the judge columns of `rows` (evaluation rows: input, generated, base_generated, ground_truth) and
    return the summary's `judge` object."""
    cfg.validate()
    rubric = rubrics.for_mode(cfg.mode, cfg.rubric)
    if cfg.mode == "pairwise" and any(r.get("base_generated") is None for r in rows):
        raise EvalError("pairwise judging compares the adapter with the base model: keep compare_base on",
                        "drop --no-base, or use --judge-mode score")
    chats, slots = [], []  # slots[i]: (row index, which answer or order) of chats[i]
    for k, r in enumerate(rows):
        common = {"input": r.get("input") or "", "reference": r.get("ground_truth") or ""}
        if cfg.mode == "score":
            for who in ("adapter", "base") if r.get("base_generated") is not None else ("adapter",):
                answer = r.get("generated") if who == "adapter" else r.get("base_generated")
                chats.append(rubric.messages(**common, response=answer or ""))
                slots.append((k, who))
        else:
            a, b = r.get("generated") or "", r.get("base_generated") or ""
            chats.append(rubric.messages(**common, response_a=a, response_b=b))
            slots.append((k, "first"))
            chats.append(rubric.messages(**common, response_a=b, response_b=a))
            slots.append((k, "second"))
    t0 = time.time()
    judge = make_judge(cfg)
    replies = ask(judge, chats, progress)
    for r in rows:
        r.update({c: None for c in COLUMNS}, judge_status="ok")
    found: dict[tuple[int, str], object] = {}
    for (k, slot), reply in zip(slots, replies):
        try:
            if isinstance(reply, Exception):
                raise reply
            found[(k, slot)] = (parse_score if cfg.mode == "score" else parse_verdict)(reply)
        except (JudgeOutputError, JudgeCallError) as e:  # the row's status; the other rows go on
            if rows[k]["judge_status"] == "ok":
                rows[k]["judge_status"] = str(e) if slot in ("adapter", "first") else f"{slot}: {e}"
    summary = {"mode": cfg.mode, "model": judge.name, "rubric": rubric.name}
    if cfg.mode == "score":
        _fill_scores(rows, found)
        scores = [r["judge_score"] for r in rows if r["judge_status"] == "ok"]
        base = [r["base_judge_score"] for r in rows if r["judge_status"] == "ok" and r["base_judge_score"] is not None]
        ci = mean_ci(scores)
        summary.update(mean_score=_mean(scores), mean_score_ci=list(ci) if ci else None, base_mean_score=_mean(base),
                       judged_rows=len(scores))
    else:
        verdicts = _fill_verdicts(rows, found)
        summary.update(pairwise_summary(verdicts))
    summary.update(failed_rows=sum(r["judge_status"] != "ok" for r in rows), seconds=round(time.time() - t0, 1))
    return summary


def judge_pairs(pairs: list[dict], cfg: JudgeConfig, progress: Callable[[int, int], None] | None = None,
                known: dict[str, dict] | None = None,
                record: Callable[[list[dict]], None] | None = None, stop: threading.Event | None = None
                ) -> dict | None:
    """Score generated pairs (Generate: instruction + the user's text) with the `pair` rubric: fills each pair's
    judge_score / judge_reason / judge_status and returns {model, rubric, mean_score, failed_rows, seconds}.

    Resumable: the pairs are judged in rounds of `concurrency` x ROUND_PER_SLOT; after each round `record` gets
    its judgements ({id, judge, judge_score, judge_reason, judge_status, final}) to keep, and a set `stop` ends
    the judging there (returns None). `known` holds the judgements a stopped run kept, by pair id: those of the
    same judge (judgement_key) and final (a reply was read, or could not be) are not asked again; a request that
    failed (unreachable, 401, timeout) is."""
    rubric = rubrics.for_mode("pair", cfg.validate().rubric)
    key = judgement_key(cfg, rubric.name)
    done = {i: j for i, j in (known or {}).items() if j.get("judge") == key and j.get("final")}
    todo = [p for p in pairs if p["id"] not in done]
    t0 = time.time()
    if todo:
        judge = make_judge(cfg)
        try:
            step = cfg.concurrency * ROUND_PER_SLOT
            for start in range(0, len(todo), step):
                if stop is not None and stop.is_set():
                    return None
                batch = todo[start:start + step]
                offset = len(pairs) - len(todo) + start
                replies = judge.complete_all([rubric.messages(instruction=p["instruction"], text=p["text"])
                                              for p in batch],
                                             progress and (lambda d, n: progress(offset + d, len(pairs))))
                made = [{"id": p["id"], "judge": key, **_pair_judgement(reply)} for p, reply in zip(batch, replies)]
                done.update((j["id"], j) for j in made)
                if record:
                    record(made)
        finally:
            judge.close()
    for p in pairs:
        p.update({c: done[p["id"]][c] for c in ("judge_score", "judge_reason", "judge_status")})
    scores = [p["judge_score"] for p in pairs if p["judge_status"] == "ok"]
    return {"model": cfg.judge_name(), "rubric": rubric.name, "mean_score": _mean(scores),
            "judged_rows": len(scores), "failed_rows": len(pairs) - len(scores), "seconds": round(time.time() - t0, 1)}


def judgement_key(cfg: JudgeConfig, rubric: str) -> str:
    """Who judged, and how: a kept judgement is reused only by the same judge with the same rubric."""
    return f"{cfg.url.strip()}|{cfg.judge_name()}|{rubric}|{cfg.max_tokens}"


def _pair_judgement(reply) -> dict:
    """A reply's score and reason, or its status. `final`: asking again would not change it (a reply that could
    not be read comes back the same from a greedy judge; a failed request may succeed next time)."""
    try:
        if isinstance(reply, Exception):
            raise reply
        score, reason = parse_score(reply)
        return {"judge_score": score, "judge_reason": reason, "judge_status": "ok", "final": True}
    except JudgeOutputError as e:
        return {"judge_score": None, "judge_reason": None, "judge_status": str(e), "final": True}
    except JudgeCallError as e:
        return {"judge_score": None, "judge_reason": None, "judge_status": str(e), "final": False}


def _fill_scores(rows: list[dict], found: dict) -> None:
    for k, r in enumerate(rows):
        if r["judge_status"] != "ok":
            continue
        r["judge_score"], r["judge_reason"] = found[(k, "adapter")]
        if (k, "base") in found:
            r["base_judge_score"] = found[(k, "base")][0]


def _fill_verdicts(rows: list[dict], found: dict) -> list[str]:
    """A row is a win (or loss) only when both orders agree; disagreeing orders are position bias: a tie."""
    verdicts = []
    for k, r in enumerate(rows):
        if r["judge_status"] != "ok":
            continue
        (v1, why1), (v2, why2) = found[(k, "first")], found[(k, "second")]
        o1, o2 = _OUTCOME.get((v1, "first"), "tie"), _OUTCOME.get((v2, "second"), "tie")
        r["judge_verdict"] = o1 if o1 == o2 else "tie"
        r["judge_reason"] = why1 or why2
        verdicts.append(r["judge_verdict"])
    return verdicts


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


# -- intervals for what a judge reports: Wilson score intervals for win / tie / loss rates (sound at small n
# and at rates near 0 or 1, where the normal approximation leaves [0, 1]), and a normal interval for a mean.
Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """95% Wilson interval of a proportion k/n; None when nothing was counted."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


def mean_ci(values: list[float], z: float = Z95) -> tuple[float, float] | None:
    """95% normal interval of a mean (sample standard deviation); None below two values."""
    n = len(values)
    if n < 2:
        return None
    m = sum(values) / n
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    half = z * sd / math.sqrt(n)
    return round(m - half, 2), round(m + half, 2)


def pairwise_summary(verdicts: list[str]) -> dict:
    """win / tie / loss rates of the adapter with their 95% intervals, over the rows judged."""
    n = len(verdicts)
    out: dict = {"judged_rows": n}
    for outcome in ("win", "tie", "loss"):
        k = verdicts.count(outcome)
        out[f"{outcome}_rate"] = round(k / n, 4) if n else None
        ci = wilson(k, n)
        out[f"{outcome}_rate_ci"] = list(ci) if ci else None
    return out
