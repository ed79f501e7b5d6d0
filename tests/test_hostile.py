"""Hostile inputs at every door of the running app (issue: one boundary for every caller).

Each case sends one bad or hostile input through the app's real HTTP API (the official gradio_client), or the
CLI, and asserts: a clear refusal (a message that names the problem, never "internal error"), the app still
serving, and nothing written, changed or deleted in the project's folders or in a folder outside the project.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from gradio_client.exceptions import AppError

from conftest import PY, ROOT, end_leftover_jobs
from workbench.core.paths import outputs_dir

pytestmark = pytest.mark.slow
SKIP = {"workbench.log", "jobs.sqlite3", "jobs.sqlite3-wal", "jobs.sqlite3-shm"}
OUTSIDE_TEXT = "the outside world: must never change\n"


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """A folder outside the project with a file, a dataset, a fake run and a folder a hostile overwrite targets."""
    out = tmp_path_factory.mktemp("outside")
    (out / "secret.txt").write_text(OUTSIDE_TEXT)
    (out / "cfg.yaml").write_text("run_name: from-outside\n")
    (out / "data.jsonl").write_text(json.dumps({"instruction": "hi", "output": "there"}) + "\n")
    (out / "victim").mkdir()
    (out / "victim" / "keep.txt").write_text(OUTSIDE_TEXT)
    run = out / "run"
    (run / "adapter").mkdir(parents=True)
    (run / "config.yaml").write_text("run_name: x\n")
    (run / "status.json").write_text('{"state": "completed"}')
    return out


@pytest.fixture(scope="module")
def inside(outside) -> dict:
    """Things inside the project a hostile input points at: a symlink in outputs/ to the outside folder, and a
    non-empty folder the workbench did not write."""
    links = outputs_dir() / "hostile-link"
    if not links.exists():
        links.symlink_to(outside, target_is_directory=True)
    run = outputs_dir() / "hostile-run"  # a finished run as far as every check before loading can tell
    (run / "adapter").mkdir(parents=True, exist_ok=True)
    (run / "adapter" / "adapter_config.json").write_text("{}")
    (run / "config.yaml").write_text("run_name: hostile\n")
    (run / "status.json").write_text('{"state": "completed"}')
    foreign = outputs_dir() / "hostile-foreign"
    foreign.mkdir(exist_ok=True)
    (foreign / "mine.txt").write_text("a user's own file\n")
    yield {"link": links, "foreign": foreign, "outputs": outputs_dir()}
    links.unlink()


def snapshot(*roots: Path) -> dict:
    seen = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                if name in SKIP or name.startswith("workbench.log"):
                    continue
                st = p.lstat()
                seen[str(p)] = (st.st_size, st.st_mtime_ns if p.is_file() else 0)
    return seen


def _trees(outside):
    return snapshot(ROOT / "data", ROOT / "templates", outputs_dir(), outside)


@pytest.fixture(scope="module")
def quiet_queue(client):
    end_leftover_jobs()  # no earlier test's job may write into outputs/ while the trees are compared


def O(outside_path: Path, rel: str = "") -> str:  # noqa: N802 - a path in the outside folder, as text
    return str(outside_path / rel) if rel else str(outside_path)


def job_cases():
    """(kind, config builder(outside, inside) → YAML dict, expected words) for /submit_job."""
    t = "train"
    return [
        (t, lambda o, i: {"data": {"source": "/etc/passwd"}}, "outside the folders"),
        (t, lambda o, i: {"data": {"source": O(o, "data.jsonl")}}, "data.source"),
        (t, lambda o, i: {"data": {"source": "../../../../etc/hosts"}}, "outside the folders"),
        (t, lambda o, i: {"data": {"source": str(i["link"] / "data.jsonl")}}, "outside the folders"),
        (t, lambda o, i: {"output_dir": O(o, "run2")}, "output_dir"),
        (t, lambda o, i: {"output_dir": "/tmp/../etc/wb"}, "outside the folders"),
        (t, lambda o, i: {"output_dir": str(i["link"] / "run3")}, "output_dir"),
        (t, lambda o, i: {"model": {"name": O(o)}}, "model.name"),
        (t, lambda o, i: {"model": {"name": "/etc"}}, "model.name"),
        (t, lambda o, i: {"model": {"adapter_from": O(o, "run")}}, "model.adapter_from"),
        (t, lambda o, i: {"model": {"adapter_from": "../../../etc"}}, "model.adapter_from"),
        (t, lambda o, i: {"model": {"trust_remote_code": True}}, "--allow-remote-code"),
        (t, lambda o, i: {"pref": {"ref_model": O(o)}}, "pref.ref_model"),
        (t, lambda o, i: {"data": {"source": "data/dolly_sample.jsonl\x00.txt"}}, "NUL"),
        (t, lambda o, i: {"train": {"max_steps": -5}}, "train.max_steps"),
        (t, lambda o, i: {"train": {"learning_rate": "lots"}}, "learning_rate"),
        (t, lambda o, i: {"no_such_section": {"x": 1}}, "no_such_section"),
        (t, lambda o, i: {"data": {"template": "../../etc/passwd"}}, "template"),
        ("eval", lambda o, i: {"run": O(o, "run")}, "run"),
        ("eval", lambda o, i: {"run": "/etc"}, "outside the folders"),
        ("eval", lambda o, i: {"run": "../../../../tmp"}, "outside the folders"),
        ("eval", lambda o, i: {"run": str(i["link"] / "run")}, "outside the folders"),
        ("eval", lambda o, i: {"run": "hostile-foreign", "data": "/etc/passwd"}, "data"),
        ("eval", lambda o, i: {"run": "hostile-foreign", "baseline": O(o, "run")}, "baseline"),
        ("eval", lambda o, i: {"run": "no-such-run"}, "no-such-run"),
        ("eval", lambda o, i: {"run": "hostile-foreign", "n": -1}, "n"),
        ("merge", lambda o, i: {"run": O(o, "run"), "out": str(i["outputs"] / "m1")}, "run"),
        ("merge", lambda o, i: {"run": "hostile-foreign", "out": O(o, "merged")}, "out"),
        ("merge", lambda o, i: {"run": "hostile-foreign", "out": "/etc/merged"}, "out"),
        ("merge", lambda o, i: {"run": "hostile-foreign", "out": str(i["outputs"] / "m2"), "base": O(o)}, "base"),
        ("merge", lambda o, i: {"run": "hostile-foreign", "out": str(i["link"] / "m")}, "out"),
        ("merge", lambda o, i: {"run": "", "out": ""}, "needs run and out"),
        ("generate", lambda o, i: {"run": O(o, "run"), "texts": "data/dolly_sample.jsonl"}, "run"),
        ("generate", lambda o, i: {"run": "hostile-foreign", "texts": "/etc"}, "texts"),
        ("generate", lambda o, i: {"run": "hostile-foreign", "texts": O(o, "secret.txt")}, "texts"),
        ("generate", lambda o, i: {"run": "hostile-foreign", "texts": "data", "out": O(o, "x.jsonl")}, "out"),
        ("generate", lambda o, i: {"run": "hostile-foreign", "texts": "data", "out": "/etc/x.jsonl"}, "out"),
        ("generate", lambda o, i: {"run": "hostile-foreign", "texts": str(i["link"])}, "texts"),
        ("serve", lambda o, i: {"run": O(o, "run")}, "run"),
        ("serve", lambda o, i: {"run": "/etc,/root"}, "outside the folders"),
        ("serve", lambda o, i: {"run": str(i["link"] / "run")}, "outside the folders"),
        ("serve", lambda o, i: {"run": "hostile-foreign", "api_key_env": "HOME"}, "HOME"),
        ("serve", lambda o, i: {"run": "hostile-foreign", "port": 99999}, "port"),
        ("export", lambda o, i: {"run": O(o, "run")}, "run"),
        ("export", lambda o, i: {"run": "hostile-foreign", "out": O(o, "victim"), "overwrite": True}, "out"),
        ("export", lambda o, i: {"run": "hostile-foreign", "out": "/etc", "overwrite": True}, "out"),
        ("export", lambda o, i: {"run": "hostile-foreign", "out": str(i["link"] / "victim"), "overwrite": True},
         "out"),
        ("export", lambda o, i: {"run": "hostile-foreign", "quant": "q9_z"}, "no run named"),
        ("export", lambda o, i: {"run": "hostile-foreign", "format": "exe"}, "format"),
        ("eval", lambda o, i: {"run": "hostile-foreign", "judge": {"url": "http://203.0.113.9/v1",
                                                                   "model": "m", "key_env": "HOME"}}, "HOME"),
        ("eval", lambda o, i: {"run": "hostile-foreign", "judge": {"url": "http://127.0.0.1:9/v1",
                                                                   "model": "m", "key_env": "PATH"}}, "PATH"),
        ("generate", lambda o, i: {"run": "hostile-foreign", "texts": "data",
                                   "judge": {"url": "http://127.0.0.1:9/v1", "model": "m", "key_env": "HOME"}},
         "HOME"),
    ]


CASES = job_cases()


def _refused(client, api_name: str, *args) -> str:
    """The refusal's message: an error toast (AppError), or a panel that answers with a "❌" message."""
    try:
        answer = client.predict(*args, api_name=api_name)
    except AppError as e:
        message = str(e)
    else:
        message = json.dumps(answer, ensure_ascii=False)
        assert "❌" in message, f"{api_name} accepted {args!r}: {message[:300]}"
    assert "internal error" not in message, message
    return message


