"""The export run (task "export"): merge, then one GGUF file per type, then the Ollama Modelfile, each written
atomically, so a format that fails or a stop keeps what was already written. `export.json` lists the files."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

from studio.engine.errors import BadModel, StudioError
from studio.engine.events import EventWriter
from studio.engine.export.checks import base_mismatch, resolve_source
from studio.engine.runs import safe_name

EXPORT_FILE = "export.json"
MERGED_DIR = "merged"
SCRATCH_MERGED_DIR = ".merged-for-gguf"  # the GGUF files are made from it when merged/ was not asked for
OLLAMA_PREFERENCE = ("q8_0", "f16", "bf16")  # the smallest file Ollama runs well


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _checked_source(cfg):
    from studio.engine.models import check_model_safety

    src = resolve_source(cfg.source)
    check_model_safety(src.model_folder, cfg.trust_remote_code, cfg.allow_pickle)
    if src.kind == "adapter":
        problem = base_mismatch(src.path, src.base)
        if problem:
            raise BadModel(f"Cannot merge {src.path}: {problem}.", field="source")
    return src


def run_export(cfg, run_dir: Path, events: EventWriter, stop: threading.Event) -> dict:
    from studio.engine.export.merge import write_merged
    from studio.engine.export.model_card import CARD_FILE, write_card

    run_dir = Path(run_dir)
    workspace = run_dir.parent.parent
    events.emit("progress", phase="checking the source", fraction=0.0)
    src = _checked_source(cfg)
    formats, outtypes = cfg.format_list(), cfg.gguf_types()
    events.emit("started", task="export", total_steps=None, source=str(src.path), kind=src.kind,
                base=str(src.base) if src.base else None, formats=formats,
                warning=" ".join(src.warnings) or None)
    files: list[dict] = []
    failed: dict[str, str] = {}
    record = {"source": str(src.path), "kind": src.kind, "base": str(src.base) if src.base else None,
              "run": str(src.run) if src.run else None, "formats": formats, "files": files, "failed": failed,
              "warnings": list(src.warnings)}

    keep_merged = "merged" in formats
    merged_dir = run_dir / (MERGED_DIR if keep_merged else SCRATCH_MERGED_DIR)
    events.emit("progress", phase="merging", fraction=0.0)
    card = (lambda folder: write_card(folder, cfg.name, src, workspace, [])) if keep_merged else None
    merged = write_merged(src, merged_dir, trust_remote_code=cfg.trust_remote_code, allow_pickle=cfg.allow_pickle,
                          progress=lambda f: events.emit("progress", phase="merging", fraction=f), add_files=card)
    record["eos_token_ids"], record["end_of_turn"] = merged["eos_token_ids"], merged["end_of_turn"]
    if keep_merged:
        files.append({"format": "merged", "path": str(merged_dir), "bytes": merged["bytes"]})

    written: dict[str, str] = {}
    try:
        for outtype in outtypes:
            if stop.is_set():
                break
            phase = f"writing GGUF {outtype}"
            events.emit("progress", phase=phase, fraction=0.0)
            out = run_dir / f"{safe_name(cfg.name)}-{outtype}.gguf"
            try:
                from studio.engine.export.gguf import write_gguf

                info = write_gguf(merged_dir, out, outtype, stop=stop,
                                  progress=lambda f, p=phase: events.emit("progress", phase=p, fraction=f))
            except StudioError as err:
                if stop.is_set():
                    break
                failed[f"gguf-{outtype}"] = err.message
                events.emit("progress", phase=phase, fraction=None, warning=f"gguf-{outtype} failed: {err.message}")
                continue
            except ImportError as exc:
                failed[f"gguf-{outtype}"] = f"the GGUF writer cannot be loaded ({exc})"
                continue
            written[outtype] = out.name
            files.append({"format": f"gguf-{outtype}", "path": str(out), "bytes": out.stat().st_size,
                          "tensors": info.get("tensors")})
    finally:
        if not keep_merged:
            shutil.rmtree(merged_dir, ignore_errors=True)

    if "ollama" in formats and not stop.is_set():
        _modelfile(cfg, run_dir, written, merged, record, failed, files)
    if written:
        write_card(run_dir, cfg.name, src, workspace, [Path(f["path"]).name for f in files])
        card_path = run_dir / CARD_FILE
        files.append({"format": "card", "path": str(card_path), "bytes": card_path.stat().st_size})
    _write_json(run_dir / EXPORT_FILE, record)
    if failed and not any(f["format"] != "card" for f in files):
        first = next(iter(failed.items()))
        raise StudioError(f"Nothing was exported: {first[0]} failed — {first[1]}", "See export.json in the run "
                          "folder for every format.")
    summary = {"files": [{"format": f["format"], "name": Path(f["path"]).name, "bytes": f["bytes"]} for f in files],
               "failed": failed, "ollama_command": record.get("ollama_command")}
    status = "stopped" if stop.is_set() else "completed"
    events.emit("finished", status=status, output=str(run_dir), summary=summary,
                ollama_command=record.get("ollama_command"))
    return summary


def _modelfile(cfg, run_dir: Path, written: dict, merged: dict, record: dict, failed: dict, files: list) -> None:
    from studio.engine.export.ollama import write_modelfile

    gguf = next((written[t] for t in OLLAMA_PREFERENCE if t in written), None)
    if gguf is None:
        failed["ollama"] = "no GGUF file was written, so the Modelfile has nothing to point at"
        return
    try:
        result = write_modelfile(run_dir, cfg.name, gguf, chat_template=merged["chat_template"],
                                 eos_token=merged["eos_token"], stops=merged["end_of_turn"],
                                 system=cfg.system_prompt, preset=cfg.preset)
    except StudioError as err:
        failed["ollama"] = err.message
        return
    record["ollama_command"] = result["command"]
    record["ollama_template"] = result["template"]
    if result.get("warning"):
        record["warnings"].append(result["warning"])
    files.append({"format": "ollama", "path": result["path"], "bytes": Path(result["path"]).stat().st_size})
