"""The ViTCoD Q/K auto-encoder stage (ViTCoD step 1) and weight transfer between stages.

Starting from the trained dense ViT, every block gets an encoder/decoder pair for Q
and another for K (:class:`~vitcod.model.layers.QKEncoder`/``QKDecoder``, linear
maps across the head axis h -> h_c -> h). They are initialised by PCA across the
head axis on the training set (the optimal linear auto-encoder, so fine-tuning
starts close to the dense model instead of from noise), then the whole network is
fine-tuned jointly with

    loss = task loss + weight * sum over blocks (||Q^ - Q||_2 + ||K^ - K||_2)

The reconstruction term lives only in a *training* wrapper model
(:func:`training_model`); the inference model that is saved and converted by
hls4ml contains nothing but the real layers.
"""

from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf

from .config import ViTConfig
from .layers import HeadMix, QKDecoder, QKEncoder

log = logging.getLogger(__name__)

DEFAULT_RECONSTRUCTION_WEIGHT = 1e-4


def transfer_weights(source: tf.keras.Model, target: tf.keras.Model) -> list[str]:
    """Copy weights layer by layer where names match; returns the names copied."""
    copied = []
    for layer in target.layers:
        if not layer.weights:
            continue
        try:
            src = source.get_layer(layer.name)
        except ValueError:
            continue
        layer.set_weights(src.get_weights())
        copied.append(layer.name)
    return copied


def _encoder_pairs(model: tf.keras.Model):
    """(projection output, decoder output) tensors for every Q and K auto-encoder."""
    pairs = []
    for layer in model.layers:
        if isinstance(layer, QKDecoder):
            stem = layer.name[: -len("_decoder")]  # block{i}_q or block{i}_k
            pairs.append((stem, model.get_layer(stem).output, layer.output))
    if not pairs:
        raise ValueError("model has no Q/K auto-encoder (build it with autoencoder=True)")
    return pairs


class QKReconstruction(tf.keras.layers.Layer):
    """Training-only: per-sample sum over pairs of ||decoded - original||_2."""

    def call(self, tensors):
        total = 0.0
        for original, decoded in zip(tensors[0::2], tensors[1::2]):
            diff = tf.reshape(decoded - original, [tf.shape(original)[0], -1])
            total += tf.sqrt(tf.reduce_sum(tf.square(diff), axis=-1) + 1e-12)
        return total


def training_model(model: tf.keras.Model) -> tf.keras.Model:
    """Wrap an auto-encoder model so it also outputs the reconstruction term.

    Shares every layer (and so every weight) with ``model``; train it with
    :func:`reconstruction_loss_settings`, then keep using ``model``.
    """
    flat = []
    for _, original, decoded in _encoder_pairs(model):
        flat += [original, decoded]
    recon = QKReconstruction(name="qk_reconstruction")(flat)
    return tf.keras.Model(model.inputs, [model.output, recon], name=model.name + "_train")


def reconstruction_loss_settings(weight: float = DEFAULT_RECONSTRUCTION_WEIGHT):
    """(losses, loss_weights) for :func:`training_model`: CE + weight * reconstruction."""
    losses = ["sparse_categorical_crossentropy", lambda _, recon: recon]
    return losses, [1.0, float(weight)]


def pca_initialise(model: tf.keras.Model, images: np.ndarray, batch_size: int = 256) -> None:
    """Initialise every encoder/decoder pair by PCA across the head axis.

    For a pair compressing h heads to h_c, the samples are all (token, channel)
    vectors of h head values of the projection output; the top h_c principal
    directions U (h, h_c) and the mean mu give encoder z = (x - mu) U and decoder
    x^ = z U^T + mu: the best rank-h_c linear reconstruction.
    """
    pairs = _encoder_pairs(model)
    probe = tf.keras.Model(model.inputs, [orig for _, orig, _ in pairs])
    outputs = probe.predict(images, batch_size=batch_size, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    for (stem, _, _), values in zip(pairs, outputs):
        encoder: HeadMix = model.get_layer(stem + "_encoder")
        decoder: HeadMix = model.get_layer(stem + "_decoder")
        h, hc, d = encoder.in_heads, encoder.out_heads, encoder.head_dim
        samples = values.reshape(-1, h, d).transpose(0, 2, 1).reshape(-1, h).astype(np.float64)
        mean = samples.mean(axis=0)
        cov = np.cov(samples - mean, rowvar=False)
        eigvals, eigvecs = np.linalg.eigh(cov)
        basis = eigvecs[:, np.argsort(eigvals)[::-1][:hc]]  # (h, hc)
        encoder.set_weights([basis.astype(np.float32), (-mean @ basis).astype(np.float32)])
        decoder.set_weights([basis.T.astype(np.float32), mean.astype(np.float32)])
        kept = eigvals[np.argsort(eigvals)[::-1][:hc]].sum() / max(eigvals.sum(), 1e-12)
        log.info("%s: PCA %d->%d heads keeps %.1f%% of the variance", stem, h, hc, 100 * kept)


def qk_storage_bytes(config: ViTConfig, autoencoder: bool, bits: int = 16) -> int:
    """Bytes of Q and K one image needs buffered (all blocks), with or without the AE.

    With the auto-encoder the hardware holds the compressed (N, h_c * D) tensors;
    without it the full (N, h * D) ones. Same element type either way.
    """
    heads = config.compressed_heads if autoencoder else config.num_heads
    per_tensor = config.num_tokens * heads * config.head_dim * bits // 8
    return 2 * config.depth * per_tensor


def compressed_channel_ratio(model: tf.keras.Model) -> float:
    """Channels the encoders emit / channels the projections emit, measured on the graph."""
    before = after = 0
    for layer in model.layers:
        if isinstance(layer, QKEncoder):
            before += int(layer.input.shape[-1])
            after += int(layer.output.shape[-1])
    if before == 0:
        raise ValueError("model has no Q/K encoders")
    return after / before