def _still_serving(client) -> None:
    assert isinstance(client.predict(api_name="/list_jobs"), list)


@pytest.mark.parametrize("kind,build,words", CASES, ids=[f"{k}-{n}" for n, (k, _b, _w) in enumerate(CASES)])
def test_submit_job_refuses(client, quiet_queue, outside, inside, kind, build, words):
    import yaml

    before, jobs_before = _trees(outside), len(client.predict(api_name="/list_jobs"))
    message = _refused(client, "/submit_job", kind, yaml.safe_dump(build(outside, inside)), 1)
    assert words in message
    assert _trees(outside) == before
    assert len(client.predict(api_name="/list_jobs")) == jobs_before  # nothing queued


MALFORMED = [
    ("train", "{{{ not yaml", "YAML"),
    ("train", "- a\n- list\n", "mapping"),
    ("train", "x" * 2_000_000, ""),
    ("nope", "run: x", "not in the list of choices"),
    ("eval", "run: [1, 2]", "run"),
    ("train", "!!python/object/apply:os.system ['touch /tmp/pwned']", ""),
]


@pytest.mark.parametrize("kind,text,words", MALFORMED, ids=[f"malformed-{n}" for n in range(len(MALFORMED))])
def test_malformed_configs_are_refused(client, quiet_queue, outside, inside, kind, text, words):
    before = _trees(outside)
    message = _refused(client, "/submit_job", kind, text, 1)
    assert words in message
    assert _trees(outside) == before
    assert not Path("/tmp/pwned").exists()
    _still_serving(client)


