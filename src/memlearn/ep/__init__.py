"""Equilibrium propagation (EP) on simulated crossbars, with a backprop baseline.

``config`` (validated settings), ``dynamics`` (energy, relaxation, EP and backprop gradients
over a two-product interface), ``transpose`` (the columns-to-rows crossbar read), ``array``
(the network on crossbar tiles and its update schemes), ``step`` (one training step),
``run`` (epochs, checkpoints, summary); ``head`` (the Omniglot chip's FC head adapted by EP
instead of the computer's gradient) and ``adapt`` (EP against the gradient loop on one
deployment, in software and on chips).
"""

from memlearn.ep.config import EPConfig, parse_network
from memlearn.ep.run import train

__all__ = ["EPConfig", "parse_network", "train"]
