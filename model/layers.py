"""Our own Keras layers: the parts of the ViT that hls4ml cannot convert by itself.

hls4ml converts every standard layer of the ViT (QConv1D/QConv2D projections,
LayerNormalization, Add, quantized ReLU, the head and its softmax); it has no
attention from QKeras at all (``Unsupported layer type: MultiHeadAttention``).
So the model is built from parts, and the few parts below are ours. Each one has
a matching hls4ml layer, template and HLS engine in ``vitcod.hls``:

* :class:`ClassTokenPosition` - prepend the learnable CLS token, add the position
  embedding (constant weights; -> the embed engine).
* :class:`QKEncoder` / :class:`QKDecoder` - the ViTCoD Q/K auto-encoder, a linear
  map across the HEAD axis (h -> h_c -> h). The compressed tensor between them is
  explicit in the graph because it is what the hardware stores and moves.
* :class:`ViTCoDAttention` - multi-head scaled dot-product attention of (q, k, v)
  with an optional FIXED per-head keep-mask (-> the dense + sparse engines).

The mask is stored in the layer's config (bit-packed, base64) so a saved model
reloads with it and the hls4ml parser reads it from the model JSON.
"""

from __future__ import annotations

import base64
import math

import numpy as np
import tensorflow as tf
from qkeras import get_quantizer

#: Score given to pruned entries before the softmax: exp() of it is exactly 0 in float32.
PRUNED_SCORE = -1e9


def _quantizer(spec: str | None):
    return get_quantizer(spec) if spec else None


def encode_mask(mask: np.ndarray) -> dict:
    """Bit-pack a bool keep-mask into a JSON-friendly dict."""
    mask = np.asarray(mask, dtype=bool)
    return {"shape": list(mask.shape),
            "bits": base64.b64encode(np.packbits(mask.ravel()).tobytes()).decode("ascii")}


def decode_mask(data: dict) -> np.ndarray:
    shape = tuple(int(s) for s in data["shape"])
    packed = np.frombuffer(base64.b64decode(data["bits"]), dtype=np.uint8)
    return np.unpackbits(packed, count=int(np.prod(shape))).astype(bool).reshape(shape)


class ClassTokenPosition(tf.keras.layers.Layer):
    """(batch, P, E) patch embeddings -> (batch, P + 1, E): [CLS; patches] + position."""

    def __init__(self, quantizer: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.quantizer = quantizer
        self._quantize = _quantizer(quantizer)

    def build(self, input_shape):
        tokens, dim = int(input_shape[1]) + 1, int(input_shape[2])
        def init():  # one initializer per weight: Keras warns about reusing one
            return tf.keras.initializers.TruncatedNormal(stddev=0.02)

        self.cls_token = self.add_weight(name="cls_token", shape=(1, 1, dim), initializer=init())
        self.position = self.add_weight(name="position", shape=(1, tokens, dim),
                                        initializer=init())
        super().build(input_shape)

    def quantized_weights(self):
        cls, pos = self.cls_token, self.position
        if self._quantize is not None:
            cls, pos = self._quantize(cls), self._quantize(pos)
        return cls, pos

    def call(self, patches):
        cls, pos = self.quantized_weights()
        batch = tf.shape(patches)[0]
        cls = tf.tile(tf.cast(cls, patches.dtype), [batch, 1, 1])
        return tf.concat([cls, patches], axis=1) + pos

    def get_config(self):
        return {**super().get_config(), "quantizer": self.quantizer}


class HeadMix(tf.keras.layers.Layer):
    """Linear map across the head axis: (batch, N, h_in*D) -> (batch, N, h_out*D).

    ``out[n, j, c] = sum_i x[n, i, c] * kernel[i, j] + bias[j]`` for every token n and
    channel c inside a head. Base of the ViTCoD Q/K encoder and decoder.
    """

    def __init__(self, in_heads: int, out_heads: int, head_dim: int,
                 kernel_quantizer: str | None = None, bias_quantizer: str | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.in_heads, self.out_heads, self.head_dim = int(in_heads), int(out_heads), int(head_dim)
        self.kernel_quantizer = kernel_quantizer
        self.bias_quantizer = bias_quantizer
        self._kq, self._bq = _quantizer(kernel_quantizer), _quantizer(bias_quantizer)

    def build(self, input_shape):
        expected = self.in_heads * self.head_dim
        if int(input_shape[-1]) != expected:
            raise ValueError(f"{self.name}: expected {self.in_heads} heads x {self.head_dim} "
                             f"= {expected} channels, got {int(input_shape[-1])}")
        self.kernel = self.add_weight(name="kernel", shape=(self.in_heads, self.out_heads),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.out_heads,), initializer="zeros")
        super().build(input_shape)

    def quantized_weights(self):
        kernel = self._kq(self.kernel) if self._kq is not None else self.kernel
        bias = self._bq(self.bias) if self._bq is not None else self.bias
        return kernel, bias

    def call(self, x):
        kernel, bias = self.quantized_weights()
        tokens = tf.shape(x)[1]
        heads = tf.reshape(x, [-1, tokens, self.in_heads, self.head_dim])
        mixed = tf.einsum("bnid,io->bnod", heads, kernel) + bias[None, None, :, None]
        return tf.reshape(mixed, [-1, tokens, self.out_heads * self.head_dim])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.out_heads * self.head_dim,)

    def get_config(self):
        return {**super().get_config(), "in_heads": self.in_heads, "out_heads": self.out_heads,
                "head_dim": self.head_dim, "kernel_quantizer": self.kernel_quantizer,
                "bias_quantizer": self.bias_quantizer}


