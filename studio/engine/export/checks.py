"""What an export reads before it loads anything: which folder it exports (a run's adapter or model, or its last
complete checkpoint), the base model an adapter goes on, and whether that base is the one it was trained on.
Light module (no torch): the pre-flight check runs it while the person edits the form."""

from __future__ import annotations

import json
import re
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

from studio.engine.errors import BadConfig, BadModel, StudioError, UnsafeModel
from studio.engine.runs import CONFIG_FILE, EVENTS_FILE, last_checkpoint, read_run_config

ADAPTER_CONFIG = "adapter_config.json"
LORA_KEY = re.compile(r"^(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$")


@dataclass
class ExportSource:
    kind: str  # adapter | model
    path: Path  # the adapter folder, or the model folder
    base: Path | None = None  # an adapter's base model folder
    run: Path | None = None  # the run folder it came from, if any
    run_config: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def model_folder(self) -> Path:
        """The folder whose config.json and weights describe the model (the base, for an adapter)."""
        return self.base if self.kind == "adapter" else self.path


def is_run_folder(path: Path) -> bool:
    return (path / EVENTS_FILE).is_file() or (path / CONFIG_FILE).is_file()


def _run_output(run: Path, warnings: list[str]) -> Path:
    from studio.engine.run_state import load_run_state

    state = load_run_state(run, with_history=False)
    if state.output and Path(state.output).is_dir():
        return Path(state.output)
    for name in ("adapter", "model"):
        if (run / name).is_dir():
            return run / name
    checkpoint = last_checkpoint(run)
    if checkpoint is None:
        raise BadConfig(f"The run {run} has no output (no adapter/ or model/ folder) and no complete checkpoint; "
                        f"its status is {state.status}.", "Export a run that saved something, or resume this one "
                        "first.", field="source")
    how = "is still running" if state.status in ("running", "starting") else f"ended {state.status}"
    warnings.append(f"The run {run.name} has no final output (it {how}); exporting its last complete checkpoint, "
                    f"{checkpoint.name}.")
    return checkpoint


def _adapter_base(adapter: Path, run_config: dict) -> Path:
    from studio.engine.models import resolve_model_path

    try:
        named = json.loads((adapter / ADAPTER_CONFIG).read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError) as exc:
        raise BadModel(f"{adapter / ADAPTER_CONFIG} cannot be read: {exc}.", field="source") from None
    for candidate in (named, run_config.get("model")):
        if candidate:
            try:
                return resolve_model_path(str(candidate))
            except StudioError:
                continue
    tried = " or ".join(repr(str(c)) for c in (named, run_config.get("model")) if c) or "none is named"
    raise BadModel(f"The base model of the adapter {adapter} is not on this computer ({tried}).",
                   "Put the base model back in its folder, or edit base_model_name_or_path in "
                   f"{adapter / ADAPTER_CONFIG} to name its folder.", field="source")


def resolve_source(source: str) -> ExportSource:
    """The folder an export reads, from a run folder, an adapter folder or a model folder."""
    path = Path(str(source).strip()).expanduser()
    if not path.is_dir():
        raise BadConfig(f"Field 'source': {path} is not a folder.", "Choose a run folder, or the adapter/ or model/ "
                        "folder of a run.", field="source")
    warnings: list[str] = []
    run = None
    if not (path / ADAPTER_CONFIG).is_file() and not (path / "config.json").is_file() and is_run_folder(path):
        run, path = path, _run_output(path, warnings)
    else:
        for parent in (path.parent, path.parent.parent.parent):  # RUN/adapter or RUN/checkpoints/checkpoint-N
            if is_run_folder(parent):
                run = parent
                break
    run_config = read_run_config(run) if run else {}
    if (path / ADAPTER_CONFIG).is_file():
        return ExportSource("adapter", path, _adapter_base(path, run_config), run, run_config, warnings)
    if (path / "config.json").is_file():
        return ExportSource("model", path, None, run, run_config, warnings)
    raise BadModel(f"{path} holds neither an adapter ({ADAPTER_CONFIG}) nor a model (config.json).",
                   "Choose a run folder, or the adapter/ or model/ folder of a run.", field="source")


def tensor_shapes(folder: Path) -> dict[str, tuple[str, list[int]]]:
    """Name -> (dtype, shape) of every tensor in the folder's safetensors files, from their headers alone."""
    shapes: dict[str, tuple[str, list[int]]] = {}
    for file in sorted(Path(folder).glob("*.safetensors")):
        try:
            with open(file, "rb") as fh:
                size = struct.unpack("<Q", fh.read(8))[0]
                header = json.loads(fh.read(size))
        except (OSError, ValueError, struct.error) as exc:
            raise BadModel(f"{file} is not a readable safetensors file ({exc}).", field="source") from None
        for name, info in header.items():
            if name != "__metadata__":
                shapes[name] = (info.get("dtype", "?"), list(info.get("shape", [])))
    return shapes


