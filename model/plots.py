"""PNG plots for the report: masks before/after polarization, accuracy vs sparsity."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display in CI or on a build server
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_masks(artifact, layer: int, path: Path) -> Path:
    """One row per head: the keep-mask as trained, and with its keys permuted
    (global tokens first: the dense block on the left, the sparse rest on the right)."""
    heads = artifact.num_heads
    fig, axes = plt.subplots(2, heads, figsize=(2.6 * heads, 5.4), squeeze=False)
    for h in range(heads):
        pol = artifact.polarization(layer, h)
        mask = artifact.mask[layer, h]
        axes[0, h].imshow(mask, cmap="Greys", interpolation="nearest")
        axes[0, h].set_title(f"head {h}: {100 * (1 - mask.mean()):.1f}% pruned", fontsize=8)
        axes[1, h].imshow(mask[:, pol.permutation], cmap="Greys", interpolation="nearest")
        if pol.num_global:
            axes[1, h].axvline(pol.num_global - 0.5, color="tab:red", linewidth=1)
        axes[1, h].set_title(f"polarized: G={pol.num_global}, "
                             f"dense {100 * pol.dense_ratio:.0f}%", fontsize=8)
        for ax in axes[:, h]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("before (query x key)")
    axes[1, 0].set_ylabel("after polarization")
    fig.suptitle(f"layer {layer} attention masks (black = kept)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_accuracy_vs_sparsity(rows: list[dict], path: Path) -> Path:
    """Test accuracy (quantized and float twin) of the report rows against sparsity."""
    points = sorted((r["achieved_sparsity"], r["quantized_test_accuracy"], r["float_test_accuracy"])
                    for r in rows if r["model"] != "dense")
    dense = next(r for r in rows if r["model"] == "dense")
    x = np.array([p[0] for p in points])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(x, [100 * p[1] for p in points], "o-", label="+AE(+mask), quantized")
    ax.plot(x, [100 * p[2] for p in points], "s--", label="+AE(+mask), float twin")
    ax.axhline(100 * dense["quantized_test_accuracy"], color="grey", linestyle=":",
               label="dense, quantized")
    ax.set_xlabel("attention sparsity")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
