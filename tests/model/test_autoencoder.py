"""The ViTCoD Q/K auto-encoder: shapes, PCA initialisation, the added loss, storage."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from vitcod.model import autoencoder as ae
from vitcod.model.config import ViTConfig
from vitcod.model.vit import build_vit


@pytest.mark.parametrize("heads, expected", [(4, 2), (3, 2), (6, 3), (2, 1)])
def test_default_compression_is_ceil_half(heads, expected):
    config = ViTConfig(embed_dim=12 * heads, num_heads=heads)
    model = build_vit(config, autoencoder=True)
    enc = model.get_layer("block0_k_encoder")
    assert enc.output.shape[-1] == expected * config.head_dim
    assert model.get_layer("block0_k_decoder").output.shape[-1] == config.embed_dim
    assert ae.compressed_channel_ratio(model) == pytest.approx(expected / heads)
    assert ae.qk_storage_bytes(config, True) / ae.qk_storage_bytes(config, False) \
        == pytest.approx(expected / heads)


def test_attention_uses_decoded_q_and_k(tiny_config):
    model = build_vit(tiny_config, autoencoder=True)
    q, k, v = model.get_layer("block0_attention").input
    assert q._keras_history.layer.name == "block0_q_decoder"
    assert k._keras_history.layer.name == "block0_k_decoder"
    assert v._keras_history.layer.name == "block0_v"


def test_pca_initialisation_is_the_best_linear_reconstruction(tiny_config, digits):
    model = build_vit(tiny_config, autoencoder=True, quantized=False)
    images = digits.x_train[:200]
    ae.pca_initialise(model, images)
    probe = tf.keras.Model(model.inputs, [model.get_layer("block0_q").output,
                                          model.get_layer("block0_q_decoder").output])
    q, q_hat = probe.predict(images, verbose=0)
    h, d = tiny_config.num_heads, tiny_config.head_dim
    samples = q.reshape(-1, h, d).transpose(0, 2, 1).reshape(-1, h).astype(np.float64)
    eig = np.sort(np.linalg.eigvalsh(np.cov(samples, rowvar=False)))[::-1]
    dropped = eig[tiny_config.compressed_heads:].sum()
    mse_per_vector = np.mean(np.sum((q_hat - q).reshape(-1, h, d).transpose(0, 2, 1)
                                    .reshape(-1, h) ** 2, axis=-1))
    # PCA's reconstruction error is the dropped variance (float32 and the n-1 vs n
    # normalisation of the covariance are the only differences).
    assert mse_per_vector == pytest.approx(dropped, rel=2e-2, abs=1e-6)


def test_reconstruction_loss_is_added_with_its_weight(tiny_config, digits):
    model = build_vit(tiny_config, autoencoder=True)
    wrapper = ae.training_model(model)
    losses, weights = ae.reconstruction_loss_settings(0.25)
    wrapper.compile(loss=losses, loss_weights=weights)
    x, y = digits.x_val[:64], digits.y_val[:64]
    total = wrapper.evaluate(x, (y, np.zeros(len(y))), batch_size=64, verbose=0)[0]
    probs, recon = wrapper.predict(x, batch_size=64, verbose=0)
    ce = tf.keras.losses.sparse_categorical_crossentropy(y, probs).numpy().mean()
    assert recon.min() > 0
    assert total == pytest.approx(ce + 0.25 * recon.mean(), rel=1e-4)
    # the reconstruction term is the sum over Q and K of per-sample L2 norms
    probe = tf.keras.Model(model.inputs, [model.get_layer(n).output for n in
                                          ("block0_q", "block0_q_decoder", "block0_k",
                                           "block0_k_decoder")])
    q, qh, k, kh = probe.predict(x, verbose=0)
    norms = np.linalg.norm((qh - q).reshape(len(x), -1), axis=1) + \
        np.linalg.norm((kh - k).reshape(len(x), -1), axis=1)
    np.testing.assert_allclose(recon, norms, rtol=1e-4)


def test_inference_model_has_no_training_only_layers(tiny_config):
    model = build_vit(tiny_config, autoencoder=True)
    ae.training_model(model)
    assert "qk_reconstruction" not in [layer.name for layer in model.layers]


def test_transfer_weights_copies_by_name(tiny_config):
    dense = build_vit(tiny_config)
    with_ae = build_vit(tiny_config, autoencoder=True)
    copied = ae.transfer_weights(dense, with_ae)
    assert "block0_q" in copied and "block0_q_encoder" not in copied
    np.testing.assert_array_equal(with_ae.get_layer("head").get_weights()[0],
                                  dense.get_layer("head").get_weights()[0])
