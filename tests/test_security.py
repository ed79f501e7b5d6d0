"""Secure defaults of the server and the model loader."""
import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import PY, ROOT, free_port
from workbench.config.run import RunConfig
from workbench.core.errors import ModelError
from workbench.models.load import load_model


def _serve(args, port):
    proc = subprocess.Popen([PY, "app.py", "--port", str(port), *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(url + "/config", timeout=2)
            return proc, url
        except urllib.error.HTTPError:
            return proc, url  # answering, even if it refuses without a login
        except (urllib.error.URLError, ConnectionError, OSError):
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read())
            time.sleep(0.5)
    proc.kill()
    raise AssertionError("app did not start")


@pytest.mark.parametrize("args", [["--host", "0.0.0.0"], ["--share"]])
def test_public_serving_without_auth_is_refused(args):
    proc = subprocess.run([PY, "app.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "without a password" in proc.stderr and "--auth" in proc.stderr


def test_bad_auth_value_is_refused():
    proc = subprocess.run([PY, "app.py", "--auth", "no-colon"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0 and "--auth expects user:password" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("use_file", [False, True])
def test_auth_protects_the_app(tmp_path, use_file):
    from gradio_client import Client

    auth = "alice:s3cret-pw"
    if use_file:
        (tmp_path / "users.txt").write_text("# one per line\nbob:other-pw\n" + auth + "\n")
        auth_arg = str(tmp_path / "users.txt")
    else:
        auth_arg = auth
    proc, url = _serve(["--auth", auth_arg], free_port())
    try:
        with pytest.raises(urllib.error.HTTPError) as e:  # the API refuses an anonymous caller
            urllib.request.urlopen(url + "/config", timeout=10)
        assert e.value.code in (401, 403)
        with pytest.raises(Exception):
            Client(url, auth=("alice", "wrong"), verbose=False)
        client = Client(url, auth=("alice", "s3cret-pw"), verbose=False)
        model_md, _, _ = client.predict(api_name="/overview")
        assert "SmolLM2" in model_md
    finally:
        proc.terminate()
        proc.wait(30)


def test_binds_localhost_by_default():
    from app import parse_args

    assert parse_args([]).host == "127.0.0.1"


def test_trust_remote_code_is_off_by_default():
    assert RunConfig().model.trust_remote_code is False


def test_weights_load_from_safetensors_only(tmp_path, model_dir):
    """A folder that only has a pickled pytorch_model.bin (which can run code on load) is refused."""
    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((model_dir / name).read_bytes())
    torch.save(load_file(model_dir / "model.safetensors"), folder / "pytorch_model.bin")
    with pytest.raises((ModelError, OSError, ValueError)):
        load_model(str(folder))


def test_model_folder_without_config_is_refused(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "weights.json").write_text(json.dumps({}))
    with pytest.raises(ModelError, match="no config.json"):
        load_model(str(tmp_path / "x"))
