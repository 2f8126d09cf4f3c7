"""The (chip, image) presentations still running in a spiking simulation, kept compact.

A run presents every image to every chip; each (chip, image) pair stops at its own ΔS decision.
The working set of images (``alive``, ``[A]``) keeps an image while any chip still runs it, so
that the spike trains and the read-noise draws of a step keep their shapes (``[A, 144]``,
``[A, chips, neurons]``) and a seeded run draws the same numbers.  Everything else (neuron
states, per-pair sums) is held per running pair only: ``Pairs`` carries them, gathers a step's
dense ``[A, chips, ...]`` products at its rows and drops the pairs that have decided.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memlearn.snn.neuron import NeuronState


def flat_state(pairs: int, neurons: int) -> NeuronState:
    """Resting neurons ``[pairs, neurons]``."""
    z = torch.zeros(pairs, neurons)
    return NeuronState(z.clone(), torch.zeros_like(z, dtype=torch.int32), z.clone(), z.clone())


def noisy_step(
    mean: torch.Tensor,
    var: torch.Tensor | None,
    dims: tuple[int, ...],
    rows: torch.Tensor,
    gen: torch.Generator,
) -> torch.Tensor:
    """Membrane steps (V) ``[P, neurons]`` at ``rows`` of dense products ``mean`` / ``var``
    (flattened to ``[A * chips, neurons]``), plus read noise drawn for the whole ``dims``
    (``[A, chips, neurons]``: every pair of the working set, as a seeded run draws it)."""
    dv = mean[rows]
    if var is None:
        return dv
    noise = var[rows].clamp_(min=0).sqrt_()
    return noise.mul_(torch.randn(dims, generator=gen).view(-1, dims[-1])[rows]).add_(dv)


@dataclass
class Pairs:
    """Running pairs: ``pid`` (``image * chips + chip``, ``[P]``), ``rows`` (their index in
    the working set's ``[A * chips]``), one ``NeuronState`` ``[P, neurons]`` per layer and
    per-pair ``sums`` (each ``[P]``)."""

    chips: int
    pid: torch.Tensor
    rows: torch.Tensor
    states: list[NeuronState]
    sums: dict[str, torch.Tensor]

    @classmethod
    def start(
        cls, n: int, chips: int, neurons: tuple[int, ...], sums: dict[str, torch.dtype]
    ) -> Pairs:
        pid = torch.arange(n * chips)
        states = [flat_state(n * chips, k) for k in neurons]
        acc = {name: torch.zeros(n * chips, dtype=dt) for name, dt in sums.items()}
        return cls(chips, pid, pid.clone(), states, acc)

    @property
    def image_rows(self) -> torch.Tensor:
        """Each pair's row in the working set of images ``[P]``."""
        return torch.div(self.rows, self.chips, rounding_mode="floor")

    @property
    def chip(self) -> torch.Tensor:
        return self.rows % self.chips

    def keep(self, keep: torch.Tensor) -> None:
        """Keep only the pairs flagged in ``keep [P]``."""
        self.pid, self.rows = self.pid[keep], self.rows[keep]
        self.states = [
            NeuronState(s.v[keep], s.refractory[keep], s.pos[keep], s.neg[keep])
            for s in self.states
        ]
        self.sums = {k: v[keep] for k, v in self.sums.items()}

    def shrink_images(self, images: int) -> torch.Tensor | None:
        """Drop from the working set of ``images`` the images no chip runs any more; returns
        the kept images' flags ``[images]`` (``None``: all kept) and renumbers ``rows``."""
        img = self.image_rows
        keep = torch.zeros(images, dtype=torch.bool)
        keep[img] = True
        if bool(keep.all()):
            return None
        new_row = torch.cumsum(keep, 0) - 1
        self.rows = new_row[img] * self.chips + self.chip
        return keep

    def record(
        self,
        done: torch.Tensor,
        out: dict[str, torch.Tensor],
        decision: torch.Tensor,
        stopped: bool,
    ) -> None:
        """Write the sums, ``decision [P]`` and ``stopped`` (the ΔS criterion was met) of the
        pairs flagged in ``done`` into the flat ``[n * chips]`` results ``out`` (keys: the
        sums', ``decision``, ``stopped``), then drop them."""
        pid = self.pid[done]
        out["decision"][pid] = decision[done]
        out["stopped"][pid] = stopped
        for k, v in self.sums.items():
            out[k][pid] = v[done]
        self.keep(~done)
