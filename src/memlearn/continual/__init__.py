"""Continual learning on a hybrid FeRAM/OxRAM chip: a binarised network whose binary weights
live in OxRAM and 8-bit hidden weights in FeRAM, with metaplastic synapses (Laborieux et al.,
Nat. Commun. 2021; Martemucci et al., MEMRISYS 2023).

Modules: ``metaplastic`` (the rule), ``memories`` (FeRAM words, OxRAM binary pairs),
``store`` (where a layer's weights live), ``network`` (the networks, chip capacity),
``benchmarks`` (permuted/split MNIST), ``learners``, ``run`` (one sequential run) and
``summary`` (its figures).
"""

from memlearn.continual.metaplastic import binary, f_meta, metaplastic_update
from memlearn.continual.run import ContinualConfig, ContinualResult, run_continual

__all__ = [
    "ContinualConfig",
    "ContinualResult",
    "binary",
    "f_meta",
    "metaplastic_update",
    "run_continual",
]
