"""Data sets: data-root resolution, download with checksums, Omniglot in its official layouts,
MNIST, and N-way K-shot task sampling.
"""
