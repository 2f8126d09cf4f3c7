"""Running the points of a sweep, on this machine or as Ray tasks.

A sweep is a list of *points* (plain dicts of parameters) and a module-level function
``fn(point, seed) -> dict`` that evaluates one point; each point is itself batched Monte Carlo
(many chips in the batch dimension).  Every point gets its own seed, derived from the sweep's
base seed and the point's index only, so the results do not depend on the backend, on the order
in which points finish, or on how many workers run them.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from memlearn.errors import MemlearnError

BACKENDS = ("local", "ray")

PointFn = Callable[[dict[str, Any], int], dict[str, Any]]


def point_seeds(base_seed: int, n_points: int) -> list[int]:
    """Independent 63-bit seeds for ``n_points`` points, a function of ``base_seed`` only."""
    if base_seed < 0:
        raise ValueError(f"seed must be >= 0, got {base_seed}")
    children = np.random.SeedSequence(base_seed).spawn(n_points)
    return [int(c.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for c in children]


def run_sweep(
    fn: PointFn,
    points: Sequence[dict[str, Any]],
    *,
    seed: int = 0,
    backend: str = "local",
    ray_address: str | None = None,
    description: str = "sweep",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Evaluate ``fn(point, seed)`` at every point; results come back in the order of ``points``.

    ``backend="ray"`` runs each point as a Ray task: on the cluster at ``ray_address`` when given
    (``ray.init(address=...)``), otherwise on a local Ray instance started for the sweep (and shut
    down after it); inside :func:`ray_session` the session's Ray is used.  Ray is an optional
    extra: ``pip install 'memlearn[ray]'``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    seeds = point_seeds(seed, len(points))
    if backend == "local":
        return [
            fn(dict(point), point_seed)
            for point, point_seed in tqdm(
                list(zip(points, seeds, strict=True)),
                desc=description,
                disable=not progress,
                leave=False,
            )
        ]
    return _run_on_ray(fn, points, seeds, ray_address, description, progress)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MemlearnError(
            "the ray backend needs Ray: pip install 'memlearn[ray]' (or use --backend local)"
        ) from exc
    return ray


def _init_ray(ray: Any, address: str | None) -> bool:
    """Connect to the cluster at ``address`` or start a local Ray; False if already running."""
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    return True


@contextlib.contextmanager
def ray_session(backend: str = "ray", address: str | None = None) -> Iterator[None]:
    """Keep one Ray connection (or local instance) for several sweeps; with ``backend`` other
    than ``"ray"`` it does nothing.  A Ray started here is shut down on exit."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    if backend != "ray":
        yield
        return
    ray = _import_ray()
    started_here = _init_ray(ray, address)
    try:
        yield
    finally:
        if started_here:
            ray.shutdown()


def _run_on_ray(
    fn: PointFn,
    points: Sequence[dict[str, Any]],
    seeds: list[int],
    address: str | None,
    description: str,
    progress: bool,
) -> list[dict[str, Any]]:
    ray = _import_ray()
    started_here = _init_ray(ray, address)
    try:
        module = sys.modules.get(fn.__module__)
        if module is not None and not fn.__module__.startswith("memlearn."):
            # A point function from the user's own script or test module: the workers cannot
            # import it by name, so ship its module by value.
            ray.cloudpickle.register_pickle_by_value(module)
        remote_fn = ray.remote(fn)
        refs = [remote_fn.remote(dict(p), s) for p, s in zip(points, seeds, strict=True)]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[dict[str, Any] | None] = [None] * len(refs)
        pending = list(refs)
        with tqdm(total=len(refs), desc=description, disable=not progress, leave=False) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    results[index[ref]] = ray.get(ref)
                    bar.update(1)
        return [r for r in results if r is not None]
    finally:
        if started_here:
            ray.shutdown()
