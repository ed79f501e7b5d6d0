"""The Runs tab's Serve panel: serve one or more runs' adapters on an OpenAI-compatible API as a `serve` job
(it runs until stopped here or in the Jobs tab), see where it listens and how to call it. Logic:
workbench.serving (the server), workbench.jobs (the job)."""
from __future__ import annotations

import gradio as gr
import httpx

from workbench.config.tasks import ServeConfig
from workbench.core.errors import WorkbenchError
from workbench.core.paths import confine
from workbench.runs.compare import run_choices
from workbench.ui.errors import handler
from workbench.ui.form import setting_help, setting_input
from workbench.ui.tabs.evaluate_judge import key_choice


def _usage(url: str, model: str) -> str:
    return (f"```bash\ncurl {url}/chat/completions -H 'Content-Type: application/json' \\\n  -d '{{\"model\": "
            f"\"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}]}}'\n```\n"
            f"```python\nfrom openai import OpenAI\nclient = OpenAI(base_url=\"{url}\", api_key=\"unused\")\n"
            f"client.chat.completions.create(model=\"{model}\", messages=[{{\"role\": \"user\", \"content\": "
            f"\"Hello\"}}])\n```")


@handler
def list_serve_runs():
    return gr.update(choices=run_choices())


@handler
def start_serving(runs, host, port, key_env):
    """Queue a serve job for the chosen runs (checked now: adapters, key, free port)."""
    from workbench.jobs.submit import submit

    picked = [runs] if isinstance(runs, str) else list(runs or [])
    if not picked:
        raise WorkbenchError("choose one or more runs to serve")
    cfg = ServeConfig(run=",".join(str(confine(r)) for r in picked), host=(host or "127.0.0.1").strip(),
                      port=int(port or 8000), api_key_env=(key_env or "").strip())
    job = submit("serve", cfg)
    return f"⏳ Starting serve job `{job.id}`: {job.name}", job.id, gr.Timer(active=True)


@handler
def follow_serving(job_id):
    """Timer: the job's state; once its server answers /health, where it listens and how to call it."""
    from workbench.jobs import queue

    if not job_id:
        return gr.skip(), gr.Timer(active=False)
    job = queue.get(job_id)
    if job.state not in ("queued", *queue.ACTIVE):
        ended = f"⏹ serve job `{job.id}` {job.state}" + (f": {job.error}" if job.error else "")
        return ended, gr.Timer(active=False)
    cfg = ServeConfig.from_text(job.config)
    from workbench.serving.server import url_of

    url = url_of(cfg)
    try:
        models = httpx.get(url.removesuffix("/v1") + "/health", timeout=1.0).json()["models"]
    except (httpx.HTTPError, ValueError, KeyError):
        return f"⏳ serve job `{job.id}` is {job.state}: loading the model…", gr.skip()
    return (f"✅ Serving {', '.join(f'`{m}`' for m in models)} at **{url}** (job `{job.id}`; OpenAI-compatible)"
            f"\n\n{_usage(url, models[0])}"), gr.skip()


@handler
def stop_serving(job_id):
    from workbench.jobs.submit import cancel

    if not job_id:
        raise WorkbenchError("nothing is being served from this panel")
    return f"⏹ {cancel(job_id)}", gr.Timer(active=True)


def build_serve_panel(app: gr.Blocks) -> None:
    with gr.Tab("Serve"):
        gr.Markdown("Serve adapters on an OpenAI-compatible API (`/v1/models`, `/v1/chat/completions`, "
                    "`/v1/completions`, streaming included) for your own code, an agent framework, or as the "
                    "judge of another run. Several runs of the same base share one copy of its weights. "
                    "Anything but 127.0.0.1 requires an API key: one the operator offers (--secret-env NAME).")
        with gr.Row():
            runs = gr.Dropdown([], multiselect=True, label="Runs to serve", allow_custom_value=True, scale=3)
            refresh = gr.Button("Refresh runs", size="sm", scale=0)
        with gr.Row():
            host = gr.Textbox(ServeConfig().host, label="Host", info=setting_help(ServeConfig, "host"))
            port = setting_input(ServeConfig, "port", "Port")
            key_env = key_choice("API key clients must send (environment variable)")
        with gr.Row():
            start = gr.Button("Start serving", variant="primary")
            stop = gr.Button("Stop serving", variant="stop")
        status = gr.Markdown()
        job_id = gr.Textbox(visible=False)
        timer = gr.Timer(1.0, active=False)
    refresh.click(list_serve_runs, None, runs, api_name=False)
    app.load(list_serve_runs, None, runs, api_name=False)
    start.click(start_serving, [runs, host, port, key_env], [status, job_id, timer], api_name="start_serving")
    stop.click(stop_serving, job_id, [status, timer], api_name="stop_serving")
    timer.tick(follow_serving, job_id, [status, timer], api_name=False, show_progress="hidden")
