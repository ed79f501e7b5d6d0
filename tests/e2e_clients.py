"""N gradio_client API clients paging the bundled dataset at once; run as its own process by test_faults.py.

    python tests/e2e_clients.py URL CONTROL_DIR [N] [MIN_CALLS] [MAX_CALLS] [THINK_MS]

Each client connects, waits for CONTROL_DIR/go, then calls /dataset_page (pages 1-5, every third call a
search) at least MIN_CALLS times and keeps going until CONTROL_DIR/stop appears (at most MAX_CALLS),
pausing THINK_MS between calls (0: back to back; a person browsing reads a page before the next).
Prints one JSON line: calls per client, latencies, errors. A separate process (started with `nice`) so the
clients' own CPU work does not run inside, or ahead of, the server whose training is being measured.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from gradio_client import Client

DOLLY = ["data/dolly_sample.jsonl", "", "train", "auto", ""]


def main(url: str, control: str, n: int = 20, min_calls: int = 10, max_calls: int = 60, think_ms: int = 0) -> None:
    go, stop = Path(control) / "go", Path(control) / "stop"
    # ssl_verify=False on a plain-http URL: gradio_client otherwise builds a CA-loaded SSL context on every
    # call (~55 ms of client CPU per call, 10x the server's share), which is not what is being measured.
    clients = [Client(url, verbose=False, ssl_verify=not url.startswith("http://")) for _ in range(n)]
    for client in clients:  # the first call also fetches the API description: connection setup, not a page
        client.predict(*DOLLY, "", "(all)", 1, 10, api_name="/dataset_page")
    (Path(control) / "ready").touch()
    calls, latencies, errors = [0] * n, [], []

    def page_through(i: int, client: Client) -> None:
        while not go.exists():
            time.sleep(0.05)
        k = 0
        while k < min_calls or (k < max_calls and not stop.exists()):
            query = "water" if k % 3 == 0 else ""
            t0 = time.time()
            try:
                table, info, page = client.predict(*DOLLY, query, "(all)", (i + k) % 5 + 1, 10,
                                                   api_name="/dataset_page")
                latencies.append(time.time() - t0)
                if not table["data"] or "of 240" not in info:
                    errors.append(f"client {i} call {k}: unexpected page: {info!r}")
            except Exception as e:  # noqa: BLE001 - every failure is reported to the test
                errors.append(f"client {i} call {k}: {type(e).__name__}: {e}")
            k += 1
            time.sleep(think_ms / 1000)
        calls[i] = k

    threads = [threading.Thread(target=page_through, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"calls": calls, "latencies": latencies, "errors": errors}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:]))
