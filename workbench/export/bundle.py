"""Export a finished run: the adapter folder, the merged Hugging Face folder, GGUF files with an Ollama
Modelfile, a model card in each folder, and the check that every file answers like the run.

Everything is refused before a byte is written when it cannot work (unfinished run, unknown quantization,
unsupported architecture, existing output, read-only or too small target), then written into a temporary
sibling of the output folder and renamed into place at the end (core.files.atomic_dir): an interrupted export
leaves nothing half-written. A failed check still lands, with check.json and export.json saying "failed", so the
files can be inspected; the caller gets an ExportError naming the prompt that diverged.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from workbench.config.tasks import ExportConfig
from workbench.core.errors import ExportError, ModelError
from workbench.core.files import atomic_dir, check_replaceable
from workbench.core.formatting import check_name, human_size
from workbench.core.paths import allowed_roots
from workbench.export import gguf
from workbench.runs.folder import RunDir, resolve_run


@dataclass
class ExportPlan:
    run: RunDir
    model_dir: Path  # the base (adapter runs) or the run's full model
    adapter: Path | None
    base: str
    out: Path
    name: str
    quants: list[str]
    arch: str | None
    bytes_needed: int
    parts: dict = field(default_factory=dict)
    min_free: int = 0  # bytes that must stay free on the target

    def to_dict(self) -> dict:
        """JSON for the job folder (plan.json): the worker exports on this plan instead of planning again."""
        return {"run": str(self.run.path), "model_dir": str(self.model_dir),
                "adapter": str(self.adapter) if self.adapter else None, "base": self.base, "out": str(self.out),
                "name": self.name, "quants": self.quants, "arch": self.arch, "bytes_needed": self.bytes_needed,
                "parts": self.parts, "min_free": self.min_free}

    @classmethod
    def saved(cls, d: dict) -> ExportPlan:
        """The plan made at submit, once the world still matches it: the run still finished, the space still
        free; ExportError naming what changed otherwise."""
        plan = cls(**{**d, "run": RunDir(d["run"]), "model_dir": Path(d["model_dir"]), "out": Path(d["out"]),
                      "adapter": Path(d["adapter"]) if d.get("adapter") else None})
        if plan.run.state() != "completed" or plan.run.saved_model() is None:
            raise ExportError(f"run {plan.run.id} changed since the export was queued (now {plan.run.state()})",
                              "submit the export again")
        _check_space(plan.out.parent, plan.bytes_needed, plan.min_free, plan.parts)
        return plan


def _params(model_dir: Path) -> int:
    from workbench.export.merge import safetensors_params

    n = safetensors_params(model_dir)
    if not n:
        raise ExportError(f"{model_dir} holds no safetensors weights to export")
    return n


def _writable(parent: Path) -> None:
    """A real probe (a temporary folder made and removed): permission bits do not stop root, a read-only
    file system does, and either way the user learns it now rather than after the merge."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
        Path(tempfile.mkdtemp(prefix=".wb-export-probe-", dir=parent)).rmdir()
    except OSError as e:
        raise ExportError(f"cannot write to {parent}: {e.strerror or e}", "pick an output folder you can write to") \
            from None


def plan_export(cfg: ExportConfig) -> ExportPlan:
    """Every check that needs no weights loaded; raises ExportError with what to do."""
    from workbench.models.resolve import find_adapter
    from workbench.models.resolve import canonical_model, resolve_model

    cfg.check_ranges()
    run = resolve_run(cfg.run)
    state = run.state()
    if state != "completed":
        raise ExportError(f"run {run.id} is {state}, not completed; only a finished run can be exported",
                          "wait for it to finish, or resume it from the Train tab")
    if run.saved_model() is None:
        raise ExportError(f"run {run.id} has no saved adapter or model (nothing in adapter/ or model/)")
    try:
        source = find_adapter(run.path)
        model_dir = Path(source.path if source.full_model else resolve_model(source.base or "default"))
    except ModelError as e:
        raise ExportError(e.message, e.hint) from None
    quants = cfg.quants()
    arch = None
    if cfg.format == "gguf":
        gguf.check_quants(quants)
        arch = gguf.check_architecture(model_dir)
    name = check_name(cfg.name or run.id, "export name", ExportError)
    out = Path(cfg.out).expanduser().resolve() if str(cfg.out or "").strip() else run.path / "export"
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not cfg.overwrite:
            raise ExportError(f"{out} already exists; nothing was overwritten", "tick overwrite or pick another folder")
        try:
            check_replaceable(out, protected=allowed_roots())
        except FileExistsError as e:
            raise ExportError(f"overwrite refused: {e}", "pick a new output folder") from None
    from workbench.export.merge import merged_bytes

    params = _params(model_dir)
    parts = {"merged": merged_bytes(params)}
    if source.full_model is False and source.path is not None:
        parts["adapter"] = sum(f.stat().st_size for f in source.path.rglob("*") if f.is_file())
    for q in quants:
        parts[q] = int(params * gguf.BYTES_PER_WEIGHT[q])
    if any(q in gguf.QUANTIZE_QUANTS for q in quants) and "f16" not in quants:
        parts["f16 (temporary)"] = int(params * 2)
    need, reserve = sum(parts.values()), int(cfg.min_free_gb * 1e9)
    _writable(out.parent)
    _check_space(out.parent, need, reserve, parts)
    return ExportPlan(run, model_dir, None if source.full_model else source.path,
                      canonical_model(source.base) if not source.full_model else str(model_dir), out, name, quants,
                      arch, need, parts, reserve)


