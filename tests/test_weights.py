"""Every shipped weights file: loads, matches its manifest, beats bicubic, has measured metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidsr import load_model
from vidsr.evaluation import make_pair, score_pair
from vidsr.registry import count_params, parse_name
from vidsr.train.recipe import load_recipe
from vidsr.weights import WEIGHTS_DIR, manifest, read_weights, sha256_file

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = manifest()


def _synthetic(seed: int, size: int = 96) -> np.ndarray:
    """A smooth colour image with sharp edges: gradients, disks, bars and a sine texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    img = np.stack([40 + 150 * (xx * rng.uniform(0.3, 1) + yy * rng.uniform(0.3, 1)) / (2 * size)
                    for _ in range(3)], axis=2)
    texture = np.sin(xx / rng.uniform(2.5, 5)) * np.cos(yy / rng.uniform(3, 7))
    img += 25 * texture[..., None]
    for _ in range(6):
        cy, cx, r = rng.uniform(0, size, 2).tolist() + [rng.uniform(5, 20)]
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
    for _ in range(3):
        y0, x0 = rng.integers(0, size - 20, 2)
        img[y0:y0 + rng.integers(2, 6), x0:x0 + 20] = rng.uniform(0, 255, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_manifest_files_are_all_listed() -> None:
    listed = {e.file for e in ENTRIES.values()}
    on_disk = {p.name for p in WEIGHTS_DIR.glob("*.safetensors")}
    assert on_disk == listed


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_entry_matches_its_file(name: str) -> None:
    entry = ENTRIES[name]
    assert parse_name(name).name == name
    assert entry.path.is_file()
    assert sha256_file(entry.path) == entry.sha256
    spec, _tensors, meta = read_weights(entry.path)
    assert spec.name == name
    model = load_model(name, pretrained=True)
    assert count_params(model) == entry.params
    recipe = load_recipe(ROOT / entry.recipe)
    assert recipe.model == name
    for dataset in ("Set5", "Set14"):
        m = entry.metrics[dataset]
        assert 20 < m["psnr"] < 50 and 0.5 < m["ssim"] <= 1.0
    assert entry.command.startswith("vidsr eval --model ") and "Set5" in entry.command
    assert '"model"' in meta["recipe"]


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_beats_bicubic_on_synthetic_images(name: str) -> None:
    model = load_model(name, pretrained=True)
    scale = model.spec.scale
    bicubic = load_model(f"bicubic-x{scale}")
    ours, base = [], []
    for seed in range(4):
        pair = make_pair(_synthetic(seed), scale)
        ours.append(score_pair(model, pair, scale)[0])
        base.append(score_pair(bicubic, pair, scale)[0])
    assert np.mean(ours) > np.mean(base) + 0.1, (np.mean(ours), np.mean(base))
    # The registry's own numbers must also beat bicubic on the real benchmarks.
    assert ENTRIES[name].metrics["Set5"]["psnr"] > {2: 33.66, 3: 30.39, 4: 28.42}[scale]


def test_saved_weights_get_the_usual_file_mode(tmp_path: Path) -> None:
    import os

    from vidsr.weights import save_weights

    model = load_model("esr-max-k3c2-x2", pretrained=False)
    mask = os.umask(0o022)
    try:
        path = save_weights(model, model.spec, tmp_path / "w.safetensors")
    finally:
        os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o644  # safetensors alone gives 0600


def test_the_same_weights_save_to_the_same_bytes(tmp_path: Path) -> None:
    # safetensors wrote its header in hash-map order: a new sha256 on every save
    from safetensors import safe_open

    from vidsr.weights import save_weights, sha256_file

    model = load_model("esr-tm-k3c2-x2", pretrained=False)
    meta = {"recipe": {"steps": 3, "lr": 0.1}, "extra": {"step": "3", "val": {"Set5": 1.0}}}
    paths = [save_weights(model, model.spec, tmp_path / f"w{i}.safetensors", recipe=meta["recipe"],
                          extra=meta["extra"]) for i in range(4)]
    assert len({sha256_file(p) for p in paths}) == 1
    with safe_open(str(paths[0]), framework="pt") as f:  # still a valid file, metadata intact
        assert f.metadata()["step"] == "3" and set(f.keys()) == set(model.state_dict())


def test_an_exported_model_given_as_weights_is_named_as_such(tmp_path: Path) -> None:
    # an .onnx or .pt2 from vidsr export was "not a readable safetensors file: Error while
    # deserializing header: header too large"
    from vidsr.errors import WeightsError

    for name in ("m.onnx", "m.PT2"):
        (tmp_path / name).write_bytes(b"\x08\x07\x12\x07pytorch" + bytes(64))
        with pytest.raises(WeightsError, match="is an exported model"):
            read_weights(tmp_path / name)
    # and a training checkpoint, as --model run/last.ckpt
    (tmp_path / "last.ckpt").write_bytes(b"PK\x03\x04" + bytes(64))
    with pytest.raises(WeightsError, match="is a training checkpoint .* best.safetensors"):
        read_weights(tmp_path / "last.ckpt")
    (tmp_path / "m.bin").write_bytes(bytes(64))
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        read_weights(tmp_path / "m.bin")
