"""Attention statistics over a data set, and masked attention never attending pruned keys."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from vitcod.model.statistics import collect_attention_statistics
from vitcod.model.vit import attention_layers, build_vit


def _all_probs(model, images):
    layers = attention_layers(model)
    probe = tf.keras.Model(model.inputs, [t for layer in layers for t in layer.input[:2]])
    qk = probe(images)
    return np.stack([layer.attention_probabilities(qk[2 * i], qk[2 * i + 1]).numpy()
                     for i, layer in enumerate(layers)], axis=1)  # (batch, L, H, N, N)


def test_batched_statistics_equal_the_mean_of_all_maps(tiny_config, digits):
    model = build_vit(tiny_config, autoencoder=True)
    images = digits.x_train[:70]
    stats = collect_attention_statistics(model, images, batch_size=16)  # 5 uneven batches
    expected = _all_probs(model, images).mean(axis=0)
    assert stats.count == 70
    np.testing.assert_allclose(stats.mean(), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(stats.mean().sum(-1), 1.0, rtol=1e-5)


def test_masked_model_gives_exactly_zero_probability_to_pruned_keys(tiny_config, digits):
    n, h = tiny_config.num_tokens, tiny_config.num_heads
    rng = np.random.default_rng(0)
    masks = rng.random((tiny_config.depth, h, n, n)) < 0.2
    masks[..., 0] = True
    model = build_vit(tiny_config, autoencoder=True, masks=masks)
    probs = _all_probs(model, digits.x_test[:20])
    assert np.all(probs[:, ~masks] == 0.0)
    assert np.all(probs[:, masks] > 0.0)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
