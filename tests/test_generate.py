"""Instruction back-translation, for real: the session's reverse-instruction adapter (a 3-step run of the default
recipe) labels texts from the bundled sample; the dataset loads as Alpaca with its provenance and a forward run
trains on it; a stop and a resume label every chunk exactly once; each bad input gets its message."""
from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, quick_config
from workbench.backtranslation import review
from workbench.backtranslation.chunks import chunk_texts
from workbench.backtranslation.pipeline import generate_dataset
from workbench.backtranslation.sources import SourceText, read_texts
from workbench.backtranslation.workdir import WorkDir
from workbench.cli import main
from workbench.config.generate import GenerateConfig
from workbench.core.errors import ConfigError, DataError

pytestmark = pytest.mark.usefixtures("keep_logging")
SAMPLE = [json.loads(line) for line in (ROOT / "data" / "dolly_sample.jsonl").read_text().splitlines()]
FRENCH = ("Les élèves étudient à l'école près du café chaque matin, où ils discutent de leurs leçons préférées "
          "et de leurs projets pour l'été.")


@pytest.fixture
def texts(data_dir) -> Path:
    """A folder as people have it: texts from the sample, one in Latin-1, a copy, a binary file, a PDF."""
    folder = data_dir / "my-texts"
    folder.mkdir()
    for i, row in enumerate(SAMPLE[:5]):
        (folder / f"answer-{i}.txt").write_text(row["response"], encoding="utf-8")
    (folder / "copy-of-answer-0.md").write_text(SAMPLE[0]["response"], encoding="utf-8")
    (folder / "french.txt").write_bytes(FRENCH.encode("latin-1"))
    (folder / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (folder / "notes.pdf").write_bytes(b"%PDF-1.4")
    return folder


def _cfg(run, **values) -> GenerateConfig:
    cfg = GenerateConfig().with_values(run=str(run), **{"batch_size": 4, **values})
    cfg.gen.max_new_tokens = 12
    return cfg


def test_texts_become_an_alpaca_dataset_with_provenance_and_a_forward_run_trains_on_it(lora_run, texts, data_dir,
                                                                                       tmp_path, capsys):
    out = data_dir / "generated" / "mine.jsonl"
    rc = main(["generate", "--run", str(lora_run.run_dir), "--texts", str(texts), "--out", str(out),
               "--candidates", "2", "--gen.max-new-tokens", "8", "--batch-size", "8"])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert "6 pairs labelled and scored" in printed.out and "kept 6" in printed.out

    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 6  # 7 texts read, the copy dropped as a duplicate
    assert {r["output"] for r in rows} == {*(s["response"] for s in SAMPLE[:5]), FRENCH}
    for r in rows:
        assert r["input"] == "" and isinstance(r["instruction"], str)
        prov = r["provenance"]
        assert prov["run"] == lora_run.run_dir.name and prov["template"] == "reverse_instruction"
        assert prov["generation"]["candidates"] == 2 and prov["generation"]["max_new_tokens"] == 8
        assert 0 < prov["scores"]["backtranslation"] <= 100 and prov["chunk"] == 0
        assert prov["source"].endswith((".txt", ".md"))

    card = (data_dir / "generated" / "mine.card.md").read_text(encoding="utf-8")
    assert "| texts read | 7 |" in card and "| files skipped | 2 |" in card and "| **rows written** | **6** |" in card
    assert "photo.txt (binary file" in card and "notes.pdf (not .txt or .md)" in card
    assert "french.txt (cp1252)" in card or "french.txt (latin" in card  # the encoding used is reported

    # The Data tab reads it as Alpaca, provenance and all; its file list shows it.
    from workbench.data import browse, read

    view = browse.open_view(str(out))
    assert view.format == "alpaca" and len(view) == 6
    assert view.raw[0]["provenance"]["scores"]["backtranslation"] > 0
    assert any(f.endswith("generated/mine.jsonl") for f in read.local_files())

    # A forward model trains on it (the Train button's settings: Alpaca template, loss on responses).
    from workbench.training.engine import train

    forward = train(quick_config(tmp_path / "forward", **{"data.source": str(out), "data.template": "alpaca",
                                                          "train.max_steps": 2, "data.val_size": 0.0,
                                                          "data.test_size": 0.0}), progress_bar=False)
    assert forward.state == "completed", forward.error
    assert yaml.safe_load((forward.run_dir / "config.yaml").read_text())["data"]["source"] == str(out)

    # Never overwritten without asking.
    rc = main(["generate", "--run", str(lora_run.run_dir), "--texts", str(texts), "--out", str(out)])
    assert rc == 2 and "already exists" in capsys.readouterr().err


def test_a_stop_and_a_resume_label_every_chunk_exactly_once(lora_run, data_dir):
    cfg = _cfg(lora_run.run_dir, pasted="\n\n".join(r["response"] for r in SAMPLE[:7]), name="resumed",
               batch_size=2)
    stop = threading.Event()
    first = generate_dataset(cfg, progress=lambda done, total, what: done >= 2 and stop.set(), stop=stop)
    assert first.state == "stopped" and first.labelled == 2 and first.total == 7
    work = WorkDir(Path(first.work))
    assert len(work.labels()) == 2 and not work.pairs()

    with open(work.file("labels.jsonl"), "a", encoding="utf-8") as f:
        f.write('{"id": "pasted:9", "cand')  # a worker killed mid-write leaves a torn line: it is cut off
    second = generate_dataset(cfg)
    assert second.state == "completed" and second.labelled == 7
    lines = work.file("labels.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 7 and len({json.loads(x)["id"] for x in lines}) == 7  # each chunk labelled once
    assert [p["id"] for p in second.pairs] == [c.id for c in work.chunks()]

    with pytest.raises(ConfigError, match="already exists with other settings \\(candidates\\)"):
        generate_dataset(_cfg(lora_run.run_dir, pasted=cfg.pasted, name="resumed", batch_size=2, candidates=3))


def test_pairs_judged_over_http_by_the_served_run_join_the_review_and_the_dataset(lora_run, data_dir):
    """The judge path for real: the project's own `serve` is the judge's endpoint (the pair rubric). A stop while
    judging keeps the verdicts made so far; the second start asks only for the rest."""
    from conftest import free_port
    from workbench.config.tasks import ServeConfig
    from workbench.serving.server import start_in_thread

    server = start_in_thread(ServeConfig(run=str(lora_run.run_dir), port=free_port()))
    try:
        out = data_dir / "generated" / "judged.jsonl"
        cfg = _cfg(lora_run.run_dir, pasted="\n\n".join(r["response"] for r in SAMPLE[:6]), name="judged",
                   out=str(out), judge__url=server.url, judge__model="base", judge__max_tokens=12,
                   judge__concurrency=1)  # rounds of 4 requests: a stop after the first leaves 2 pairs to judge
        stop, steps = threading.Event(), []

        def stop_after_a_round(done, total, what):
            steps.append(what)
            if what == "judging" and done >= 1:
                stop.set()

        first = generate_dataset(cfg, progress=stop_after_a_round, stop=stop)
        assert first.state == "stopped" and "stopped while judging" in first.summary() and not out.exists()
        work = WorkDir(Path(first.work))
        assert len(work.judgements()) == 4 and not work.pairs()
        result = generate_dataset(cfg, progress=lambda done, total, what: steps.append(what))
    finally:
        server.stop()
    lines = [json.loads(x) for x in work.file("judgements.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(x["id"] for x in lines) == sorted(p["id"] for p in result.pairs)  # each pair judged once
    assert "judging" in steps and result.judge["model"] == "base" and result.judge["rubric"] == "pair"
    assert result.judge["judged_rows"] + result.judge["failed_rows"] == 6 and "judge base: " in result.summary()
    for p in result.pairs:  # a score in 0-100, or the reason the weak judge's reply could not be read
        assert (p["judge_status"] == "ok") == (p["judge_score"] is not None)
        assert p["judge_score"] is None or 0 <= p["judge_score"] <= 100
    work = WorkDir(Path(result.work))
    assert work.summary()["judge"] == result.judge
    rows = review.table_rows(work.pairs(), review.Thresholds())
    assert [r["judge"] for r in rows] == [p["judge_score"] for p in result.pairs]
    saved = [json.loads(line)["provenance"]["scores"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert [s.get("judge") for s in saved] == [p["judge_score"] for p in result.pairs]
    assert "LLM judge: `base`, rubric `pair`" in (data_dir / "generated" / "judged.card.md").read_text()


def test_scores_flags_and_review(lora_run):
    from workbench.generation.chat_model import load_chat_model

    cm = load_chat_model("default", lora_run.run_dir / "adapter")
    text = SAMPLE[0]["response"]
    fitting, unrelated = review.backtranslation_scores(cm, [(SAMPLE[0]["instruction"], text),
                                                             ("List three colours of the French flag.", text)])
    assert fitting > unrelated  # the real question explains its answer better than another one
    assert review.flags("", text) == {"empty": True, "copies_text": False}
    assert review.copies_text(" ".join(text.split()[:10]), text)
    pairs = [{"instruction": "Why?", "text": "a"}, {"instruction": "why", "text": "b"},
             {"instruction": "How", "text": "c"}]
    review.mark_repeats(pairs)
    assert [p["repeated"] for p in pairs] == [True, True, False]

    rows = [{"keep": True, "score": s, "instruction": i, "text": "t", "flags": "", "tokens": 1, "source": "x", "id": i}
            for s, i in ((40.0, "a"), (10.0, "b"), (25.0, ""))]
    kept = review.rethreshold(rows, {}, review.Thresholds(20.0))
    assert [r["keep"] for r in kept] == [True, False, False]  # below the threshold, and empty
    judged = {"a": {"judge_score": 80}, "b": {"judge_score": 90}, "": {"judge_score": None}}
    assert [r["keep"] for r in review.rethreshold(rows, judged, review.Thresholds(0, 85))] == [False, True, False]
    assert review.Thresholds(0, 85).passes({"score": 99, "judge_score": None}) is False  # unscored: not kept
    assert review.Thresholds(0, 0).passes({"score": 99, "judge_score": None}) is True  # no judge threshold
    assert review.survivors(kept) == "**1 of 3 rows kept**"
    assert [r["id"] for r in review.sort_rows(rows, "score, worst first")] == ["b", "", "a"]


def test_chunking_splits_long_texts_at_paragraphs_and_drops_short_ones_and_duplicates(tokenizer):
    long = "\n\n".join(f"Paragraph {i} tells one more thing about the river and the town beside it." for i in range(9))
    chunking = chunk_texts([SourceText("a.txt", long), SourceText("b.txt", "Too short."),
                            SourceText("c.txt", long)], tokenizer, budget=40, min_tokens=5)
    assert chunking.split_texts == 2 and chunking.too_short == 1 and chunking.duplicates >= 3
    assert {c.source for c in chunking.chunks} == {"a.txt"}
    for c in chunking.chunks:
        assert len(tokenizer(c.text, add_special_tokens=False)["input_ids"]) <= 40 and "\n\n" not in c.text[:1]
    assert " ".join(c.text for c in chunking.chunks).count("Paragraph") == 9


def test_bad_inputs_get_their_message(lora_run, data_dir, tmp_path, capsys):
    run = str(lora_run.run_dir)
    binary = data_dir / "scan.txt"
    binary.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(DataError, match="scan.txt cannot be read as text"):
        read_texts(str(binary))
    with pytest.raises(DataError, match="outside the folders"):
        read_texts("/etc")
    (data_dir / "empty").mkdir()
    with pytest.raises(DataError, match="no text found"):
        read_texts(str(data_dir / "empty"))
    table = data_dir / "table.jsonl"
    table.write_text('{"question": "q", "n": 1}\n', encoding="utf-8")
    with pytest.raises(DataError, match="has no a text column .*its columns: question, n"):
        read_texts(str(table))

    # Another template's run writes answers, not instructions: refused with why.
    other = tmp_path / "forward-run"
    shutil.copytree(lora_run.run_dir, other, ignore=shutil.ignore_patterns("checkpoints"))
    cfg = yaml.safe_load((other / "config.yaml").read_text())
    cfg["data"]["template"] = "alpaca"
    (other / "config.yaml").write_text(yaml.safe_dump(cfg))
    cases = [(["--run", str(other), "--pasted", "some text"], "writes answers, not instructions"),
             (["--run", run], "no texts given"),
             (["--run", run, "--texts", str(data_dir), "--pasted", "x"], "not both"),
             (["--run", run, "--pasted", "x", "--out", "data/x.csv"], "out must be a .jsonl file"),
             (["--run", run, "--pasted", "x", "--candidates", "0"], "candidates must be >= 1"),
             (["--run", str(tmp_path), "--pasted", "x"], "no run named"),
             (["--run", run, "--pasted", "x", "--judge-url", "http://127.0.0.1:9/v1"], "needs the judge's model"),
             (["--run", run, "--pasted", "x", "--judge-local", "default", "--judge-rubric", "score"],
              "rubric 'score' is for score mode, not pair")]
    for args, message in cases:
        assert main(["generate", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err, (args, err)
    shutil.rmtree(other / "adapter")
    assert main(["generate", "--run", str(other), "--pasted", "x"]) == 2
    assert "has no saved adapter" in capsys.readouterr().err


@pytest.mark.slow
def test_sigterm_of_a_generate_worker_leaves_no_partial_output_and_a_rerun_finishes(lora_run, data_dir, tmp_path):
    """A cancelled generate job's worker gets SIGTERM: the dataset is not written half, no temporary file is left,
    every label line on disk is whole, and the same command then labels only the rest."""
    import signal
    import subprocess

    from workbench.backtranslation.workdir import generated_root

    out = data_dir / "sigterm.jsonl"
    cfg = _cfg(lora_run.run_dir, pasted="\n\n".join(r["response"] for r in SAMPLE[:8]), name="sigterm",
               batch_size=1, out=str(out))
    config = tmp_path / "generate.yaml"
    config.write_text(cfg.to_yaml())
    command = [sys.executable, "-m", "workbench", "generate", "--config", str(config)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    labels = generated_root() / "sigterm" / "labels.jsonl"
    deadline = time.monotonic() + 300
    while not (labels.is_file() and labels.read_text(encoding="utf-8").count("\n") >= 1):
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.monotonic() < deadline, "no chunk was labelled"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) != 0
    assert not out.exists() and not [p for p in data_dir.iterdir() if p.name.startswith(".sigterm")]
    done = [json.loads(line) for line in labels.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert 1 <= len(done) < 8

    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    lines = labels.read_text(encoding="utf-8").splitlines()
    assert len({json.loads(x)["id"] for x in lines}) == 8 and out.is_file()
