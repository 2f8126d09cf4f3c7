"""The reference studies (overlap, window x levels, strategies, retention, learning curves,
energy), sweeps and the reproduction report.
"""
