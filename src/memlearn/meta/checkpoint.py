"""Meta-trained model checkpoints: atomic save, validated load, the shipped default.

A checkpoint is a ``torch.save`` file holding only tensors and plain Python values (it loads
with ``weights_only=True``) and a JSON file beside it with the same metadata for people:

- ``format`` = ``"memlearn-fewshot"``, ``version`` = 1;
- ``config``: the :class:`~memlearn.nn.FewShotNet` constructor arguments;
- ``state_dict``: the network's weights and batch-norm statistics;
- ``inner_lrs``: the inner learning rates the chip's SGD steps use: one per FC layer
  (``[fc1, fc2]``), or one such pair per step (``[[fc1, fc2], ...]``, see
  :mod:`memlearn.nn.rates`);
- ``weight_max``: per FC layer, the weight mapped to the full conductance window (or null);
- ``hardware_aware``: bool, and ``device``: the programmer options used in training;
- ``metrics``, ``command``, ``training``: what it scored, how it was made.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from memlearn.errors import CorruptDataError, MemlearnError
from memlearn.io import atomic_write
from memlearn.meta.hardware import update_rule_name
from memlearn.nn import FewShotNet
from memlearn.nn.rates import Rates, rate_table, stored_rates

FORMAT = "memlearn-fewshot"
VERSION = 1
SHIPPED_MODEL = "omniglot_5way.pt"
_INFO_KEYS = (
    "config",
    "inner_lrs",
    "weight_max",
    "hardware_aware",
    "device",
    "metrics",
    "command",
    "training",
)


def shipped_checkpoint_path(name: str = SHIPPED_MODEL) -> Path:
    """Path of a model shipped in ``memlearn/models``."""
    path = Path(str(resources.files("memlearn.models").joinpath(name)))
    if not path.is_file():
        raise MemlearnError(f"shipped model {name!r} is missing from {path.parent}")
    return path


def read_torch_file(
    path: Path, what: str = "checkpoint", map_location: str | torch.device = "cpu"
) -> Any:
    """``torch.load(path, weights_only=True)`` with one clear :class:`CorruptDataError` for a
    file that is empty, truncated, not a torch file, or holds more than tensors and plain
    values (refused: unpickling arbitrary objects can run arbitrary code)."""
    if path.stat().st_size == 0:
        raise CorruptDataError(f"{what} {path} cannot be read: empty file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        name = f" ({found.group(1)})" if found else ""
        raise CorruptDataError(
            f"{what} {path} cannot be read: it holds Python objects{name} besides tensors and "
            "plain values, which memlearn refuses to load (not a file memlearn wrote)"
        ) from None
    except Exception as exc:  # torch raises many kinds on a truncated or foreign file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CorruptDataError(
            f"{what} {path} cannot be read (truncated or not a torch file): {reason}"
        ) from None


def save_checkpoint(
    path: str | os.PathLike[str],
    net: FewShotNet,
    inner_lrs: torch.Tensor | Rates,
    *,
    weight_max: list[float] | None = None,
    hardware_aware: bool = False,
    device: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    command: str = "",
    training: dict[str, Any] | None = None,
) -> Path:
    """Write ``path`` (``.pt``) and ``path`` with suffix ``.json`` atomically; returns ``path``."""
    lrs = stored_rates(inner_lrs, 2)
    info = {
        "config": net.config,
        "inner_lrs": lrs,
        "weight_max": None if weight_max is None else [float(w) for w in weight_max],
        "hardware_aware": bool(hardware_aware),
        "device": device or {},
        "metrics": metrics or {},
        "command": command,
        "training": training or {},
    }
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    path = Path(path)
    with atomic_write(path, "wb") as fh:
        torch.save({"format": FORMAT, "version": VERSION, "state_dict": state, **info}, fh)
    with atomic_write(path.with_suffix(".json"), "w") as fh:
        json.dump({"format": FORMAT, "version": VERSION, **info}, fh, indent=2)
        fh.write("\n")
    return path


def load_checkpoint(
    path: str | os.PathLike[str] | None = None, map_location: str | torch.device = "cpu"
) -> tuple[FewShotNet, dict[str, Any]]:
    """Load a checkpoint (``None``: the shipped model) → ``(net in eval mode, info)``.

    ``info`` holds the keys listed in the module docstring (everything but the weights) and
    ``path``.  Batch norm is not folded: call ``net.fold_batchnorm()`` to deploy.
    """
    path = shipped_checkpoint_path() if path is None else Path(path)
    if not path.is_file():
        raise MemlearnError(f"checkpoint {path} does not exist")
    blob = read_torch_file(path, "checkpoint", map_location)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CorruptDataError(f"{path} is not a memlearn few-shot checkpoint (format {FORMAT})")
    if blob.get("version") != VERSION:
        raise CorruptDataError(
            f"checkpoint {path} has version {blob.get('version')}; this memlearn reads {VERSION}"
        )
    missing = [k for k in ("state_dict", *_INFO_KEYS) if k not in blob]
    if missing:
        raise CorruptDataError(f"checkpoint {path} lacks {missing}")
    net = FewShotNet.from_config(blob["config"])
    try:
        net.load_state_dict(blob["state_dict"])
    except RuntimeError as exc:
        raise CorruptDataError(f"checkpoint {path}: weights do not fit its config: {exc}") from exc
    info = {k: blob[k] for k in _INFO_KEYS}
    try:
        rate_table(info["inner_lrs"], 2)
    except ValueError as exc:
        raise CorruptDataError(f"checkpoint {path}: {exc}") from exc
    device = info.get("device")
    if isinstance(device, dict) and "update_rule" in device:
        # checkpoints saved before the rule took the loop's policy name say "nearest"
        info["device"] = {**device, "update_rule": update_rule_name(device["update_rule"])}
    info["path"] = str(path)
    return net.eval(), info
