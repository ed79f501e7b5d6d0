"""The UI under load, and the cold start.

1. Cold start: `python app.py` until the first page is served (GET / answers 200), three times.
2. Dataset-page latency through gradio_client: p50 / p95 of /dataset_page with 10 clients and no training,
   then with the same 10 clients while the default CPU-demo run trains in the served app.
3. Training slowdown: tokens/s with the 10 clients paging, against tokens/s just before and just after
   (quiet, loaded, quiet, so drift in the machine's speed does not pass for slowdown).

The clients are tests/e2e_clients.py in their own process, once niced and once at normal priority
(see CLIENT_PRIORITIES). Writes benchmarks/results/ui_latency.json.

    python benchmarks/ui_latency.py
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "ui_latency.json"
CLIENTS = 10
THINK_MS = 1000  # a person browsing reads a page for a while; 1 s is a quick reader
QUIET_STEPS, LOADED_STEPS = 4, 6
# The clients stand in for users on other machines, but run on this one. Niced, they wait behind training
# for their own CPU (their latency then includes that wait); at normal priority their own CPU work (~6 ms per
# call) counts as slowdown. Both are measured: the first bounds the slowdown, the second the latency.
CLIENT_PRIORITIES = {"niced": 19, "normal": 0}


def serve(outputs: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "WORKBENCH_OUTPUTS": str(outputs), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_page(proc: subprocess.Popen, url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"app.py exited with {proc.returncode}")
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.02)
    raise SystemExit(f"app.py did not serve {url} within {timeout} s")


def cold_start(outputs: Path, port: int) -> float:
    t0 = time.monotonic()
    proc = serve(outputs, port)
    wait_page(proc, f"http://127.0.0.1:{port}/")
    seconds = time.monotonic() - t0
    proc.terminate()
    proc.wait(30)
    return seconds


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Clients:
    """10 clients in one process, paging until told to stop (at least `min_calls` calls each)."""

    def __init__(self, url: str, control: Path, min_calls: int, max_calls: int, think_ms: int = THINK_MS,
                 niceness: int = 0):
        self.control = control
        control.mkdir(parents=True, exist_ok=True)
        clients = str(ROOT / "tests" / "e2e_clients.py")
        self.proc = subprocess.Popen(["nice", "-n", str(niceness), sys.executable, clients,
                                      url, str(control), str(CLIENTS), str(min_calls), str(max_calls),
                                      str(think_ms)],
                                     cwd=ROOT, stdout=subprocess.PIPE, text=True)
        wait_until(lambda: (control / "ready").exists(), 120, "the clients to connect")

    def go(self) -> None:
        (self.control / "go").touch()

    def finish(self) -> list[float]:
        (self.control / "stop").touch()
        out, _ = self.proc.communicate(timeout=600)
        report = json.loads(out.strip().splitlines()[-1])
        if report["errors"]:
            raise SystemExit(f"client errors: {report['errors'][:3]}")
        return report["latencies"]


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def percentiles(latencies: list[float]) -> dict:
    cuts = statistics.quantiles(latencies, n=100)
    return {"n": len(latencies), "p50_ms": cuts[49] * 1000, "p95_ms": cuts[94] * 1000,
            "max_ms": max(latencies) * 1000}


def main() -> None:
    from gradio_client import Client

    sys.path.insert(0, str(ROOT))
    from workbench.runs.folder import RunDir

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port = free_port()
        cold = [cold_start(tmp / "outputs", port) for _ in range(3)]
        print(f"cold start to first page: {', '.join(f'{s:.2f}' for s in cold)} s", flush=True)

        proc = serve(tmp / "outputs", port)
        url = f"http://127.0.0.1:{port}"
        loaded = {}
        try:
            wait_page(proc, url + "/")
            idle = Clients(url, tmp / "idle", 10, 10)
            idle.go()
            idle_lat = idle.finish()
            print(f"idle: {percentiles(idle_lat)}", flush=True)

            client = Client(url, verbose=False)
            # The form's defaults (the CPU-demo preset) without its evaluations and checkpoints, which would
            # land in some windows and not others.
            client.predict(train__eval_steps=0, train__save_steps=1000, api_name="/start_training")
            run = RunDir(client.predict(api_name="/training_status")["run_dir"])

            def at(step: int) -> tuple[float, float]:
                """(elapsed s, tokens trained) once `step` is done."""
                return wait_until(lambda: next(((r["elapsed_s"], r["num_tokens"]) for r in run.read_metrics()
                                                if r.get("step") == step and "num_tokens" in r), None),
                                  600, f"step {step}")

            def tokens_per_s(steps: int) -> float:
                """Over the next `steps` whole steps. Tokens/s, not s/step: grouped batches differ in length."""
                first = max((r["step"] for r in run.read_metrics() if "loss" in r), default=0) + 1
                (t0, n0), (t1, n1) = at(first), at(first + steps)
                return (n1 - n0) / (t1 - t0)

            at(8)  # one-off costs, and the longest batches (the length-grouped sampler serves them first)
            quiet = [tokens_per_s(QUIET_STEPS)]
            for name, niceness in CLIENT_PRIORITIES.items():
                clients = Clients(url, tmp / name, 1, 100_000, niceness=niceness)
                clients.go()
                loaded[name] = tokens_per_s(LOADED_STEPS), clients.finish()
                quiet.append(tokens_per_s(QUIET_STEPS))
            client.predict(api_name="/stop_training")
            wait_until(lambda: not client.predict(api_name="/training_status")["active"], 300, "the run to stop")
        finally:
            proc.terminate()
            proc.wait(30)

    summary = {"cold_start_s": sorted(cold)[1], "cold_start_runs_s": cold, "clients": CLIENTS, "think_ms": THINK_MS,
               "idle": percentiles(idle_lat), "tokens_per_s_quiet": quiet}
    for i, (name, (rate, latencies)) in enumerate(loaded.items()):
        around = (quiet[i] + quiet[i + 1]) / 2  # the quiet windows just before and just after
        summary[f"training_clients_{name}"] = {**percentiles(latencies), "tokens_per_s": rate,
                                               "training_slowdown": 1 - rate / around}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2))
    print(f"{'dataset page':34}{'calls':>7}{'p50 ms':>9}{'p95 ms':>9}{'training slowdown':>19}")
    print(f"{'idle':34}{len(idle_lat):>7}{summary['idle']['p50_ms']:>9.0f}{summary['idle']['p95_ms']:>9.0f}")
    for name in loaded:
        p = summary[f"training_clients_{name}"]
        print(f"{'while training, clients ' + name:34}{p['n']:>7}{p['p50_ms']:>9.0f}{p['p95_ms']:>9.0f}"
              f"{p['training_slowdown']:>+19.1%}")
    print(f"quiet training: {', '.join(f'{q:.0f}' for q in quiet)} tokens/s; "
          f"cold start {summary['cold_start_s']:.2f} s (median of 3)")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
