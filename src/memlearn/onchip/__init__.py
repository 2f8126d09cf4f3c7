"""The computer-in-the-loop: deployment of a meta-trained model into a chip and K-step on-chip
adaptation with conductance update policies.
"""
