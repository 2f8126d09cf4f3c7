"""PyTorch modules: the hard-wired conv feature extractor (with batch-norm folding), the
bias-free FC head that lives on the crossbars, and the few-shot network.
"""

from memlearn.nn.extractor import ConvExtractor, fold_batchnorm
from memlearn.nn.fewshot import FewShotNet
from memlearn.nn.head import head_forward

__all__ = ["ConvExtractor", "FewShotNet", "fold_batchnorm", "head_forward"]
