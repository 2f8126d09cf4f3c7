"""memlearn: on-chip learning on resistive-memory crossbars.

Layers, bottom to top (nothing imports from a layer above it):
``devices`` → ``crossbar`` → ``chip`` → ``nn`` / ``data`` → ``meta`` → ``onchip`` →
``experiments`` → ``cli``.  All physical quantities are SI: siemens, volts, seconds,
joules, kelvin.
"""

__version__ = "0.1.0"
