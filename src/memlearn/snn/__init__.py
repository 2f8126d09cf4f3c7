"""Spiking inference on single-level RRAM: the SPIRIT chip (Valentian et al., IEDM 2019).

Modules: ``model`` (12x12 inputs, integer-weight tanh layer), ``train`` (offline training and
the shipped checkpoint), ``synapses`` (weights -> 8 SLC cells each, programming, disturb),
``neuron`` (integrate-and-fire circuit, rate coding, ΔS decision), ``simulate`` (time-stepped
run over images and chips), ``energy`` (event and energy ledger, formal-coding comparison),
``evaluate`` (chips end to end), ``hidden`` (a 144-H-10 network for comparison).
"""
