import json

import pytest

from vitcod.model.config import ConfigError, ViTConfig


def test_defaults_are_the_digits_demo():
    c = ViTConfig()
    assert (c.num_tokens, c.embed_dim, c.num_heads, c.head_dim, c.depth) == (65, 32, 4, 8, 2)
    assert c.mlp_dim == 64 and c.compressed_heads == 2 and c.weight_bits == 8
    assert c.embed_kernel == 3  # 1-pixel patches see their 3x3 neighbourhood


@pytest.mark.parametrize("fields, named", [
    ({"num_heads": 5}, "num_heads"),
    ({"patch_size": 3}, "patch_size"),
    ({"embed_dim": 0}, "embed_dim"),
    ({"depth": 1.5}, "depth"),
    ({"mlp_ratio": -1}, "mlp_ratio"),
    ({"num_classes": 1}, "num_classes"),
    ({"ae_heads": 5}, "ae_heads"),
    ({"weight_bits": 4, "weight_integer_bits": 4}, "weight_integer_bits"),
    ({"channels": True}, "channels"),
    ({"patch_overlap": -1}, "patch_overlap"),
])
def test_invalid_values_name_the_field(fields, named):
    with pytest.raises(ConfigError, match=named):
        ViTConfig(**fields)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_save_load_round_trip(tmp_path, suffix):
    c = ViTConfig(embed_dim=48, num_heads=6, depth=3, ae_heads=2, mlp_ratio=1.5)
    path = c.save(tmp_path / f"config{suffix}")
    assert ViTConfig.load(path) == c


def test_unknown_field_and_bad_json_rejected(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"embed_dim": 32, "heads": 4}))
    with pytest.raises(ConfigError, match="heads"):
        ViTConfig.load(bad)
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match=r"a ViT config in valid JSON, got .* at line 1 column 2 \(.*c.json\)"):
        ViTConfig.load(bad)
    bad.write_bytes(b'{"embed_dim": "\xff"}')
    with pytest.raises(ConfigError, match=r"UTF-8.*0xff at byte 15.*c.json"):
        ViTConfig.load(bad)
    bad.write_text(json.dumps({"embed_dim": 0}))
    with pytest.raises(ConfigError) as info:
        ViTConfig.load(bad)
    assert str(info.value) == f"an integer >= 1, got 0 (embed_dim in {bad})"
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("embed_dim: [1,\n")
    with pytest.raises(ConfigError, match=r"valid YAML.*line.*c.yaml"):
        ViTConfig.load(yaml_file)
    with pytest.raises(FileNotFoundError, match="no such file"):
        ViTConfig.load(tmp_path / "missing.json")
