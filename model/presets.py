"""Named runs of the whole flow: a dataset, a ViT geometry and the epochs of each training stage.

A preset is not a second pipeline: ``python -m vitcod demo --preset NAME`` runs the same stages
as the plain demo, only with the preset's values as the defaults of its options (any option given
on the command line still wins). ``make demo`` is the ``digits`` preset (the options' own
defaults), ``make demo-197`` the ``mnist197`` one, ``make demo-small`` the ``digits-small`` one.

Standard library only at import (the command line reads presets before TensorFlow is imported).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..user_errors import UserError
from .config import ViTConfig
from .run_layout import DEFAULT_SPARSITIES, DEFAULT_SPARSITY


class PresetError(UserError):
    """An unknown preset name: ``a preset among [...], got <name> (--preset)``."""


@dataclass(frozen=True)
class Preset:
    """Everything a preset decides; :meth:`cli_defaults` maps it onto the demo's options."""

    name: str
    #: ``vitcod.model.data.load_dataset`` name: 'digits' or 'mnist'.
    dataset: str
    config: ViTConfig
    #: ``build/<run_name>`` is the run folder of ``make demo-<...>``.
    run_name: str
    #: Maximum epochs of the dense training (early stopping on the validation loss).
    epochs: int = 100
    ae_epochs: int = 60
    finetune_epochs: int = 30
    sparsities: tuple[float, ...] = DEFAULT_SPARSITIES
    main_sparsity: float = DEFAULT_SPARSITY
    #: Why these values (measured); shown by ``--help`` and the README.
    rationale: str = ""

    def cli_defaults(self) -> dict[str, Any]:
        """The demo options this preset sets (argparse ``dest`` -> value); ``config`` is an object,
        read by the command line in place of a ``--config`` file."""
        return {"dataset": self.dataset, "preset_config": self.config, "run_dir": Path("build") / self.run_name,
                "epochs": self.epochs,
                "ae_epochs": self.ae_epochs, "finetune_epochs": self.finetune_epochs,
                "sparsity": list(self.sparsities), "main_sparsity": self.main_sparsity}


#: The digits demo (``make demo``): the options' own defaults, 8x8 digits, 65 tokens.
DIGITS = Preset(name="digits", dataset="digits", config=ViTConfig(), run_name="demo",
                rationale="8x8 digits, patch 1 + CLS = 65 tokens (the README's 'Defaults and why')")

#: 197 tokens (DeiT's N) on 28x28 MNIST: patch 2 -> 14x14 patches + CLS. Sizes and epochs were
#: chosen by short measured trials (README, "197 tokens on MNIST").
MNIST197 = Preset(
    name="mnist197", dataset="mnist",
    config=ViTConfig(image_size=28, channels=1, patch_size=2, patch_overlap=1, embed_dim=32, depth=2,
                     num_heads=4, mlp_ratio=2.0),
    run_name="mnist197", epochs=40, ae_epochs=20, finetune_epochs=15, sparsities=(0.90, 0.95),
    rationale="28x28 MNIST, patch 2 + CLS = 197 tokens; size and epochs measured (README)")

#: The digits demo at half the width (embed 16: 4 heads of 4, MLP 32), everything else as the demo:
#: the size whose io_stream design fits PYNQ-Z2 under the 80% cap (modelled; the demo's 32-wide
#: token FIFOs alone take ~26.6k of the 42.6k LUTs it allows). ``make demo-small``.
DIGITS_SMALL = Preset(name="digits-small", dataset="digits", config=ViTConfig(embed_dim=16), run_name="demo-small",
                      rationale="8x8 digits, 65 tokens, embed 16: the demo sized for PYNQ-Z2 (README)")

PRESETS: dict[str, Preset] = {p.name: p for p in (DIGITS, MNIST197, DIGITS_SMALL)}


def get_preset(name: str) -> Preset:
    """The preset called ``name``.

    Raises:
        PresetError: no such preset (the message lists the known ones).
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise PresetError(f"a preset among {sorted(PRESETS)}", repr(name), "--preset") from None
