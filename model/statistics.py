"""Attention statistics of a trained model over a data set (ViTCoD step 2).

Runs the model batch by batch, takes the (decoded) q and k that enter every
:class:`~vitcod.model.layers.ViTCoDAttention` layer, computes that layer's softmax
probabilities and adds them to a running sum. Only one batch of maps is ever in
memory; the mean over the set feeds the mask rule in :mod:`vitcod.model.masks`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .masks import AttentionStatistics
from .vit import attention_layers


def collect_attention_statistics(model: tf.keras.Model, images: np.ndarray,
                                 batch_size: int = 128) -> AttentionStatistics:
    """Mean softmax probability per (layer, head, query, key) over ``images``."""
    layers = attention_layers(model)
    if not layers:
        raise ValueError("model has no ViTCoDAttention layers")
    probe = tf.keras.Model(model.inputs, [t for layer in layers for t in layer.input[:2]])
    stats = AttentionStatistics()
    for start in range(0, len(images), batch_size):
        qk = probe(images[start:start + batch_size], training=False)
        probs = [layer.attention_probabilities(qk[2 * i], qk[2 * i + 1]).numpy()
                 for i, layer in enumerate(layers)]
        stats.update(probs)
    return stats
