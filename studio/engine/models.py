"""Finding, checking and loading models: local folders, the Hugging Face cache, or the hub on request."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from studio.engine.errors import BadModel, UnsafeModel

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def resolve_model_path(source: str, allow_download: bool = False) -> Path:
    """The local folder of a model given as a folder, a cached hub id, or (if allowed) a hub id to fetch."""
    source = (source or "").strip()
    if not source:
        raise BadModel("No model was chosen.", "Pick a model folder, a cached model, or the built-in starter model.",
                       field="model")
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            found = ", ".join(sorted(p.name for p in path.iterdir())[:10]) or "nothing"
            raise BadModel(f"{path} has no config.json, so it is not a transformers model folder "
                           f"(found: {found}).", field="model")
        return path
    if path.exists():
        raise BadModel(f"{path} is a file; expected a model folder with config.json.", field="model")
    looks_like_path = source.startswith((".", "/", "~")) or os.sep in source.replace("/", "", 1) or \
        source.count("/") > 1 or (len(source) > 1 and source[1] == ":")
    if looks_like_path:
        raise BadModel(f"The model folder {path} does not exist.", field="model")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source, local_files_only=True))
    except Exception:
        if not allow_download:
            raise BadModel(f"'{source}' is not a folder and not in the Hugging Face cache on this computer.",
                           "Turn on 'allow download' to fetch it from the hub, or choose a local folder.",
                           field="model") from None
    try:
        return Path(snapshot_download(source))
    except Exception as exc:
        raise BadModel(f"Could not download '{source}' from the Hugging Face hub: {exc}",
                       "Check the model id and your network connection.", field="model") from None


def check_model_safety(path: Path, trust_remote_code: bool, allow_pickle: bool) -> None:
    """Refuse model code and pickle weights unless the user said yes."""
    config = read_model_config(path)
    if config.get("auto_map") and not trust_remote_code:
        raise UnsafeModel(f"{path} ships its own Python code (auto_map in config.json), which would run on this "
                          f"computer when the model loads.",
                          "Allow 'trust remote code' only if you trust where this model came from.", field="model")
    files = [p.name for p in path.iterdir()]
    has_safe = any(n.endswith(".safetensors") for n in files)
    pickles = [n for n in files if n.endswith(PICKLE_SUFFIXES) and n != "training_args.bin"]
    if pickles and not has_safe and not allow_pickle:
        raise UnsafeModel(f"{path} stores its weights as pickle files ({', '.join(pickles[:3])}), which can run "
                          f"code when loaded.",
                          "Allow pickle weights only if you trust where this model came from, or convert it to "
                          "safetensors.", field="model")


def read_model_config(path: Path) -> dict:
    try:
        return json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadModel(f"{path} has no config.json.", field="model") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadModel(f"{path}/config.json is not valid JSON: {exc}.", field="model") from None


@dataclass
class DeviceChoice:
    device: str  # cuda | mps | cpu
    precision: str  # fp32 | bf16 | fp16
    name: str  # for people: "NVIDIA H100 (80 GB)" or "CPU"

    @property
    def torch_dtype(self):
        import torch

        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]


def choose_device(device: str = "auto", precision: str = "auto") -> DeviceChoice:
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise BadModel("CUDA was chosen but no CUDA GPU is available to torch.",
                       "Choose device auto or cpu, or install the CUDA build of torch.", field="device")
    if precision == "auto":
        if device == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            # bf16 autocast on CPUs without AMX is ~30x slower than fp32; MPS training is safest in fp32.
            precision = "fp32"
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        name = f"{props.name} ({props.total_memory / 2**30:.0f} GiB)"
    elif device == "mps":
        name = "Apple GPU (MPS)"
    else:
        name = "CPU"
    return DeviceChoice(device=device, precision=precision, name=name)


def load_tokenizer(path: Path, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise BadModel(f"Could not load a tokenizer from {path}: {exc}",
                       "The folder needs tokenizer files (tokenizer.json or a vocabulary).", field="model") from None
    if not getattr(tokenizer, "is_fast", False):
        raise BadModel(f"The tokenizer in {path} is a slow (Python) tokenizer; a fast tokenizer "
                       f"(tokenizer.json) is needed to find the assistant tokens.", field="model")
    if tokenizer.pad_token is None:
        # Padding positions never count towards the loss, so reusing EOS (or UNK) is safe.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if tokenizer.pad_token is None:
        raise BadModel(f"The tokenizer in {path} has neither a pad, an end-of-sequence nor an unknown token.",
                       field="model")
    return tokenizer


def quantization_of(method: str) -> str | None:
    """The bitsandbytes quantization a training method loads its base in: '4bit', '8bit' or None."""
    return {"qlora-4bit": "4bit", "qlora-8bit": "8bit"}.get(method)


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) parameters, as the `started` event reports them."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def quantization_kwargs(choice: DeviceChoice, quantization: str | None) -> dict:
    """from_pretrained arguments for a base loaded in 4 or 8 bits by bitsandbytes (none for None)."""
    if not quantization:
        return {}
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                    bnb_4bit_compute_dtype=choice.torch_dtype)
    else:
        config = BitsAndBytesConfig(load_in_8bit=True)
    kwargs = {"quantization_config": config}
    if choice.device != "cpu":
        kwargs["device_map"] = {"": 0 if choice.device == "cuda" else choice.device}
    return kwargs


def load_checked(auto_class, path: Path, loads_as: str, **kwargs):
    """`auto_class.from_pretrained(path, **kwargs)`, with every loading failure but running out of memory turned
    into a BadModel naming the folder; `loads_as` says what it was loaded as ("as a causal language model")."""
    import torch

    try:
        return auto_class.from_pretrained(path, **kwargs)
    except ValueError as exc:
        text = str(exc)
        if "Unrecognized configuration" in text or "model type" in text:
            raise BadModel(f"{path} holds an architecture this version of transformers cannot load {loads_as}: "
                           f"{text.splitlines()[0]}", field="model") from None
        raise BadModel(f"Could not load the model in {path}: {text.splitlines()[0]}", field="model") from None
    except Exception as exc:  # noqa: BLE001 - loading failures are bad model folders, except running out of memory
        if isinstance(exc, torch.cuda.OutOfMemoryError):
            raise
        raise BadModel(f"Could not load the model in {path}: {str(exc).splitlines()[0] if str(exc) else exc!r}",
                       "The weights may be missing or corrupt; check the folder.", field="model") from None


def load_causal_lm(path: Path, choice: DeviceChoice, *, quantization: str | None = None,
                   trust_remote_code: bool = False, allow_pickle: bool = False):
    """The model on its device; quantization is None, '4bit' or '8bit' (bitsandbytes)."""
    from transformers import AutoModelForCausalLM

    kwargs = dict(dtype=choice.torch_dtype, trust_remote_code=trust_remote_code,
                  use_safetensors=None if allow_pickle else True)
    kwargs.update(quantization_kwargs(choice, quantization))
    model = load_checked(AutoModelForCausalLM, path, "as a causal language model", **kwargs)
    if not quantization and choice.device != "cpu":
        model.to(choice.device)
    return model
