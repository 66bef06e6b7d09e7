"""The QKeras Vision Transformer, built from parts hls4ml can convert plus our own layers.

Graph (pre-norm ViT, every name fixed so later stages find layers by name)::

    image -> patch_embed (QConv2D, stride = patch) -> patch_tokens (Reshape)
          -> embed (ClassTokenPosition: [CLS; patches] + position)
          -> depth x block{i}:
                 norm1 -> q / k / v (QConv1D k=1)
                       [-> q_encoder -> q_decoder, k_encoder -> k_decoder]  (auto-encoder)
                       -> attention (ViTCoDAttention, optional fixed mask)
                       -> proj (QConv1D k=1) -> add1 (residual)
                 norm2 -> mlp1 (QConv1D k=1) -> relu (quantized) -> mlp2 -> add2
          -> final_norm -> cls_select (Cropping1D keeps token 0) -> cls_flat
          -> head (QDense) -> softmax

Projections are QConv1D(kernel_size=1), not QDense: hls4ml converts QDense on a
(tokens, features) input to PointwiseConv1D but drops its quantizers
(TOOLCHAIN.md), while QConv1D(kernel_size=1) converts exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from qkeras import QActivation, QConv1D, QConv2D, QDense

from .config import ViTConfig
from .layers import ClassTokenPosition, QKDecoder, QKEncoder, ViTCoDAttention

BIAS_BITS = 12
BIAS_INTEGER_BITS = 3


class Quantizers:
    """QKeras quantizer strings for a config; all None for the float model.

    Weights use ``alpha=1`` so every scale is a power of two, which hls4ml
    represents exactly with ap_fixed (no ApplyAlpha layers).
    """

    def __init__(self, config: ViTConfig, quantized: bool = True):
        self.quantized = quantized
        if quantized:
            self.weight = f"quantized_bits({config.weight_bits},{config.weight_integer_bits},alpha=1)"
            self.bias = f"quantized_bits({BIAS_BITS},{BIAS_INTEGER_BITS},alpha=1)"
            self.relu = (f"quantized_relu({config.activation_bits},"
                         f"{config.activation_integer_bits})")
        else:
            self.weight = self.bias = None
            self.relu = "relu"


def _pointwise(filters: int, q: Quantizers, name: str) -> QConv1D:
    return QConv1D(filters, kernel_size=1, kernel_quantizer=q.weight, bias_quantizer=q.bias,
                   name=name)


def build_vit(config: ViTConfig, *, quantized: bool = True, autoencoder: bool = False,
              masks: np.ndarray | Sequence[np.ndarray | None] | None = None) -> tf.keras.Model:
    """Build the (inference) ViT.

    Args:
        config: geometry and bit widths.
        quantized: QKeras quantizers on (True) or the float twin (False).
        autoencoder: insert the ViTCoD Q/K encoder/decoder pairs in every block.
        masks: optional fixed keep-masks, (depth, heads, N, N) bool or one entry
            (heads, N, N) / None per block.
    """
    if masks is not None:
        if len(masks) != config.depth:
            raise ValueError(f"masks: expected one entry per block ({config.depth}), "
                             f"got {len(masks)}")
    q = Quantizers(config, quantized)
    heads, head_dim, tokens = config.num_heads, config.head_dim, config.num_tokens
    grid = config.image_size // config.patch_size

    image = tf.keras.Input(shape=config.input_shape, name="image")
    padding = "valid" if config.embed_kernel == config.patch_size else "same"
    x = QConv2D(config.embed_dim, kernel_size=config.embed_kernel, strides=config.patch_size,
                padding=padding, kernel_quantizer=q.weight, bias_quantizer=q.bias,
                name="patch_embed")(image)
    x = tf.keras.layers.Reshape((grid * grid, config.embed_dim), name="patch_tokens")(x)
    x = ClassTokenPosition(quantizer=q.bias, name="embed")(x)

    for i in range(config.depth):
        p = f"block{i}_"
        h = tf.keras.layers.LayerNormalization(epsilon=1e-5, name=p + "norm1")(x)
        qt = _pointwise(config.embed_dim, q, p + "q")(h)
        kt = _pointwise(config.embed_dim, q, p + "k")(h)
        vt = _pointwise(config.embed_dim, q, p + "v")(h)
        if autoencoder:
            c = config.compressed_heads
            for name in ("q", "k"):
                src = qt if name == "q" else kt
                z = QKEncoder(heads, c, head_dim, q.weight, q.bias, name=f"{p}{name}_encoder")(src)
                dec = QKDecoder(c, heads, head_dim, q.weight, q.bias,
                                name=f"{p}{name}_decoder")(z)
                if name == "q":
                    qt = dec
                else:
                    kt = dec
        mask = None if masks is None else masks[i]
        a = ViTCoDAttention(heads, mask=mask, name=p + "attention")([qt, kt, vt])
        a = _pointwise(config.embed_dim, q, p + "proj")(a)
        x = tf.keras.layers.Add(name=p + "add1")([x, a])
        h = tf.keras.layers.LayerNormalization(epsilon=1e-5, name=p + "norm2")(x)
        h = _pointwise(config.mlp_dim, q, p + "mlp1")(h)
        h = QActivation(q.relu, name=p + "relu")(h)
        h = _pointwise(config.embed_dim, q, p + "mlp2")(h)
        x = tf.keras.layers.Add(name=p + "add2")([x, h])

    x = tf.keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    x = tf.keras.layers.Cropping1D((0, tokens - 1), name="cls_select")(x)
    x = tf.keras.layers.Flatten(name="cls_flat")(x)
    x = QDense(config.num_classes, kernel_quantizer=q.weight, bias_quantizer=q.bias,
               name="head")(x)
    out = tf.keras.layers.Activation("softmax", name="softmax")(x)
    return tf.keras.Model(image, out, name="vitcod_vit")


def attention_layers(model: tf.keras.Model) -> list[ViTCoDAttention]:
    """The model's attention layers in block order."""
    return [layer for layer in model.layers if isinstance(layer, ViTCoDAttention)]


def model_masks(model: tf.keras.Model) -> np.ndarray | None:
    """The (depth, heads, N, N) keep-masks compiled into a model, or None if dense."""
    masks = [layer.mask for layer in attention_layers(model)]
    if all(m is None for m in masks):
        return None
    if any(m is None for m in masks):
        raise ValueError("model has masks on some attention layers only")
    return np.stack(masks)
