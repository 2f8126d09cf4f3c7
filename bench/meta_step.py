"""Meta-training speed: meta-steps/s and images/s of the head-only MAML step.

Usage: python bench/meta_step.py [--tasks 16] [--shots 1] [--queries 5] [--steps 5]
       [--order second|first] [--hardware] [--repeat 10] [--threads 2]

Images are random tensors of Omniglot's shape (speed does not depend on their content).
"""

from __future__ import annotations

import argparse
import time

import torch

from memlearn.meta.hardware import LevelProgrammer
from memlearn.meta.maml import MetaLearner
from memlearn.nn import FewShotNet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=16)
    ap.add_argument("--ways", type=int, default=5)
    ap.add_argument("--shots", type=int, default=1)
    ap.add_argument("--queries", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--order", choices=("first", "second"), default="second")
    ap.add_argument("--hardware", action="store_true", help="levels + programming noise")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.manual_seed(0)
    learner = MetaLearner(FewShotNet(ways=args.ways)).to(dev)
    opt = torch.optim.Adam(learner.parameters(), 1e-3)
    g = torch.Generator().manual_seed(0)
    t, w = args.tasks, args.ways
    sx = torch.rand(t, w * args.shots, 1, 28, 28, generator=g).to(dev)
    qx = torch.rand(t, w * args.queries, 1, 28, 28, generator=g).to(dev)
    sy = torch.arange(w).repeat_interleave(args.shots).repeat(t, 1).to(dev)
    qy = torch.arange(w).repeat_interleave(args.queries).repeat(t, 1).to(dev)
    prog = LevelProgrammer() if args.hardware else None
    gen = torch.Generator(device=dev).manual_seed(0)

    def step() -> None:
        loss, _ = learner.episode(
            sx, sy, qx, qy, args.steps, second_order=args.order == "second",
            programmer=prog, weight_max=(0.5, 0.5), generator=gen,
        )  # fmt: skip
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.repeat):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    images = t * w * (args.shots + args.queries) * args.repeat
    print(
        f"device={dev} threads={args.threads} tasks/step={t} {w}-way {args.shots}-shot "
        f"{args.queries} queries, {args.steps} inner steps, {args.order} order, "
        f"hardware={args.hardware}"
    )
    print(f"meta-steps/s: {args.repeat / elapsed:.3f}")
    print(f"images/s:     {images / elapsed:.1f}")


if __name__ == "__main__":
    main()
