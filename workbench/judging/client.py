"""The judge over HTTP: any OpenAI-compatible /chat/completions endpoint (Ollama, vLLM, llama.cpp's server, a
hosted provider, or this workbench's own `serve`). Requests run concurrently; each has a timeout, and 429,
5xx, timeouts and connection errors are retried with exponential backoff. A request that still fails comes
back as a JudgeCallError whose message is the row's status (unreachable host, 401, ...): it never raises
out of complete_all, so one bad row never stops an evaluation."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx

log = logging.getLogger(__name__)
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_WAIT_S = 30.0


class JudgeCallError(Exception):
    """A judge request that failed for good; str() is the row's status."""


def chat_url(base_url: str) -> str:
    url = base_url.strip().rstrip("/")
    return url if url.endswith("/chat/completions") else url + "/chat/completions"


class HttpJudge:
    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 60.0, retries: int = 3,
                 concurrency: int = 4, max_tokens: int = 64, backoff_s: float = 0.5):
        self.url, self.model, self.retries = chat_url(url), model, int(retries)
        self.concurrency, self.max_tokens, self.backoff_s = max(1, int(concurrency)), int(max_tokens), backoff_s
        self.host = urlsplit(self.url).netloc
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # One pooled client shared by the worker threads (httpx.Client is thread-safe); the timeout covers
        # connecting, waiting for the first byte and reading.
        self.http = httpx.Client(timeout=httpx.Timeout(timeout), headers=headers,
                                 limits=httpx.Limits(max_connections=self.concurrency))
        self.name = model

    def close(self) -> None:
        self.http.close()

    def complete(self, messages: list[dict]) -> str:
        """The judge's reply text, after retries; JudgeCallError with the row's status otherwise."""
        body = {"model": self.model, "messages": messages, "max_tokens": self.max_tokens, "temperature": 0}
        attempt = 0
        while True:
            try:
                r = self.http.post(self.url, json=body)
            except httpx.TimeoutException:
                problem, wait = f"timeout after {self.http.timeout.read:g} s ({self.host})", None
            except httpx.TransportError as e:
                problem, wait = f"unreachable host {self.host} ({type(e).__name__}: {str(e)[:120]})", None
            else:
                if r.status_code == 200:
                    return _content(r)
                problem = f"HTTP {r.status_code} from {self.host}: {_error_text(r)}"
                if r.status_code not in RETRY_STATUS:
                    raise JudgeCallError(problem)
                wait = _retry_after(r)
            if attempt >= self.retries:
                raise JudgeCallError(problem + (f" (after {attempt + 1} attempts)" if attempt else ""))
            delay = min(MAX_WAIT_S, wait if wait is not None else self.backoff_s * 2 ** attempt)
            log.info("judge request failed (%s); retry %d/%d in %.2f s", problem, attempt + 1, self.retries, delay)
            time.sleep(delay)
            attempt += 1

    def complete_all(self, chats: list[list[dict]], progress: Callable[[int, int], None] | None = None
                     ) -> list[str | JudgeCallError]:
        """Every chat's reply (or its JudgeCallError), in order, `concurrency` requests in flight."""
        out: list[str | JudgeCallError] = [JudgeCallError("not run")] * len(chats)
        done = 0

        def one(i: int) -> int:
            try:
                out[i] = self.complete(chats[i])
            except JudgeCallError as e:
                out[i] = e
            return i

        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="workbench-judge") as pool:
            for _ in pool.map(one, range(len(chats))):
                done += 1
                if progress:
                    progress(done, len(chats))
        return out


def _content(r: httpx.Response) -> str:
    try:
        return str(r.json()["choices"][0]["message"]["content"] or "")
    except (ValueError, KeyError, IndexError, TypeError):
        raise JudgeCallError(f"the judge's answer is not an OpenAI chat completion: {r.text[:120]!r}") from None


def _error_text(r: httpx.Response) -> str:
    try:
        err = r.json().get("error")
        return str(err.get("message") if isinstance(err, dict) else err)[:200]
    except (ValueError, AttributeError):
        return r.text[:200] or r.reason_phrase


def _retry_after(r: httpx.Response) -> float | None:
    try:
        return max(0.0, float(r.headers.get("retry-after", "")))
    except ValueError:
        return None