def _check_space(parent: Path, need: int, reserve: int, parts: dict) -> None:
    free = shutil.disk_usage(parent).free
    if need + reserve > free:
        detail = ", ".join(f"{k} {human_size(v)}" for k, v in parts.items())
        raise ExportError(f"the export needs about {human_size(need)} ({detail}) plus {human_size(reserve)} kept "
                          f"free, but only {human_size(free)} is free on {parent}",
                          "free some space, export fewer types, or pick an output folder on another disk")


def _files(folder: Path) -> list[dict]:
    return [{"path": str(f.relative_to(folder)), "bytes": f.stat().st_size, "size": human_size(f.stat().st_size)}
            for f in sorted(folder.rglob("*")) if f.is_file()]


def export_run(cfg: ExportConfig, progress: Callable[[int, int, str], None] | None = None,
               plan: ExportPlan | None = None) -> dict:
    """Run the export (on `plan`, the one made at submit, or a new one); returns the manifest (also written as
    export.json). Raises ExportError on a failed check."""
    from workbench.export.merge import merge_adapter

    plan = plan or plan_export(cfg)
    run_cfg = plan.run.config()
    steps = (["adapter"] if plan.adapter else []) + ["merged"] + plan.quants + ["card"]
    steps += ["check"] if cfg.check else []
    done = 0

    def step(what: str) -> None:
        nonlocal done
        if progress:
            progress(done, len(steps), what)
        done += 1

    t0 = time.time()
    timings: dict[str, float] = {}
    check = None
    with atomic_dir(plan.out, replace=cfg.overwrite, protected=allowed_roots()) as tmp:
        if plan.adapter:
            step("copying the adapter")
            shutil.copytree(plan.adapter, tmp / "adapter")
        step("merging the adapter into the base" if plan.adapter else "copying the full model")
        t = time.time()
        if plan.adapter:
            merge_adapter(plan.run.path, tmp / "merged")
        else:
            shutil.copytree(plan.model_dir, tmp / "merged")
        timings["merged"] = round(time.time() - t, 1)
        ggufs = _write_ggufs(plan, tmp, step, timings)
        step("writing the model cards and the Modelfile")
        from workbench.export.card import write_descriptions

        ollama = write_descriptions(plan, run_cfg, tmp, ggufs, check=None)
        if cfg.check:
            step("checking every export against the run")
            check = _check(plan, run_cfg, tmp, ggufs, cfg,
                           lambda what: progress and progress(done - 1, len(steps), what))
            (tmp / "check.json").write_text(json.dumps(check, indent=2), encoding="utf-8")
            if not check["passed"] and plan.out.is_dir() and any(plan.out.iterdir()):
                # Replacing: the previous export stays until a new one has passed its check.
                raise ExportError(f"the export check failed ({'; '.join(check['failed'])}); the previous export in "
                                  f"{plan.out} was kept", "run the export without the check to see its output")
            write_descriptions(plan, run_cfg, tmp, ggufs, check=check)  # the cards quote the check's result
        manifest = {"run": str(plan.run.path), "name": plan.name, "base": plan.base, "architecture": plan.arch,
                    "format": cfg.format, "quants": plan.quants, "state": "failed" if check and not check["passed"]
                    else "completed",
                    "check": {"passed": check["passed"], "failed": check["failed"]} if check else None,
                    "ollama": ollama, "seconds": round(time.time() - t0, 1), "timings": timings,
                    "exported_at": time.strftime("%Y-%m-%d %H:%M:%S")}
        manifest["files"] = _files(tmp)
        (tmp / "export.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    manifest["out"] = str(plan.out)
    if progress:
        progress(len(steps), len(steps), "done")
    if check and not check["passed"]:
        raise ExportError(f"the export check failed ({'; '.join(check['failed'])}); the files are in {plan.out} "
                          "with check.json", "see check.json for the expected and the decoded text")
    return manifest


def _write_ggufs(plan: ExportPlan, tmp: Path, step, timings: dict) -> dict[str, Path]:
    if not plan.quants:
        return {}
    folder = tmp / "gguf"
    folder.mkdir()
    files: dict[str, Path] = {}
    f16 = None
    for q in [q for q in plan.quants if q in gguf.CONVERTER_QUANTS]:
        step(f"converting to GGUF {q}")
        t = time.time()
        files[q] = gguf.convert(tmp / "merged", folder / f"{plan.name}-{q}.gguf", q)
        timings[q] = round(time.time() - t, 1)
        f16 = files[q] if q == "f16" else f16
    small = [q for q in plan.quants if q in gguf.QUANTIZE_QUANTS]
    if small:
        source = f16 or gguf.convert(tmp / "merged", tmp / "f16.tmp.gguf", "f16")
        for q in small:
            step(f"quantizing to GGUF {q}")
            t = time.time()
            files[q] = gguf.quantize(source, folder / f"{plan.name}-{q}.gguf", q)
            timings[q] = round(time.time() - t, 1)
        (tmp / "f16.tmp.gguf").unlink(missing_ok=True)
    return {q: files[q] for q in plan.quants}


def _check(plan: ExportPlan, run_cfg, tmp: Path, ggufs: dict[str, Path], cfg: ExportConfig, say) -> dict:
    from transformers import AutoTokenizer

    from workbench.export.check import held_out_prompts, run_check

    tok = AutoTokenizer.from_pretrained(str(tmp / "merged"))
    prompts = held_out_prompts(plan.run.path, run_cfg.data.template, tok, cfg.check_prompts)
    return run_check(run_model=plan.model_dir, adapter=plan.adapter, merged=tmp / "merged", ggufs=ggufs,
                     prompts=prompts, n_tokens=cfg.check_tokens, progress=say)