class QKEncoder(HeadMix):
    """Q/K encoder: h heads -> h_c compressed heads (what the hardware buffers)."""


class QKDecoder(HeadMix):
    """Q/K decoder: h_c compressed heads -> h heads, used by attention as Q^ / K^."""


class ViTCoDAttention(tf.keras.layers.Layer):
    """Multi-head scaled dot-product attention of [q, k, v] with an optional fixed mask.

    Inputs are the projected (and, with the auto-encoder, decoded) tensors of shape
    (batch, N, E), E = heads * head_dim, channel = head * head_dim + c. The output
    (batch, N, E) has the same layout; the output projection is a separate layer.

    ``mask`` is a (heads, N, N) bool keep-mask (True = keep), fixed and not
    trainable. Pruned scores get :data:`PRUNED_SCORE` before the softmax, so their
    probability is exactly 0.
    """

    def __init__(self, num_heads: int, mask=None, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        if isinstance(mask, dict):
            mask = decode_mask(mask)
        self.mask = None if mask is None else np.asarray(mask, dtype=bool)
        if self.mask is not None and self.mask.ndim != 3:
            raise ValueError(f"{self.name}: mask must be (heads, N, N), got {self.mask.shape}")

    def build(self, input_shape):
        q_shape = input_shape[0]
        tokens, dim = int(q_shape[1]), int(q_shape[2])
        if dim % self.num_heads:
            raise ValueError(f"{self.name}: {self.num_heads} heads must divide {dim} channels")
        for name, shape in zip("kv", input_shape[1:]):
            if tuple(shape[1:]) != (tokens, dim):
                raise ValueError(f"{self.name}: {name} shape {tuple(shape[1:])} != q shape "
                                 f"{(tokens, dim)}")
        if self.mask is not None and self.mask.shape != (self.num_heads, tokens, tokens):
            raise ValueError(f"{self.name}: mask shape {self.mask.shape} does not match "
                             f"(heads, N, N) = {(self.num_heads, tokens, tokens)}")
        if self.mask is not None and not self.mask.any(axis=-1).all():
            raise ValueError(f"{self.name}: every query row must keep at least one key")
        self.head_dim = dim // self.num_heads
        super().build(input_shape)

    def _split_heads(self, x):
        tokens = tf.shape(x)[1]
        x = tf.reshape(x, [-1, tokens, self.num_heads, self.head_dim])
        return tf.transpose(x, [0, 2, 1, 3])  # (batch, heads, N, D)

    def attention_probabilities(self, q, k):
        """Softmax probabilities (batch, heads, N, N); pruned entries are exactly 0."""
        q, k = self._split_heads(q), self._split_heads(k)
        scores = tf.matmul(q, k, transpose_b=True) / math.sqrt(self.head_dim)
        if self.mask is not None:
            scores = tf.where(tf.constant(self.mask)[None], scores, PRUNED_SCORE)
        return tf.nn.softmax(scores, axis=-1)

    def call(self, inputs):
        q, k, v = inputs
        probs = self.attention_probabilities(q, k)
        out = tf.matmul(probs, self._split_heads(v))  # (batch, heads, N, D)
        out = tf.transpose(out, [0, 2, 1, 3])
        return tf.reshape(out, [-1, tf.shape(out)[1], self.num_heads * self.head_dim])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        mask = None if self.mask is None else encode_mask(self.mask)
        return {**super().get_config(), "num_heads": self.num_heads, "mask": mask}


CUSTOM_LAYERS = {
    "ClassTokenPosition": ClassTokenPosition,
    "QKEncoder": QKEncoder,
    "QKDecoder": QKDecoder,
    "ViTCoDAttention": ViTCoDAttention,
}