@pytest.mark.parametrize("processes,words", [(0, "minimum"), (-3, "minimum"), (10_000, "processes")])
def test_process_counts_are_refused(client, quiet_queue, outside, inside, processes, words):
    before = _trees(outside)
    assert words in _refused(client, "/submit_job", "train", "train: {max_steps: 1}", processes)
    assert _trees(outside) == before


def endpoint_cases():
    """(api_name, args builder(outside, inside), expected words) for the other endpoints that take a path, a name
    or a config."""
    ds = lambda src: (src, "", "train", "auto", "")  # noqa: E731 - source, hub config, split, format, column map
    return [
        ("/load_dataset", lambda o, i: (*ds("/etc/passwd"), False, 10), "outside the folders"),
        ("/load_dataset", lambda o, i: (*ds(O(o, "data.jsonl")), False, 10), "outside the folders"),
        ("/load_dataset", lambda o, i: (*ds(str(i["link"] / "data.jsonl")), False, 10), "outside the folders"),
        ("/load_dataset", lambda o, i: (*ds("../../../../etc/shadow"), False, 10), "outside the folders"),
        ("/dataset_page", lambda o, i: (*ds(O(o, "data.jsonl")), "", "(all)", 1, 10), "outside the folders"),
        ("/dataset_row", lambda o, i: (*ds(O(o, "data.jsonl")), 0), "outside the folders"),
        ("/dataset_stats", lambda o, i: (*ds(O(o, "data.jsonl")), "default"), "outside the folders"),
        ("/split_sizes", lambda o, i: (*ds(O(o, "data.jsonl")), 0.1, 0.1, 0), "outside the folders"),
        ("/show_pairs", lambda o, i: (*ds(O(o, "data.jsonl")), "dpo", 0.0), "outside the folders"),
        ("/load_config", lambda o, i: (None, "/etc/passwd"), "not a .yaml file"),
        ("/load_config", lambda o, i: (None, O(o, "cfg.yaml")), "outside the folders"),
        ("/start_training_config", lambda o, i: ("output_dir: " + O(o, "r"),), "output_dir"),
        ("/start_training_config", lambda o, i: ("data: {source: /etc/passwd}",), "data.source"),
        ("/start_training_config", lambda o, i: ("model: {trust_remote_code: true}",), "--allow-remote-code"),
        ("/start_training_config", lambda o, i: ("model: {name: " + O(o) + "}",), "model.name"),
        ("/save_template", lambda o, i: ("name: x\nkind: instruction\n", "../../etc/evil", True), "name"),
        ("/save_template", lambda o, i: ("name: x\n", "/tmp/evil", True), "name"),
        ("/save_template", lambda o, i: ("name: x\n", "", False), "name"),
        ("/save_rubric", lambda o, i: ("mode: score\n", "../../evil", True), "name"),
        ("/save_rubric", lambda o, i: ("mode: score\n", "/etc/evil", True), "name"),
        ("/merge_adapter", lambda o, i: ("hostile-run", O(o, "merged")), "outside the folders"),
        ("/merge_adapter", lambda o, i: ("hostile-run", "/etc/merged"), "outside the folders"),
        ("/export_model", lambda o, i: (O(o, "run"), "merged", "", "", False), "outside the folders"),
        ("/export_model", lambda o, i: ("/etc", "merged", "", "", True), "outside the folders"),
        ("/cancel_job", lambda o, i: ("no-such-job",), "no job"),
        ("/cancel_job", lambda o, i: ("x' OR '1'='1",), "no job"),
        ("/cancel_job", lambda o, i: ("",), "no job"),
        ("/resume_job", lambda o, i: ("no-such-job",), "no job"),
        ("/resume_job", lambda o, i: ("1; DROP TABLE jobs",), "no job"),
        ("/preference_accuracy", lambda o, i: ("hostile-foreign", "/etc/passwd", 5), ""),
        ("/generate_dataset", lambda o, i: ("hostile-foreign", "/etc", "", "", 1, 0.0, 0, "", False, "", "", "",
                                            0.0), ""),
        ("/generate_dataset", lambda o, i: ("hostile-foreign", O(o), "", "", 1, 0.0, 0, "", False, "", "", "",
                                            0.0), ""),
        ("/export_eval_csv", lambda o, i: ("hostile-foreign", "../../../evil",
                                           {"headers": ["a"], "data": [["b"]]}), ""),
    ]


