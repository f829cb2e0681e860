"""Fourier-feature analyses: pure measures on tensors (one module per analysis) plus a small
activation collector for the 1-layer modular model.

- :mod:`~workbench.fourier.basis`: real Fourier basis over Z_n, 1-D / 2-D transforms.
- :mod:`~workbench.fourier.measures`: W_E / W_L Fourier norms, key frequencies, Gini, weights.
- :mod:`~workbench.fourier.neurons`: neuron frequencies and explained fractions.
- :mod:`~workbench.fourier.logits`: logit fit r², restricted and excluded losses.
- :mod:`~workbench.fourier.phases`: memorisation / circuit formation / cleanup boundaries.
- :mod:`~workbench.fourier.multiplicative`: subtraction and multiplication (discrete log) as
  addition in a cyclic group.
- :mod:`~workbench.fourier.walsh`: boolean Fourier analysis for sparse parity.
- :mod:`~workbench.fourier.group_irreps`: irreducible-representation shares over S_n.
- :mod:`~workbench.fourier.number_tokens`: spectra of number-token representations.
- :mod:`~workbench.fourier.collect`: activations of the modular model (all p² inputs).
- :mod:`~workbench.fourier.analysis`: :func:`analyze_modular_model`, :func:`analyze_series`.
"""

from workbench.fourier.analysis import (FourierReport, SeriesReport, analyze_modular_model,
                                        analyze_series)
from workbench.fourier.phases import PhaseBoundaries, detect_phases

__all__ = ["FourierReport", "PhaseBoundaries", "SeriesReport", "analyze_modular_model",
           "analyze_series", "detect_phases"]
