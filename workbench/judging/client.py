"""The judge over HTTP: any OpenAI-compatible /chat/completions endpoint (Ollama, vLLM, llama.cpp's server, a
hosted provider, or this workbench's own `serve`), through the official `openai` client: its timeout, its
retries of 408 / 409 / 429 / 5xx / timeouts / connection errors with exponential backoff, and its reading of
Retry-After. Requests run concurrently; a request that still fails comes back as a JudgeCallError whose message
is the row's status (unreachable host, 401, timeout ...): it never raises out of complete_all, so one bad row
never stops an evaluation. The key is sent as the Bearer header and nowhere else: never logged, never in a
status. An error body is quoted only when `show_body` (an endpoint the operator allowed, see core/policy.py)."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import openai

log = logging.getLogger(__name__)


class JudgeCallError(Exception):
    """A judge request that failed for good; str() is the row's status."""


def base_url(url: str) -> str:
    """The client's base URL (it appends /chat/completions itself); a full endpoint URL is accepted too."""
    return url.strip().rstrip("/").removesuffix("/chat/completions")


class HttpJudge:
    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 60.0, retries: int = 3,
                 concurrency: int = 4, max_tokens: int = 64, show_body: bool = True):
        self.model, self.retries, self.timeout = model, int(retries), float(timeout)
        self.concurrency, self.max_tokens, self.show_body = max(1, int(concurrency)), int(max_tokens), show_body
        self.host = urlsplit(base_url(url)).netloc
        self._tries = threading.local()  # attempts of the request this thread is making (for its status)
        # No redirects: a key goes to the endpoint that was checked, not wherever it points. The hook counts the
        # client's own retries (it sends x-stainless-retry-count on each attempt).
        http = openai.DefaultHttpxClient(follow_redirects=False, event_hooks={"request": [self._count]})
        # api_key / admin_api_key / organization / project given explicitly: the client would otherwise read
        # OPENAI_API_KEY, OPENAI_ADMIN_KEY, OPENAI_ORG_ID and OPENAI_PROJECT_ID from this process's environment
        # and send them to whatever endpoint the judge names. Without a key the Authorization header is omitted.
        omit = {"OpenAI-Organization": openai.Omit(), "OpenAI-Project": openai.Omit()}
        self.client = openai.OpenAI(base_url=base_url(url), api_key=api_key or "", admin_api_key="",
                                    timeout=self.timeout, max_retries=self.retries, http_client=http,
                                    default_headers=omit)
        self._auth = {} if api_key else {"Authorization": openai.Omit()}  # per request, where the client checks it
        self.name = model

    def _count(self, request) -> None:
        self._tries.n = int(request.headers.get("x-stainless-retry-count") or 0) + 1

    def close(self) -> None:
        self.client.close()

    def complete(self, messages: list[dict]) -> str:
        """The judge's reply text, after the client's retries; JudgeCallError with the row's status otherwise."""
        self._tries.n = 0
        try:
            reply = self.client.chat.completions.create(model=self.model, messages=messages,
                                                        max_tokens=self.max_tokens, temperature=0,
                                                        extra_headers=self._auth)
        except openai.APITimeoutError:
            raise JudgeCallError(f"timeout after {self.timeout:g} s ({self.host}){self._attempts()}") from None
        except openai.APIConnectionError as e:
            cause = e.__cause__ or e
            raise JudgeCallError(f"unreachable host {self.host} ({type(cause).__name__}: {str(cause)[:120]})"
                                 f"{self._attempts()}") from None
        except openai.APIStatusError as e:
            detail = f": {_error_text(e)}" if self.show_body else ""
            raise JudgeCallError(f"HTTP {e.status_code} from {self.host}{detail}{self._attempts()}") from None
        except openai.APIError as e:  # a 200 whose body is not a chat completion
            raise JudgeCallError(f"the judge's answer is not an OpenAI chat completion ({type(e).__name__})") \
                from None
        try:
            return str(reply.choices[0].message.content or "")
        except (AttributeError, IndexError, TypeError):
            raise JudgeCallError("the judge's answer is not an OpenAI chat completion (no choices)") from None

    def _attempts(self) -> str:
        n = getattr(self._tries, "n", 0)
        return f" (after {n} attempts)" if n > 1 else ""

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


def _error_text(e: openai.APIStatusError) -> str:
    """The endpoint's own message: {"error": {"message": ...}}, {"error": "..."}, or the body's first 200 chars."""
    body = e.body
    if isinstance(body, dict):
        err = body.get("error", body)
        return str(err.get("message") if isinstance(err, dict) and "message" in err else err)[:200]
    text = body if isinstance(body, str) else e.response.text
    return (text or e.response.reason_phrase or "")[:200]