ENDPOINTS = endpoint_cases()


@pytest.mark.parametrize("api_name,build,words", ENDPOINTS,
                         ids=[f"{a.strip('/')}-{n}" for n, (a, _b, _w) in enumerate(ENDPOINTS)])
def test_endpoints_refuse(client, quiet_queue, outside, inside, api_name, build, words):
    before, jobs_before = _trees(outside), len(client.predict(api_name="/list_jobs"))
    message = _refused(client, api_name, *build(outside, inside))
    assert words in message
    assert _trees(outside) == before
    assert len(client.predict(api_name="/list_jobs")) == jobs_before


CLI_CASES = [
    ("train", {"data": {"source": "/etc/passwd"}}, "outside the folders"),
    ("train", {"output_dir": "/tmp/wb-hostile-cli"}, "output_dir"),
    ("train", {"model": {"trust_remote_code": True}}, "--allow-remote-code"),
    ("eval", {"run": "/etc"}, "outside the folders"),
    ("merge", {"run": "/etc", "out": "outputs/x"}, "outside the folders"),
    ("export", {"run": "/etc", "out": "/tmp/wb-hostile-export", "overwrite": True}, "outside the folders"),
    ("serve", {"run": "/etc"}, "outside the folders"),
    ("generate", {"run": "/etc", "texts": "data"}, "outside the folders"),
]


def test_jobs_submit_cli_refuses_with_exit_2(tmp_path, outside, inside, quiet_queue):
    """`jobs submit` is a door too (the queue): each config exits 2 with the message, and nothing is written."""
    import yaml

    before = _trees(outside)
    for n, (kind, config, words) in enumerate(CLI_CASES):
        path = tmp_path / f"c{n}.yaml"
        path.write_text(yaml.safe_dump(config))
        proc = subprocess.run([PY, "-m", "workbench", "jobs", "submit", str(path), "--kind", kind], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, (kind, proc.stdout, proc.stderr)
        assert words in proc.stderr, (kind, proc.stderr)
    assert _trees(outside) == before
    assert not Path("/tmp/wb-hostile-cli").exists() and not Path("/tmp/wb-hostile-export").exists()
