"""Reading a judge's reply. Judges answer in many shapes ("SCORE: 85", "Score: 85/100", a JSON object, a bare
number, markdown bold); anything else is an unparseable row, never a guess."""
from __future__ import annotations

import json
import re

_JSON = re.compile(r"\{[^{}]*\}", re.DOTALL)
_SCORE = re.compile(r"score\W{0,6}?(\d{1,3}(?:\.\d+)?)", re.IGNORECASE)
_BARE = re.compile(r"^\W*(\d{1,3}(?:\.\d+)?)\s*(?:/\s*100)?\W*$")
_REASON = re.compile(r"(?:reason|explanation|rationale)\W{0,6}(.+)", re.IGNORECASE)
_WINNER = re.compile(r"(?:winner|verdict|better(?: answer)?)\W{0,6}(answer\s+)?(A|B|TIE|tie|Tie|none|equal)\b",
                     re.IGNORECASE)


class JudgeOutputError(ValueError):
    """The judge answered, but not in a shape the rubric asks for."""


def _json(text: str) -> dict:
    for m in _JSON.finditer(text):
        try:
            value = json.loads(m.group(0))
        except ValueError:
            continue
        if isinstance(value, dict):
            return {str(k).lower(): v for k, v in value.items()}
    return {}


def _reason(text: str, found: dict) -> str:
    if found.get("reason"):
        return str(found["reason"]).strip().splitlines()[0][:300]
    m = _REASON.search(text)
    return m.group(1).strip().strip("*").strip()[:300] if m else ""


def _short(text: str) -> str:
    one = " ".join((text or "").split())
    return one[:80] + ("…" if len(one) > 80 else "")


def parse_score(text: str) -> tuple[float, str]:
    """(score in 0..100, one-line reason) from a score-mode reply; JudgeOutputError otherwise."""
    text = text or ""
    found = _json(text)
    value = found.get("score")
    if value is None:
        m = _SCORE.search(text) or _BARE.match(text.strip().splitlines()[0] if text.strip() else "")
        value = m.group(1) if m else None
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise JudgeOutputError(f"unparseable judge output (no score): {_short(text)!r}") from None
    if not 0 <= score <= 100:
        raise JudgeOutputError(f"unparseable judge output (score {score:g} is outside 0-100): {_short(text)!r}")
    return score, _reason(text, found)


def parse_verdict(text: str) -> tuple[str, str]:
    """('A' | 'B' | 'tie', reason) from a pairwise reply; JudgeOutputError otherwise."""
    found = _json(text or "")
    value = found.get("winner") or found.get("verdict")
    if value is None:
        m = _WINNER.search(text or "")
        value = m.group(2) if m else None
        if value is None and (text or "").strip().upper().rstrip(".") in ("A", "B", "TIE"):
            value = text.strip().rstrip(".")
    v = str(value or "").strip().strip("*").upper()
    if v in ("A", "B"):
        return v, _reason(text, found)
    if v in ("TIE", "NONE", "EQUAL"):
        return "tie", _reason(text, found)
    raise JudgeOutputError(f"unparseable judge output (no winner A, B or TIE): {_short(text)!r}")
