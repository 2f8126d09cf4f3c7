"""Arrays of cells: differential-pair weight mapping, tiling over 32x32 tiles, analog vector-
matrix products with DAC/ADC limits, per-cell write counters and an energy/latency ledger.
"""
