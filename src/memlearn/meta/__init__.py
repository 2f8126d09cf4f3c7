"""Off-chip, hardware-aware meta-training (MAML with the inner loop on the FC layers),
checkpoints and software evaluation.
"""
