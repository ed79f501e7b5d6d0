"""The Runs tab's Export panel clicked in the browser: a real export job (merged + q8_0 GGUF, checked), its files
with sizes, the check's result and the Ollama command; then the same export again refused without overwrite, and
/export_model refusing a run that does not exist."""
from __future__ import annotations

import json
import re
import shutil

import pytest
from gradio_client.exceptions import AppError
from test_e2e_browser import open_tab, pick, visible

from conftest import screenshot
from workbench.core.paths import outputs_dir

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_export_panel_exports_and_checks_a_run(page, client, lora_run):
    run_id = "20990101-000000-export-ui"
    target = outputs_dir() / run_id
    shutil.copytree(lora_run.run_dir, target, ignore=shutil.ignore_patterns("checkpoints", "eval", "merged", "export*"))
    try:
        open_tab(page, "Runs")
        page.get_by_role("tab", name="Export", exact=True).first.click()
        visible(page.get_by_role("button", name="Refresh runs")).first.click()
        pick(page, "Run", run_id)
        visible(page.get_by_label("f16", exact=True)).first.uncheck()  # q8_0 alone keeps the test short
        visible(page.get_by_label("Output name")).first.fill("tiny")
        visible(page.get_by_role("button", name="Export", exact=True)).first.click()
        visible(page.get_by_text(re.compile(r"export job \S+ completed"))).first.wait_for(timeout=400_000)

        out = target / "export-tiny"
        manifest = json.loads((out / "export.json").read_text())
        assert manifest["quants"] == ["q8_0"] and manifest["check"]["passed"]
        assert visible(page.get_by_text("Check passed")).count()
        assert visible(page.get_by_text(re.compile(r"q8_0: tokens agree"))).count()
        assert visible(page.get_by_text("export-tiny/gguf/tiny-q8_0.gguf")).count()
        command = f"ollama create tiny -f {out}/gguf/Modelfile"
        assert visible(page.get_by_text(command)).count()
        screenshot(page, "export-panel")

        # The same name again, without overwrite: refused before anything is written, and the export stays.
        visible(page.get_by_role("button", name="Export", exact=True)).first.click()
        visible(page.get_by_text(re.compile(r"already exists; nothing was overwritten"))).first.wait_for()
        assert json.loads((out / "export.json").read_text()) == manifest

        with pytest.raises(AppError, match="does not exist|no run|not found|outside"):
            client.predict("outputs/no-such-run", api_name="/export_model")
    finally:
        shutil.rmtree(target, ignore_errors=True)
