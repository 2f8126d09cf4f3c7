"""Spiking inference on single-level RRAM: the SPIRIT chip (Valentian et al., IEDM 2019).

Modules: ``model`` (12x12 inputs, integer-weight tanh layer), ``train`` (offline training and
the shipped checkpoint), ``rundir`` (the resumable run folder of ``snn train``), ``synapses``
(weights -> 8 SLC cells each, programming, disturb), ``neuron`` (integrate-and-fire circuit,
N2D2-style rate coding, ΔS = N2D2's TerminateDelta), ``simulate`` (time-stepped run over images
and chips, and the analytic input-spike count), ``energy`` (event and energy ledger,
formal-coding comparison), ``evaluate`` (chips end to end), ``hidden`` (a 144-H-10 network for
comparison: training and checkpoint), ``twolayer`` (it spiking on cells, both layers in the same
time steps) and ``hidden_eval`` (it on chips end to end, with both layers' ledger).
"""
