"""Benchmark: Omniglot loading and task sampling.

Prints the time to decode the full background set (19,280 PNGs → 28x28, cold cache), to load
it from the processed cache, to build the ``train`` split with rotations, and the sampler's
throughput (tasks/s and images/s) for 5-way 1-shot 15-query batches of 32 tasks.

    MEMLEARN_DATA=/work/shared/data .venv/bin/python bench/data_loading.py [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from memlearn.data import TaskSampler, load_split
from memlearn.data.preprocess import load_image_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="data root (default: MEMLEARN_DATA)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as cache:
        os.environ["MEMLEARN_CACHE"] = cache  # a cold cache, removed afterwards
        t0 = time.perf_counter()
        raw = load_image_set("images_background", args.root)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_image_set("images_background", args.root)
        warm = time.perf_counter() - t0
        t0 = time.perf_counter()
        train = load_split("train", args.root)
        split_s = time.perf_counter() - t0
    n_images = raw.images.shape[0] * raw.images.shape[1]
    print(
        f"decode + resize + cache write, {n_images:,} PNGs: {cold:.2f} s "
        f"({n_images / cold:,.0f} images/s)"
    )
    print(f"load from the processed cache: {warm:.2f} s")
    print(f"train split ({train.n_classes:,} classes with rotations, float32): {split_s:.2f} s")

    sampler = TaskSampler(train, ways=5, shots=1, queries=15, seed=0)
    sampler.sample(32)
    t0 = time.perf_counter()
    for _ in range(args.batches):
        batch = sampler.sample(32)
    dt = time.perf_counter() - t0
    per_batch = batch.support_x.shape[0] * (batch.support_x.shape[1] + batch.query_x.shape[1])
    print(
        f"sampler, 5-way 1-shot 15-query x 32 tasks: {args.batches * 32 / dt:,.0f} tasks/s, "
        f"{args.batches * per_batch / dt:,.0f} images/s"
    )


if __name__ == "__main__":
    main()
