"""One resistive cell's physics, batched over chips and cells: conductance levels, pulse-by-
pulse programming strategies with verify reads, read noise, relaxation and Arrhenius drift,
stuck cells, endurance, energy, presets with sources, and fitting to measurements.
"""
