"""Seeded, deterministic training and evaluation of the ViT.

Same seed -> same weights on CPU: the global seeds are set and TensorFlow's op
determinism is enabled before any layer is built. Early stopping watches the
validation loss and restores the best weights. Later stages (auto-encoder and
masked fine-tuning) reuse :func:`fit` with their own model and learning rate.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import tensorflow as tf

from .data import Dataset

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 2e-3
    #: AdamW decoupled weight decay; ViTs on small data need it.
    weight_decay: float = 0.05
    #: Linear warm-up epochs, then cosine decay to 0 over the remaining epochs.
    warmup_epochs: int = 5
    patience: int = 30
    seed: int = 0
    #: Random +-1 pixel shifts of the training images (digits are tiny: this is
    #: the difference between ~93% and ~97% test accuracy).
    augment: bool = True

    def __post_init__(self) -> None:
        # fit() with 0 epochs would end in a KeyError on an empty history; say what is wrong instead
        check_training_numbers(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                               weight_decay=self.weight_decay, warmup_epochs=self.warmup_epochs,
                               patience=self.patience)

    def to_dict(self) -> dict:
        return asdict(self)


def check_training_numbers(**values) -> None:
    """Refuse training settings that cannot run: epochs and batch_size integers >= 1, warmup_epochs
    and patience integers >= 0, learning_rate finite > 0, weight_decay finite >= 0.

    Raises:
        vitcod.user_errors.UserError: naming the setting.
    """
    import math

    from ..user_errors import UserError

    minimum = {"epochs": 1, "batch_size": 1, "warmup_epochs": 0, "patience": 0}
    for name, value in values.items():
        if name in minimum:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum[name]:
                raise UserError(f"an integer >= {minimum[name]}", repr(value), name)
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or \
                value < 0 or (name == "learning_rate" and value == 0):
            raise UserError("a finite number " + ("> 0" if name == "learning_rate" else ">= 0"), repr(value), name)


def make_deterministic(seed: int) -> None:
    """Seed Python, numpy and TF and make TF ops deterministic (call before building)."""
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


class EpochProgress(tf.keras.callbacks.Callback):
    """One progress bar over epochs (Keras' own bar is per batch and floods CI logs)."""

    def __init__(self, epochs: int, description: str = "train"):
        super().__init__()
        self.epochs, self.description, self.bar = epochs, description, None

    def on_train_begin(self, logs=None):
        from tqdm import tqdm

        self.bar = tqdm(total=self.epochs, desc=self.description, unit="epoch", leave=True,
                        mininterval=2.0)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items()
                              if k in ("loss", "accuracy", "val_loss", "val_accuracy")})
        self.bar.update(1)

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()


def _shift_images(images: tf.Tensor, seed: int) -> tf.Tensor:
    """Shift each image by a random (dy, dx) in {-1, 0, 1}^2, zero-filled."""
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])
    size = tf.shape(images)[1]
    offsets = tf.random.stateless_uniform((tf.shape(images)[0], 2), seed=[seed, 0],
                                          minval=0, maxval=3, dtype=tf.int32)

    def crop(args):
        image, offset = args
        return tf.slice(image, [offset[0], offset[1], 0], [size, size, -1])

    return tf.map_fn(crop, (padded, offsets), fn_output_signature=images.dtype)


def training_stream(x: np.ndarray, y, config: TrainConfig) -> tf.data.Dataset:
    """Shuffled, batched (optionally augmented) training data, reproducible from the seed.

    ``y`` may be an array or a tuple of arrays (models with several outputs).
    """
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(len(x), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(config.batch_size)
    if config.augment:
        counter = tf.data.Dataset.counter()
        ds = tf.data.Dataset.zip((ds, counter)).map(
            lambda batch, step: ((_shift_images(batch[0], config.seed * 100003 + tf.cast(step, tf.int32)),
                                  batch[1])),
            num_parallel_calls=1, deterministic=True)
    return ds.prefetch(2)


def fit(model: tf.keras.Model, data: Dataset, config: TrainConfig, description: str = "train",
        targets=None, val_targets=None, loss=None, loss_weights=None) -> dict:
    """Train ``model`` with AdamW, warm-up + cosine decay and early stopping.

    Returns the history and timing.

    ``targets``/``val_targets``/``loss``/``loss_weights`` default to the
    single-output classifier; the auto-encoder stage passes its own.
    """
    targets = data.y_train if targets is None else targets
    val_targets = data.y_val if val_targets is None else val_targets
    steps = int(np.ceil(len(data.x_train) / config.batch_size))
    warmup = min(config.warmup_epochs, config.epochs - 1) * steps
    schedule = tf.keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else config.learning_rate, decay_steps=config.epochs * steps - warmup,
        warmup_target=config.learning_rate if warmup else None, warmup_steps=warmup)
    optimizer = tf.keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
    model.compile(optimizer=optimizer,
                  loss=loss or "sparse_categorical_crossentropy",
                  loss_weights=loss_weights, metrics=None if loss else ["accuracy"])
    callbacks = [
        tf.keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                         restore_best_weights=True),
        EpochProgress(config.epochs, description),
    ]
    start = time.perf_counter()
    history = model.fit(training_stream(data.x_train, targets, config), epochs=config.epochs,
                        validation_data=(data.x_val, val_targets), callbacks=callbacks,
                        verbose=0)
    seconds = time.perf_counter() - start
    epochs_run = len(history.history["loss"])
    log.info("%s: %d epochs in %.1f s", description, epochs_run, seconds)
    return {"epochs_run": epochs_run, "train_seconds": seconds,
            "history": {k: [float(v) for v in vals] for k, vals in history.history.items()}}


def accuracy(model: tf.keras.Model, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    """Top-1 accuracy of a classifier's first output."""
    probs = model.predict(x, batch_size=batch_size, verbose=0)
    if isinstance(probs, (list, tuple)):
        probs = probs[0]
    return float(np.mean(np.argmax(probs, axis=-1) == y))