def base_mismatch(adapter: Path, base: Path) -> str | None:
    """Why the adapter does not fit this base model (its layers have other shapes, or are missing), or None."""
    base_shapes = {name.removesuffix(".weight"): shape for name, (_, shape) in tensor_shapes(base).items()}
    if not base_shapes:
        return None  # pickle weights: nothing to compare without loading them
    for key, (_, shape) in tensor_shapes(adapter).items():
        m = LORA_KEY.match(key)
        if not m:
            continue
        module, half = m.groups()
        base_shape = base_shapes.get(module)
        if base_shape is None:
            return f"the adapter changes the layer {module}, which the base model {base} does not have"
        width = shape[1] if half == "A" else shape[0]  # lora_A reads the layer's input, lora_B writes its output
        if len(base_shape) == 2 and width not in base_shape:
            side = "input" if half == "A" else "output"
            return (f"the adapter's layer {module} has {width} {side} features, but that layer of the base model "
                    f"{base} has the shape {base_shape}: the base is not the model the adapter was trained on")
    return None


def parameter_count(folder: Path) -> int:
    shapes = tensor_shapes(folder)
    if shapes:
        total = 0
        for _, shape in shapes.values():
            count = 1
            for dim in shape:
                count *= dim
            total += count
        return total
    # Pickle weights have no readable header: assume two bytes per parameter.
    return sum(f.stat().st_size for f in Path(folder).glob("*.bin")) // 2


def merge_precision(config: dict, run_config: dict, *, cuda: bool) -> str:
    """fp32, except bf16 for a bf16 model on a GPU (bf16 on CPUs without bf16 units is very slow)."""
    dtype = str(config.get("dtype") or config.get("torch_dtype") or "")
    if cuda and (run_config.get("precision") == "bf16" or dtype == "bfloat16" and
                 run_config.get("precision", "auto") == "auto"):
        return "bf16"
    return "fp32"


def planned_sizes(cfg, params: int, config: dict, run_config: dict) -> dict[str, int]:
    """Bytes each chosen output takes; `merged` is there whenever a GGUF file is written (it is made from it)."""
    bytes_per = 2 if merge_precision(config, run_config, cuda=run_config.get("device") == "cuda") == "bf16" else 4
    sizes: dict[str, int] = {}
    formats = cfg.format_list()
    if "merged" in formats or cfg.gguf_types():
        sizes["merged"] = params * bytes_per
    if cfg.gguf_types():
        from studio.engine.export.gguf import estimate_gguf_bytes

        for outtype in cfg.gguf_types():
            sizes[f"gguf-{outtype}"] = int(estimate_gguf_bytes(params, outtype))
    return sizes


def _free_bytes(workspace: Path) -> int | None:
    probe = Path(workspace)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None


def check_export(cfg, report, workspace: Path | None) -> None:
    """The pre-flight findings of an export: source, safety, GGUF support of the architecture, disk space."""
    from studio.engine.models import check_model_safety, read_model_config

    try:
        src = resolve_source(cfg.source)
        config = read_model_config(src.model_folder)
        check_model_safety(src.model_folder, cfg.trust_remote_code, cfg.allow_pickle)
        if src.kind == "adapter":
            problem = base_mismatch(src.path, src.base)
            if problem:
                raise BadModel(f"Cannot merge {src.path}: {problem}.", "Choose the base model the adapter was "
                               "trained on (base_model_name_or_path in adapter_config.json).", field="source")
    except (StudioError, UnsafeModel) as err:
        report.error("source", err)
        return
    for warning in src.warnings:
        report.add("warning", "source", warning, field="source")
    what = f"the adapter {src.path} on {src.base}" if src.kind == "adapter" else f"the model {src.path}"
    report.add("note", "source", f"Exports {what} ({config.get('model_type', '?')}).")
    if cfg.gguf_types():
        try:
            from studio.engine.export.gguf import gguf_problem
        except ImportError as exc:
            report.add("error", "model", f"The GGUF writer cannot be loaded ({exc}).", "Reinstall Adapt Studio "
                       "with its dependencies (pip install gguf).", field="formats", kind="bad_model")
            return
        problem = gguf_problem(config)
        if problem:
            report.add("error", "model", problem, "Export the merged format only, and convert it with llama.cpp's "
                       "convert_hf_to_gguf.py if it supports this architecture.", field="formats", kind="bad_model")
            return
    sizes = planned_sizes(cfg, parameter_count(src.model_folder), config, src.run_config)
    from studio.engine.presets import human_bytes

    listed = ", ".join(f"{k} {human_bytes(v)}" for k, v in sizes.items())
    report.add("note", "disk", "Sizes: " + listed
               + ("" if "merged" in cfg.format_list() or "merged" not in sizes
                  else " (the merged folder is temporary: the GGUF files are made from it)") + ".")
    free = _free_bytes(workspace) if workspace is not None else None
    need = sum(sizes.values())
    if free is not None and free < need:
        report.add("error", "disk", f"The workspace's disk has {human_bytes(free)} free; this export needs about "
                   f"{human_bytes(need)} ({listed}).",
                   "Free space, choose fewer formats, or move the workspace in Settings.", field="formats",
                   kind="disk_full")
