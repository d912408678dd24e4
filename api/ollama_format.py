"""Response bodies in Ollama's shapes: chat and generate chunks with their durations, and model entries
for /api/tags, /api/show and /api/ps."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from api.generation import Generation
from api.routes_info import ollama_name
from npu_worker.backend import OLLAMA_BACKEND, ModelInfo

FORMATS = {"onnxruntime": "onnx", "hailort": "hef"}  # backend -> the model files' format
FAMILIES = {"vlm": "qwen2vl", "clip": "clip"}
CAPABILITIES = {"vlm": ["completion", "vision"], "clip": ["embedding", "vision"]}


@dataclass(frozen=True)
class ModelFiles:
    """What /api/tags says of a model's files: bytes, last change, and a fingerprint of both (there is
    no registry manifest to take Ollama's digest from)."""

    size: int
    modified: datetime.datetime
    digest: str


def timestamp(moment: datetime.datetime | None = None) -> str:
    """RFC 3339 with an explicit offset: Go, JavaScript and Python's fromisoformat all read it."""
    return (moment or datetime.datetime.now(datetime.UTC)).isoformat(timespec="microseconds")


def ns(seconds: float) -> int:
    return max(0, round(seconds * 1e9))


def durations(generation: Generation) -> dict[str, int]:
    """Ollama's figures, measured: total (arrival to answer), load (waiting for the model), prompt
    evaluation (until the first token, images included), evaluation (the tokens after it)."""
    final = generation.result
    return {
        "total_duration": ns(generation.elapsed_s),
        "load_duration": ns(final.queue_wait_s),
        "prompt_eval_count": final.prompt_tokens,
        "prompt_eval_duration": ns(final.ttft_s),
        "eval_count": final.completion_tokens,
        "eval_duration": ns(final.compute_s - final.ttft_s),
    }


def chunk(name: str, chat: bool, text: str, done: bool = False, reason: str | None = None) -> dict[str, Any]:
    """One /api/chat (`message`) or /api/generate (`response`) object."""
    body: dict[str, Any] = {"model": name, "created_at": timestamp()}
    if chat:
        body["message"] = {"role": "assistant", "content": text}
    else:
        body["response"] = text
    body["done"] = done
    if reason is not None:
        body["done_reason"] = reason
    return body


def details(info: ModelInfo) -> dict[str, Any]:
    family = FAMILIES[info.kind]
    body: dict[str, Any] = {
        "parent_model": "",
        "format": FORMATS.get(info.backend, info.backend),
        "family": family,
        "families": [family],
        "parameter_size": "",
        "quantization_level": "",
    }
    if info.context_length:
        body["context_length"] = info.context_length
    if info.embedding_dim:
        body["embedding_length"] = info.embedding_dim
    return body


def model_entry(info: ModelInfo, files: ModelFiles) -> dict[str, Any]:
    """A model as /api/tags lists it."""
    name = ollama_name(info.id)
    return {
        "name": name,
        "model": name,
        "modified_at": timestamp(files.modified),
        "size": files.size,
        "digest": files.digest,
        "details": details(info),
        "capabilities": CAPABILITIES[info.kind],
        "served_by": info.served_by,
    }


def door_entry(entry: dict[str, Any], running: bool = False) -> dict[str, Any]:
    """One of hailo-ollama's /api/tags (running: /api/ps) entries as hailo-vision lists it: as
    hailo-ollama wrote it, marked as served by it; loaded, its size is device memory (it runs on the
    NPU), which hailo-ollama's own entries leave out."""
    body = {**entry, "served_by": OLLAMA_BACKEND}
    if running:
        body.setdefault("size_vram", entry.get("size", 0))
    else:
        body.setdefault("capabilities", ["completion"])
    return body


def door_show(entry: dict[str, Any]) -> dict[str, Any]:
    """/api/show for one of hailo-ollama's models, from its /api/tags entry (hailo-ollama's own
    /api/show waits behind a running answer)."""
    return {
        "license": "",
        "modelfile": f"# {entry['name']}, served by hailo-ollama through hailo-vision\n",
        "parameters": "",
        "template": "",
        "details": entry.get("details") or {},
        "model_info": {},
        "capabilities": ["completion"],
        "modified_at": entry.get("modified_at", ""),
    }


def running_entry(
    info: ModelInfo, files: ModelFiles, expires: datetime.datetime, on_npu: bool
) -> dict[str, Any]:
    """A loaded model as /api/ps lists it; on the NPU its size counts as device memory."""
    entry = model_entry(info, files)
    del entry["modified_at"], entry["capabilities"]
    entry["expires_at"] = timestamp(expires)
    entry["size_vram"] = files.size if on_npu else 0
    entry["context_length"] = info.context_length or 0
    return entry


def show_body(info: ModelInfo, files: ModelFiles) -> dict[str, Any]:
    """/api/show: details, model_info and capabilities (with `vision`), as Ollama answers."""
    family = FAMILIES[info.kind]
    model_info: dict[str, Any] = {"general.architecture": family, "general.name": info.id}
    if info.context_length:
        model_info[f"{family}.context_length"] = info.context_length
    if info.embedding_dim:
        model_info[f"{family}.embedding_length"] = info.embedding_dim
    return {
        "license": "",
        "modelfile": f"# {info.id}, served by hailo-vision ({info.backend})\n",
        "parameters": "",
        "template": "",
        "details": details(info),
        "model_info": model_info,
        "capabilities": CAPABILITIES[info.kind],
        "modified_at": timestamp(files.modified),
    }
