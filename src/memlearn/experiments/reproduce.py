"""``reproduce``: run the reference studies and write their figures, data and the report.

Everything is written into a staging directory beside ``out_dir`` and moved into place only when
every study has finished, so an interrupted or failed run leaves no half-written directory (a
previous reproduction at ``out_dir`` is replaced only then).  The directory holds each study's
PNG figures, CSV and JSON data, ``run.json`` (config, seeds, package versions, wall times,
outcomes) and ``report.md`` / ``report.html``.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from memlearn.data.augment import DEFAULT_SUPPORT_COPIES
from memlearn.devices.preset import DEFAULT_PRESET, DevicePreset
from memlearn.errors import MemlearnError
from memlearn.experiments import DEFAULT_STUDIES, STUDY_NAMES
from memlearn.experiments.common import DEFAULT_POLICY, StudyRun, study_preset
from memlearn.experiments.continual import FULL_SETTINGS as CONTINUAL_FULL
from memlearn.experiments.continual import continual_study
from memlearn.experiments.curves import curves_study
from memlearn.experiments.energy import energy_study
from memlearn.experiments.ep import ep_study
from memlearn.experiments.overlap import overlap_study
from memlearn.experiments.provenance import provenance, write_json
from memlearn.experiments.report import StudyOutcome, write_report
from memlearn.experiments.retention import retention_study
from memlearn.experiments.spirit import spirit_study
from memlearn.experiments.strategies import strategies_study
from memlearn.experiments.sweep import BACKENDS, ray_session
from memlearn.experiments.window import window_study
from memlearn.io import default_mode
from memlearn.onchip.policies import POLICIES

StudyFn = Callable[..., StudyOutcome]

STUDIES: dict[str, StudyFn] = {
    "overlap": overlap_study,
    "window": window_study,
    "strategies": strategies_study,
    "retention": retention_study,
    "curves": curves_study,
    "energy": energy_study,
    "spirit": spirit_study,
    "ep": ep_study,
    "continual": continual_study,
}
assert tuple(STUDIES) == STUDY_NAMES

# Sweep sizes [E]: quick mode is each study function's defaults (a few minutes on 2 shared
# cores); full mode, the one to quote, replaces these settings: the same ranges (the trends are
# judged between their ends), finer grids and more tasks.
FULL: dict[str, dict[str, Any]] = {
    "overlap": {
        "levels": (4, 8, 16),
        "ratios": (0.03, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0),
        "tasks": 256,
    },
    "window": {
        "levels": (4, 6, 8, 12, 16),
        "fractions": (0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0),
        "tasks": 256,
    },
    "strategies": {"cells": 2000, "tasks": 256},
    "retention": {"drift_factors": (1.0, 4.0, 8.0, 16.0), "cells": 2000, "tasks": 128},
    "curves": {"task_sets": 16},
    "energy": {"levels": (2, 4, 8, 16), "tasks": 64},
    "spirit": {"chips": 20, "images": 2000},
    "ep": {"network": "784-500-10", "epochs": 10, "train_images": 60000, "test_images": 10000},
    "continual": CONTINUAL_FULL,
}
MARKER = "memlearn-reproduce"  # run.json "kind": what may be replaced at out_dir


@dataclass
class Reproduction:
    """What a reproduction wrote: the directory, its outcomes and wall time."""

    out_dir: Path
    outcomes: list[StudyOutcome]
    seconds: float
    report_md: Path
    report_html: Path


def study_settings(study: str, quick: bool, overrides: dict[str, Any] | None = None) -> dict:
    """The keyword arguments a study runs with: its function's defaults (quick mode), the
    full-mode sizes unless ``quick``, then ``overrides`` (``None`` values ignored)."""
    if study not in STUDIES:
        raise MemlearnError(f"unknown study {study!r}; allowed: {', '.join(STUDIES)}")
    params = inspect.signature(STUDIES[study]).parameters
    settings = {k: p.default for k, p in params.items() if p.kind is p.KEYWORD_ONLY}
    if not quick:
        settings.update(FULL[study])
    for key, value in (overrides or {}).items():
        if key not in settings:
            raise MemlearnError(f"study {study!r} has no setting {key!r}; it has {list(settings)}")
        if value is not None:
            settings[key] = value
    return settings


def reproduce(
    out_dir: str | Path,
    *,
    studies: Iterable[str] | None = None,
    quick: bool = False,
    preset: str | DevicePreset = DEFAULT_PRESET,
    backend: str = "local",
    ray_address: str | None = None,
    seed: int = 0,
    policy: str = DEFAULT_POLICY,
    support_copies: int = DEFAULT_SUPPORT_COPIES,
    checkpoint: str | Path | None = None,
    root: str | Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    progress: bool = True,
    command: str = "",
) -> Reproduction:
    """Run ``studies`` (default: the reference chip's six, ``DEFAULT_STUDIES``) and write the
    reproduction into ``out_dir``.

    ``overrides`` maps a study to keyword arguments that replace its quick/full settings (e.g.
    ``{"overlap": {"levels": (4, 8)}}``).  The run's seed fixes the tasks and, through each
    study's sweep seed, every chip; ``policy`` is the on-chip update policy of every study and
    ``support_copies`` the distorted copies of each support image it learns from.
    """
    names = list(DEFAULT_STUDIES) if studies is None else list(dict.fromkeys(studies))
    _check_options(names, quick, overrides, backend, policy, seed, support_copies)
    preset = study_preset(preset)
    settings = {n: study_settings(n, quick, (overrides or {}).get(n)) for n in names}
    out_dir = Path(out_dir)
    _check_replaceable(out_dir)
    started = time.perf_counter()
    with staging_dir(out_dir) as stage:
        run = StudyRun(
            out_dir=stage,
            preset=preset,
            seed=seed,
            backend=backend,
            ray_address=ray_address,
            progress=progress,
            policy=policy,
            support_copies=support_copies,
            checkpoint=Path(checkpoint) if checkpoint else None,
            root=Path(root) if root else None,
        )
        with ray_session(backend, ray_address):
            outcomes, seconds = _run_studies(run, names, settings, progress)
        total = time.perf_counter() - started
        config = {
            "command": command or "memlearn reproduce",
            "mode": "quick" if quick else "full",
            "preset": preset.name,
            "seed": seed,
            "policy": policy,
            "support_copies": support_copies,
            "backend": backend,
            "studies": ", ".join(names),
        }
        info = provenance(config)
        info.update(
            kind=MARKER,
            preset_origin=preset.origin,
            ray_address=ray_address,
            tasks=run.workload_.info if run.workload_ is not None else None,
            settings=settings,
            study_seeds={n: run.study_seed(n) for n in names},
            seconds={**seconds, "total": total},
            outcomes=[o.as_dict() for o in outcomes],
        )
        write_json(stage / "run.json", info)
        md, page = write_report(stage, outcomes, info, title="memlearn reproduction")
    return Reproduction(out_dir, outcomes, total, out_dir / md.name, out_dir / page.name)


def _check_options(
    names: list[str],
    quick: bool,
    overrides: dict[str, dict[str, Any]] | None,
    backend: str,
    policy: str,
    seed: int,
    support_copies: int,
) -> None:
    """Check :func:`reproduce`'s options before anything runs."""
    if not names:
        raise MemlearnError("no study to run")
    for name in names:
        study_settings(name, quick)  # unknown names fail here, before anything runs
    for name in overrides or {}:
        if name not in names:
            raise MemlearnError(f"settings given for study {name!r}, which is not run")
    if backend not in BACKENDS:
        raise MemlearnError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    if policy not in POLICIES:
        raise MemlearnError(f"unknown update policy {policy!r}; allowed: {', '.join(POLICIES)}")
    if seed < 0:
        raise MemlearnError(f"seed must be >= 0, got {seed}")
    if support_copies < 0:
        raise MemlearnError(f"support copies must be >= 0, got {support_copies}")


def _run_studies(
    run: StudyRun, names: list[str], settings: dict[str, dict[str, Any]], progress: bool
) -> tuple[list[StudyOutcome], dict[str, float]]:
    """Run the studies ``names`` in turn: their outcomes and wall times (s)."""
    outcomes, seconds = [], {}
    bar = tqdm(names, desc="studies", disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        t0 = time.perf_counter()
        outcome = STUDIES[name](run, **settings[name])
        seconds[name] = time.perf_counter() - t0
        outcome.numbers.append(("wall time of the study", f"{seconds[name]:.0f} s"))
        outcomes.append(outcome)
    return outcomes, seconds


def _check_replaceable(out_dir: Path) -> None:
    """``out_dir`` must be absent, empty, or a previous reproduction (it is then replaced)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise MemlearnError(f"--out {str(out_dir)!r} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        marker = out_dir / "run.json"
        try:
            kind = json.loads(marker.read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            kind = None
        if kind != MARKER:
            raise MemlearnError(
                f"--out {str(out_dir)!r} is a non-empty directory that is not a memlearn "
                f"reproduction; give a new or empty directory"
            )
    parent = out_dir.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MemlearnError(f"cannot create the directory {str(parent)!r}: {exc}") from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise MemlearnError(f"cannot write into {str(parent)!r} (for --out {str(out_dir)!r})")


@contextlib.contextmanager
def staging_dir(out_dir: Path):
    """A temporary directory beside ``out_dir``; on success it becomes ``out_dir`` (replacing a
    previous one), on failure it is removed."""
    parent = out_dir.absolute().parent
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=parent))
        stage.chmod(default_mode(directory=True))  # mkdtemp's is private (0o700)
    except OSError as exc:
        raise MemlearnError(f"cannot write into {str(parent)!r}: {exc}") from exc
    try:
        yield stage
        _publish(stage, out_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _publish(stage: Path, out_dir: Path) -> None:
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.old")
        os.replace(out_dir, old)
    try:
        os.replace(stage, out_dir)
    except BaseException:
        if old is not None:
            os.replace(old, out_dir)
        raise
    os.chmod(out_dir, 0o777 & ~_umask())
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
