"""The QKeras ViT: shapes, the custom layers, save/load, determinism, learning."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from vitcod.model.config import ViTConfig
from vitcod.model.layers import ViTCoDAttention, decode_mask, encode_mask
from vitcod.model.storage import load_model, save_model
from vitcod.model.train import TrainConfig, accuracy, fit, make_deterministic
from vitcod.model.vit import build_vit, model_masks


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(image_size=8, patch_size=2, embed_dim=16, depth=1, num_heads=2),
    dict(image_size=12, channels=3, patch_size=4, embed_dim=24, depth=3, num_heads=3,
         num_classes=7, mlp_ratio=1.0),
    dict(patch_size=2, patch_overlap=0),
])
@pytest.mark.parametrize("autoencoder", [False, True])
def test_output_shapes(kwargs, autoencoder):
    config = ViTConfig(**kwargs)
    model = build_vit(config, autoencoder=autoencoder)
    x = np.random.default_rng(0).random((3,) + config.input_shape, dtype=np.float32)
    probs = model.predict(x, verbose=0)
    assert probs.shape == (3, config.num_classes)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    attention = [l for l in model.layers if isinstance(l, ViTCoDAttention)]
    assert len(attention) == config.depth
    assert tuple(attention[0].output.shape[1:]) == (config.num_tokens, config.embed_dim)
    if autoencoder:
        enc = model.get_layer("block0_q_encoder")
        assert enc.output.shape[-1] == config.compressed_heads * config.head_dim


def test_attention_layer_matches_numpy_reference():
    """Our attention == textbook multi-head attention written in numpy."""
    rng = np.random.default_rng(1)
    b, n, h, d = 2, 7, 2, 4
    q, k, v = (rng.standard_normal((b, n, h * d)).astype(np.float32) for _ in range(3))
    mask = rng.random((h, n, n)) < 0.5
    mask[:, :, 0] = True
    layer = ViTCoDAttention(h, mask=mask)
    out = layer([q, k, v]).numpy()
    ref = np.zeros_like(out)
    for head in range(h):
        sl = slice(head * d, (head + 1) * d)
        s = q[:, :, sl] @ k[:, :, sl].transpose(0, 2, 1) / np.sqrt(d)
        s = np.where(mask[head], s, -np.inf)
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        ref[:, :, sl] = p @ v[:, :, sl]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)  # float32 summation order


def test_mask_round_trips_through_config_bits():
    mask = np.random.default_rng(2).random((3, 11, 11)) < 0.3
    assert np.array_equal(decode_mask(encode_mask(mask)), mask)


def test_attention_rejects_inconsistent_masks():
    q = tf.zeros((1, 5, 8))
    with pytest.raises(ValueError, match="does not match"):
        ViTCoDAttention(2, mask=np.ones((2, 4, 4), bool))([q, q, q])
    empty_row = np.ones((2, 5, 5), bool)
    empty_row[1, 3] = False
    with pytest.raises(ValueError, match="at least one key"):
        ViTCoDAttention(2, mask=empty_row)([q, q, q])


def test_save_load_round_trip_identical_predictions(tmp_path, tiny_config):
    n = tiny_config.num_tokens
    masks = np.random.default_rng(3).random((tiny_config.depth, tiny_config.num_heads, n, n)) < 0.4
    masks[..., 0] = True
    model = build_vit(tiny_config, autoencoder=True, masks=masks)
    x = np.random.default_rng(4).random((5,) + tiny_config.input_shape, dtype=np.float32)
    save_model(model, tiny_config, tmp_path / "m")
    loaded, config = load_model(tmp_path / "m")
    assert config == tiny_config
    assert np.array_equal(model_masks(loaded), masks)
    assert np.array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_load_missing_model_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="make train"):
        load_model(tmp_path)


def _short_run(config, digits, seed, epochs=3):
    make_deterministic(seed)
    model = build_vit(config)
    fit(model, digits, TrainConfig(epochs=epochs, seed=seed, patience=epochs, warmup_epochs=1,
                                   augment=False, learning_rate=3e-3))
    return model


def test_seeded_training_is_deterministic(tiny_config, digits):
    a = _short_run(tiny_config, digits, seed=7, epochs=2)
    b = _short_run(tiny_config, digits, seed=7, epochs=2)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)
    c = _short_run(tiny_config, digits, seed=8, epochs=2)
    assert not all(np.array_equal(wa, wc) for wa, wc in zip(a.get_weights(), c.get_weights()))


def test_short_training_beats_chance_by_far(tiny_config, digits):
    model = _short_run(tiny_config, digits, seed=0, epochs=12)
    acc = accuracy(model, digits.x_test, digits.y_test)
    assert acc > 0.6, f"12 epochs on digits reached only {acc:.3f} (chance is 0.1)"
