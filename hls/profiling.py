"""Profiling: what the trained Keras model computes on the training set, layer by layer.

Where this fits in the flow::

    hls/convert.py  convert_keras_model(model, out_dir, x_profile)
      -> profile_activations(model, x_profile)    (this module) every layer's output min/max, and
                                                  per-token variance / |sum| at every
                                                  LayerNormalization input
      -> hls/precision.py build_precision_config  every fixed-point type derived from these ranges

The profile is measured in float32 Keras (quantized weights, float activations): the ranges the
hardware types must hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class ActivationRange:
    """Range of one Keras layer's output over the profiling set (and LayerNorm input statistics)."""

    name: str
    kind: str
    min: float
    max: float
    # LayerNormalization layers: statistics of the layer's INPUT, per token.
    var_min: float | None = None
    var_p1: float | None = None
    var_max: float | None = None
    sum_abs_max: float | None = None

    @property
    def abs_max(self) -> float:
        return max(abs(self.min), abs(self.max))


def inbound_layer_names(layer) -> list[str]:
    """Names of the Keras layers that feed ``layer`` (its first call)."""
    node = layer.inbound_nodes[0]
    layers = node.inbound_layers
    if not isinstance(layers, (list, tuple)):
        layers = [layers]
    return [l.name for l in layers]


def profile_activations(model, x: np.ndarray, batch_size: int = 64) -> dict[str, ActivationRange]:
    """Run the Keras model on ``x`` and record every layer's output range.

    For every LayerNormalization the per-token variance (min, 1st percentile, max) and the largest
    |sum| over the normalized axis of its input are recorded too (the LN table and accumulator
    depend on them).
    """
    import tensorflow as tf

    layers = list(model.layers)
    sub = tf.keras.Model(model.inputs, [layer.output for layer in layers])
    lo = {l.name: math.inf for l in layers}
    hi = {l.name: -math.inf for l in layers}
    norms = [l for l in layers if isinstance(l, tf.keras.layers.LayerNormalization)]
    norm_input = {l.name: inbound_layer_names(l)[0] for l in norms}
    variances = {l.name: [] for l in norms}
    sums = {l.name: 0.0 for l in norms}
    index = {l.name: i for i, l in enumerate(layers)}
    for start in range(0, len(x), batch_size):
        outs = sub(x[start:start + batch_size], training=False)
        outs = [np.asarray(o) for o in outs]
        for layer, out in zip(layers, outs):
            lo[layer.name] = min(lo[layer.name], float(out.min()))
            hi[layer.name] = max(hi[layer.name], float(out.max()))
        for layer in norms:
            inp = outs[index[norm_input[layer.name]]].astype(np.float64)
            variances[layer.name].append(inp.var(axis=-1).ravel())
            sums[layer.name] = max(sums[layer.name], float(np.abs(inp.sum(axis=-1)).max()))
    result = {}
    for layer in layers:
        r = ActivationRange(layer.name, type(layer).__name__, lo[layer.name], hi[layer.name])
        if layer.name in variances:
            v = np.concatenate(variances[layer.name])
            r.var_min, r.var_p1, r.var_max = float(v.min()), float(np.percentile(v, 1)), float(v.max())
            r.sum_abs_max = sums[layer.name]
        result[layer.name] = r
    return result
