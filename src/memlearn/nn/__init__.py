"""PyTorch modules: the hard-wired conv feature extractor, crossbar-backed linear layers and
the few-shot network.
"""
