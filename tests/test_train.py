"""Training: recipes, the patch pipeline, the loop, resuming, shipping and the CLI."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vidsr import load_model
from vidsr.cli.main import main
from vidsr.errors import Cancelled, DataError, InputError, ModelNotFoundError, WeightsError
from vidsr.evaluation import evaluate, make_pair, read_rgb
from vidsr.imresize import imresize
from vidsr.models import SelfEnsemble
from vidsr.registry import parse_name
from vidsr.train.data import PatchSampler, build_planes, degrade, pack_planes
from vidsr.train.loop import (
    WeightAverage,
    _loss,
    _run_lock,
    deploy_form,
    load_checkpoint,
    plane_errors,
    train,
)
from vidsr.train.recipe import Recipe, load_recipe, recipe_from_dict
from vidsr.train.whiten import (
    apply_whitening,
    first_filter,
    patch_moment,
    plain,
    trained_weight,
    whitening_basis,
)
from vidsr.weights import sha256_file

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def _images(folder: Path, count: int = 3, size: tuple[int, int] = (50, 62), seed: int = 0) -> Path:
    """Small smooth colour images with edges, written as PNG."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    for n in range(count):
        img = np.zeros((h, w, 3), np.float64)
        for c in range(3):
            wave = np.sin(xx / rng.uniform(4, 9) + c) * np.cos(yy / rng.uniform(5, 11))
            img[..., c] = 60 + 80 * wave
        for _ in range(4):
            cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(4, 14)
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
        cv2.imwrite(str(folder / f"img{n}.png"), np.clip(img, 0, 255).astype(np.uint8)[..., ::-1])
    return folder


# --- recipes ---------------------------------------------------------------------------------

def test_recipe_toml_roundtrip_and_types(tmp_path: Path) -> None:
    f = tmp_path / "r.toml"
    f.write_text('model = "esr-max-x2"\nsteps = 10\nlr = 1\nschedule = "multistep"\n'
                 'milestones = [3, 6]\nbetas = [0.8, 0.99]\naugment = false\n')
    r = load_recipe(f)
    assert r == Recipe(model="esr-max-x2", steps=10, lr=1.0, schedule="multistep",
                       milestones=(3, 6), betas=(0.8, 0.99), augment=False)
    assert recipe_from_dict(r.as_dict()) == r
    with pytest.raises(AttributeError):
        r.steps = 3  # frozen


@pytest.mark.parametrize("text, message", [
    ("stepz = 10\n", "unknown key"),
    ("steps = 1.5\n", "integer"),
    ("augment = 1\n", "true or false"),
    ("schedule = 'linear'\n", "schedule"),
    ("steps = 0\n", "positive"),
    ("margin = 16\n", "margin"),
    ("margin_weight = 0.5\n", "needs a margin"),
    ("margin = 2\nmargin_weight = 1.0\n", "margin_weight"),
    ("steps = [\n", "not valid TOML"),
    ("key_gain = 0\n", "key_gain"),
    ('init = "weights"\n', "go together"),
    ('init_weights = "ecbsr-x2"\n', "go together"),
    ('init = "weights"\ninit_weights = "ecbsr-x2"\ninit_sha256 = "ab"\n', "hex"),
])
def test_recipe_errors(tmp_path: Path, text: str, message: str) -> None:
    _recipe_error(tmp_path, text, message)


@pytest.mark.parametrize("text, message", [
    ("lr = inf\n", "finite"),   # trained to NaN weights, exit 0, and shipped them
    ("lr_min = nan\n", "finite"),
    ('schedule = "multistep"\nmilestones = ["a"]\n', "list of integers"),
    ("rescale = ['a']\n", "list of numbers"),
    ("betas = [2.0, 0.999]\n", "betas"),
    ("weight_decay = -1.0\n", "weight_decay"),
    ("warmup = -5\n", "warmup"),
    ("lr = 1e-3\nlr_min = 1e-2\n", "lr_min"),
    ("gamma = -1.0\n", "gamma"),
    ("milestones = [10]\n", "multistep"),
    ('model = "ecbsr-m1c4-x2"\ninit = "bicubic"\n', "K >= 5"),
    ('model = "esr-max-k3c2-x2"\ninit = "bicubic"\n', "K >= 5"),
])
def test_recipe_values_out_of_range(tmp_path: Path, text: str, message: str) -> None:
    _recipe_error(tmp_path, text, message)


def _recipe_error(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "r.toml"
    f.write_text(text)
    with pytest.raises(InputError, match=message):
        load_recipe(f)


def test_recipe_unknown_model() -> None:
    with pytest.raises(ModelNotFoundError):
        Recipe(model="esr-foo-x2")


def test_lr_schedules() -> None:
    cos = Recipe(steps=100, lr=1e-3, lr_min=0.0, warmup=10)
    assert cos.lr_at(0) == pytest.approx(1e-4)
    assert cos.lr_at(10) == pytest.approx(1e-3)
    assert cos.lr_at(55) == pytest.approx(5e-4)
    assert cos.lr_at(100) == pytest.approx(0.0, abs=1e-12)
    ms = Recipe(steps=100, lr=1.0, schedule="multistep", milestones=(20, 50), gamma=0.1)
    assert [ms.lr_at(s) for s in (0, 19, 20, 50)] == pytest.approx([1.0, 1.0, 0.1, 0.01])


def test_cosine_restarts() -> None:
    base = Recipe(steps=100, lr=1e-3, lr_min=1e-5, warmup=5)
    longer = base.replace(steps=160, restarts=(100,), restart_lr=2e-4)
    assert [longer.lr_at(s) for s in range(100)] == [base.lr_at(s) for s in range(100)]
    assert longer.lr_at(100) == pytest.approx(2e-4)
    assert longer.lr_at(130) == pytest.approx(1e-5 + 0.5 * (2e-4 - 1e-5))
    assert longer.lr_at(160) == pytest.approx(1e-5)
    assert base.replace(steps=160, restarts=(100,)).lr_at(100) == pytest.approx(1e-3)
    with pytest.raises(InputError, match="restarts"):
        base.replace(restarts=(100,))            # a restart at the last step
    with pytest.raises(InputError, match="restarts"):
        base.replace(restarts=(50, 40))
    with pytest.raises(InputError, match="cosine"):
        Recipe(steps=100, schedule="constant", restarts=(50,))


def test_extends_accepts_only_the_same_run_made_longer() -> None:
    base = Recipe(model="esr-max-k3c2-x2", steps=100, lr=1e-3)
    assert base.replace(steps=150, restarts=(100,), val_every=7).extends(base, 100) is None
    assert "batch" in base.replace(steps=150, batch=8).extends(base, 50)
    # a longer cosine without a restart changes the rates already used
    assert "learning rate" in base.replace(steps=150).extends(base, 50)
    assert base.replace(steps=150).extends(base, 0) is None
    assert "steps" in base.replace(steps=40).extends(base, 50)
    # a loss switch may be added for the steps still to come, not for those already taken
    tuned = base.replace(steps=150, restarts=(100,), tune_loss="mse", tune_from=120)
    assert tuned.extends(base, 100) is None
    assert "loss at step 60" in base.replace(tune_loss="mse", tune_from=60).extends(base, 80)


@pytest.mark.parametrize("kind", ["l1", "mse", "charbonnier"])
def test_margin_weight_weighs_the_patch_border_ring(kind: str) -> None:
    gen = torch.Generator().manual_seed(0)
    pred, target = (torch.rand(3, 1, 12, 12, generator=gen, dtype=torch.float64) for _ in "ab")
    err = {"l1": (pred - target).abs(), "mse": (pred - target) ** 2,
           "charbonnier": torch.sqrt((pred - target) ** 2 + 1e-6)}[kind]
    inside, whole = err[..., 3:-3, 3:-3], err
    ring_sum, ring_n = whole.sum() - inside.sum(), 3 * (144 - 36)
    # 0.25 per ring pixel, 1 per inside pixel: a weighted mean over all pixels
    want = (inside.sum() + 0.25 * ring_sum) / (inside.numel() + 0.25 * ring_n)
    assert torch.allclose(_loss(pred, target, kind, 3, 0.25), want)
    # weight 0 is the plain margin (the inside only), unchanged from before the field existed
    assert torch.equal(_loss(pred, target, kind, 3), _loss(pred, target, kind, 3, 0.0))
    assert torch.allclose(_loss(pred, target, kind, 3), inside.mean())
    assert torch.allclose(_loss(pred, target, kind, 3, 1e-12), inside.mean())


def test_logmse_is_the_mean_log_of_each_patch_mse() -> None:
    gen = torch.Generator().manual_seed(1)
    pred, target = (torch.rand(4, 1, 12, 12, generator=gen, dtype=torch.float64) for _ in "ab")
    pred[0] = target[0] + 1e-3          # one nearly exact patch
    err = (pred - target) ** 2
    per_patch = err.mean(dim=(1, 2, 3))
    assert torch.allclose(_loss(pred, target, "logmse", 0, 0.0, 1e-4),
                          torch.log(per_patch + 1e-4).mean())
    inside = err[..., 2:-2, 2:-2].mean(dim=(1, 2, 3))
    assert torch.allclose(_loss(pred, target, "logmse", 2, 0.0, 1e-4),
                          torch.log(inside + 1e-4).mean())
    ring = torch.full((12, 12), 0.5, dtype=torch.float64)
    ring[2:-2, 2:-2] = 1.0
    weighted = (err * ring).sum(dim=(1, 2, 3)) / ring.sum()
    assert torch.allclose(_loss(pred, target, "logmse", 2, 0.5, 1e-4),
                          torch.log(weighted + 1e-4).mean())
    # Unlike the plain MSE, the nearly exact patch's error counts for far more per unit.
    pred.requires_grad_(True)
    _loss(pred, target, "logmse", 0, 0.0, 1e-4).backward()
    grad = pred.grad.abs().mean(dim=(1, 2, 3)) / (pred - target).detach().abs().mean(dim=(1, 2, 3))
    assert grad[0] > 100 * grad[1:].max()
    with pytest.raises(InputError, match="log_eps"):
        Recipe(loss="logmse", log_eps=0.0)


def test_loss_switch() -> None:
    r = Recipe(steps=100, loss="l1", tune_loss="mse", tune_from=60)
    assert [r.loss_at(s) for s in (0, 59, 60, 99)] == ["l1", "l1", "mse", "mse"]
    assert Recipe(steps=100).loss_at(99) == "l1"
    with pytest.raises(InputError, match="tune_loss"):
        Recipe(steps=100, tune_loss="l3", tune_from=50)
    with pytest.raises(InputError, match="tune_from"):
        Recipe(steps=100, tune_loss="mse", tune_from=100)
    with pytest.raises(InputError, match="tune_from needs"):
        Recipe(steps=100, tune_from=50)


def test_distill_fields() -> None:
    r = Recipe(steps=100, teacher="ecbsr-x2", distill=0.5, distill_from=40)
    assert [r.distill_at(s) for s in (0, 39, 40, 99)] == [0.0, 0.0, 0.5, 0.5]
    assert Recipe(steps=100).distill_at(50) == 0.0
    for bad, message in [({"distill": 0.5}, "needs a teacher"),
                         ({"teacher": "ecbsr-x2"}, "needs distill"),
                         ({"teacher": "ecbsr-x2", "distill": 1.5}, "between 0 and 1"),
                         ({"teacher": "ecbsr-x2", "distill": 0.5, "distill_from": 100},
                          "distill_from"),
                         ({"teacher": "ecbsr-x2", "distill": 0.5, "teacher_sha256": "abc"}, "hex")]:
        with pytest.raises(InputError, match=message):
            Recipe(steps=100, **bad)
    # A longer run may start distilling at a step not yet taken, not change steps already taken.
    base = Recipe(model="esr-max-k3c2-x2", steps=100, schedule="constant")
    later = base.replace(steps=200, teacher="ecbsr-x2", distill=0.5, distill_from=100)
    assert later.extends(base, 100) is None
    assert "distillation" in later.extends(base.replace(steps=150), 120)
    other = later.replace(teacher="ecbsr-m4c8-x2")
    assert other.extends(later, 100) is None      # the teacher had not been used yet
    assert other.extends(later, 101) == "the teacher differs"
    ensemble = later.replace(teacher_ensemble=True)
    assert ensemble.extends(later, 100) is None
    assert ensemble.extends(later, 101) == "the teacher differs"
    with pytest.raises(InputError, match="teacher_ensemble needs a teacher"):
        Recipe(steps=100, teacher_ensemble=True)


def test_shipped_recipes_load() -> None:
    for f in sorted(RECIPES.glob("*.toml")):
        r = load_recipe(f)
        assert r.model == f.stem, f"{f.name} names {r.model}"


def test_weights_kept_for_recipes_are_what_their_names_say() -> None:
    # recipes/teachers/<model>-<first 8 hex of sha256>.safetensors: starting points and teachers
    # that recipes name by path, so a re-shipped model does not strand them.
    kept = sorted((RECIPES / "teachers").glob("*.safetensors"))
    assert kept
    for f in kept:
        model, digest = f.stem.rsplit("-", 1)
        assert sha256_file(f).startswith(digest), f.name
        assert load_model(f).spec.name == model
    # recipes/teachers/<model>-<sha8>.toml: the recipe that made the kept file, where it is
    # the earlier stage of a shipped model's chain
    for f in sorted((RECIPES / "teachers").glob("*.toml")):
        assert load_recipe(f).model == f.stem.rsplit("-", 1)[0], f.name
        assert f.with_suffix(".safetensors").is_file(), f.name
    for f in sorted([*RECIPES.glob("*.toml"), *(RECIPES / "gpu").glob("*.toml"),
                     *(RECIPES / "teachers").glob("*.toml")]):
        r = load_recipe(f)
        for path in (r.init_weights, r.teacher):
            if path.endswith(".safetensors"):
                assert (RECIPES.parent / path).is_file(), f"{f.name}: {path}"


# --- data ------------------------------------------------------------------------------------

def test_degradation_matches_evaluation(tmp_path: Path) -> None:
    folder = _images(tmp_path / "hr", count=1, size=(45, 61))
    rgb = read_rgb(next(folder.iterdir()))
    for scale in (2, 3, 4):
        hr, lr = degrade(rgb, scale)
        pair = make_pair(rgb, scale)
        assert hr.dtype == lr.dtype == np.uint8
        assert hr.shape == pair.hr_y.shape and lr.shape == pair.lr_y.shape
        assert np.abs(hr - pair.hr_y).max() <= 0.5 and np.abs(lr - pair.lr_y).max() <= 0.5


def test_planes_are_cached(tmp_path: Path) -> None:
    folder = _images(tmp_path / "hr")
    hrs, lrs = build_planes([folder], 2, tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    hrs2, lrs2 = build_planes([folder], 2, tmp_path / "cache")
    assert all(np.array_equal(a, b) for a, b in zip(hrs + lrs, hrs2 + lrs2, strict=True))
    # The cache file alone is training data (for machines without the image folders).
    cache = next((tmp_path / "cache").glob("*.npz"))
    hrs3, lrs3 = build_planes([cache], 2)
    assert all(np.array_equal(a, b) for a, b in zip(hrs + lrs, hrs3 + lrs3, strict=True))
    with pytest.raises(DataError, match="x2 planes"):
        build_planes([cache], 3)


def test_a_patch_too_large_is_refused_before_the_planes_are_built(tmp_path: Path) -> None:
    folder = _images(tmp_path / "hr", count=2, size=(60, 80))   # 30 LR pixels high at x2
    with pytest.raises(DataError, match="large enough for 31x31 LR patches at x2"):
        build_planes([folder], 2, tmp_path / "cache", lr_patch=31)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())
    assert len(build_planes([folder], 2, tmp_path / "cache", lr_patch=30)[0]) == 2


def test_a_pack_holds_every_scales_planes(tmp_path: Path) -> None:
    folder = _images(tmp_path / "hr", size=(50, 61))   # not a multiple of 2, 3 or 4
    pack = pack_planes([folder], [2, 3], tmp_path / "train.pack.npz")
    for s in (2, 3):
        want = build_planes([folder], s)
        got = build_planes([pack], s)
        assert all(np.array_equal(a, b)
                   for a, b in zip(want[0] + want[1], got[0] + got[1], strict=True))
        assert all(a.flags.c_contiguous for a in got[0])
    with pytest.raises(DataError, match="packs x2, x3 planes, not x4"):
        build_planes([pack], 4)


def test_rescale_adds_downscaled_copies(tmp_path: Path) -> None:
    folder = _images(tmp_path / "hr", count=2, size=(60, 80))
    hrs, lrs = build_planes([folder], 2, tmp_path / "cache", rescale=(0.5,))
    assert len(hrs) == 4
    plain_hrs, _ = build_planes([folder], 2, tmp_path / "cache")
    assert len(plain_hrs) == 2 and len(list((tmp_path / "cache").glob("*.npz"))) == 2
    # image, its half-size copy, next image, ...: the copy is the image resized, then degraded
    rgb = read_rgb(sorted(folder.iterdir())[0])
    want_hr, want_lr = degrade(imresize(rgb, 0.5), 2)
    assert hrs[0].shape == (60, 80) and np.array_equal(hrs[1], want_hr)
    assert np.array_equal(lrs[1], want_lr)
    # a cache or pack says what it holds; a recipe asking for something else is refused
    cache = next(p for p in (tmp_path / "cache").glob("*.npz") if np.load(p)["count"] == 4)
    again = build_planes([cache], 2, rescale=(0.5,))[0]
    assert all(np.array_equal(a, b) for a, b in zip(hrs, again, strict=True))
    with pytest.raises(DataError, match="holds rescaled copies \\[0.5\\], the recipe asks for no"):
        build_planes([cache], 2)
    pack = pack_planes([folder], [2, 3], tmp_path / "p.npz", rescale=(0.5,))
    got = build_planes([pack], 2, rescale=(0.5,))
    assert all(np.array_equal(a, b) for a, b in zip(lrs, got[1], strict=True))
    with pytest.raises(DataError, match="rescaled copies \\[0.7\\]"):
        build_planes([pack], 3, rescale=(0.7,))
    with pytest.raises(InputError, match="rescale"):
        Recipe(rescale=(1.0,))


def test_exact_lr_keeps_the_evaluations_unrounded_lr(tmp_path: Path) -> None:
    folder = _images(tmp_path / "hr", count=2, size=(45, 61))
    rgb = read_rgb(sorted(folder.iterdir())[0])
    hr, lr = degrade(rgb, 3, exact_lr=True)
    pair = make_pair(rgb, 3)
    assert hr.dtype == np.uint8 and lr.dtype == np.uint16
    assert np.abs(lr / 256.0 - pair.lr_y).max() <= 1 / 512 + 1e-9
    assert np.abs(lr / 256.0 - np.round(pair.lr_y)).max() > 0.1    # not the rounded plane
    # cache and pack round trips keep the 16-bit planes; each refuses the other kind of recipe
    hrs, lrs = build_planes([folder], 2, tmp_path / "cache", exact_lr=True)
    assert all(a.dtype == np.uint16 for a in lrs)
    cache = next((tmp_path / "cache").glob("*.npz"))
    again = build_planes([cache], 2, exact_lr=True)[1]
    assert all(np.array_equal(a, b) for a, b in zip(lrs, again, strict=True))
    with pytest.raises(DataError, match="unrounded \\(exact_lr\\) LR planes"):
        build_planes([cache], 2)
    assert build_planes([folder], 2, tmp_path / "cache")[1][0].dtype == np.uint8  # own cache
    pack = pack_planes([folder], [2, 3], tmp_path / "p.npz", exact_lr=True)
    got = build_planes([pack], 2, exact_lr=True)[1]
    assert all(np.array_equal(a, b) for a, b in zip(lrs, got, strict=True))
    with pytest.raises(DataError, match="the recipe asks for uint8-rounded LR planes"):
        build_planes([pack], 3)
    # the sampler scales them to the same [0, 1] as the evaluation's LR / 255
    sampler = PatchSampler(hrs, lrs, 2, 8, augment=False)
    lr_b, hr_b = sampler.batch(16, torch.Generator().manual_seed(0))
    assert lr_b.dtype == torch.float32 and float(lr_b.max()) <= 1.0
    frac = (lr_b * 255).numpy() % 1.0
    assert ((frac > 0.05) & (frac < 0.95)).mean() > 0.5      # fractional grey levels survive
    with pytest.raises(DataError, match="mix LR kinds"):
        PatchSampler([hrs[0], hrs[1]], [lrs[0], degrade(rgb, 2)[1]], 2, 8)
    assert recipe_from_dict({"exact_lr": True}).exact_lr
    with pytest.raises(InputError, match="exact_lr must be true or false"):
        recipe_from_dict({"exact_lr": 1})


def test_channels_add_each_rgb_plane_as_a_gray_image(tmp_path: Path) -> None:
    folder = _images(tmp_path / "hr", count=2, size=(40, 50))
    rgbs = [read_rgb(p) for p in sorted(folder.iterdir())]
    hrs, lrs = build_planes([folder], 2, tmp_path / "cache", rescale=(0.5,), exact_lr=True,
                            channels=True)
    plain_h, plain_l = build_planes([folder], 2, tmp_path / "cache", rescale=(0.5,),
                                    exact_lr=True)
    # first the R, G, B gray images of every image and copy, then the images themselves
    assert len(hrs) == 4 * len(plain_h) == 16
    assert all(np.array_equal(a, b) for a, b in zip(hrs[12:] + lrs[12:], plain_h + plain_l,
                                                    strict=True))
    # every gray plane is the protocol applied to the gray image (c, c, c) of its copy
    copies = [im for rgb in rgbs for im in (rgb, imresize(rgb, 0.5))]
    for k, im in enumerate(copies):
        for c in range(3):
            want_hr, want_lr = degrade(np.repeat(im[..., c:c + 1], 3, axis=2), 2, exact_lr=True)
            assert np.array_equal(hrs[3 * k + c], want_hr)
            assert np.array_equal(lrs[3 * k + c], want_lr)
    copy = imresize(rgbs[0], 0.5)
    copy = copy[: copy.shape[0] // 2 * 2, : copy.shape[1] // 2 * 2]    # the protocol's crop
    for c in range(3):
        want_hr, want_lr = hrs[3 + c], lrs[3 + c]
        # the gray image's Y is the channel mapped to 16-235; its LR is that channel of the LR
        assert np.abs(want_hr - (16 + 219 / 255 * copy[..., c])).max() <= 0.5 + 1e-9
        lr_rgb = imresize(copy, 0.5)
        assert np.abs(want_lr / 256 - (16 + 219 / 255 * lr_rgb[..., c])).max() <= 1 / 512 + 1e-9
    assert not np.array_equal(hrs[0], hrs[1])     # R and G differ on the test images
    # caches and packs say whether they hold them; a recipe asking otherwise is refused
    cache = next(p for p in (tmp_path / "cache").glob("*.npz") if np.load(p)["count"] == 16)
    again = build_planes([cache], 2, rescale=(0.5,), exact_lr=True, channels=True)
    assert all(np.array_equal(a, b) for a, b in zip(lrs, again[1], strict=True))
    with pytest.raises(DataError, match="holds planes with the R/G/B gray images"):
        build_planes([cache], 2, rescale=(0.5,), exact_lr=True)
    pack = pack_planes([folder], [2, 3], tmp_path / "p.npz", (0.5,), True, channels=True)
    got = build_planes([pack], 2, rescale=(0.5,), exact_lr=True, channels=True)
    assert all(np.array_equal(a, b) for a, b in zip(hrs + lrs, got[0] + got[1], strict=True))
    plain_pack = pack_planes([folder], [2], tmp_path / "q.npz", (0.5,), True)
    with pytest.raises(DataError, match="recipe asks for planes with the R/G/B gray images"):
        build_planes([plain_pack], 2, rescale=(0.5,), exact_lr=True, channels=True)
    assert recipe_from_dict({"channels": True}).channels


def test_patches_are_aligned() -> None:
    rng = np.random.default_rng(1)
    scale, p = 3, 5
    lr = rng.integers(0, 255, (20, 17), dtype=np.uint8)
    hr = np.kron(lr, np.ones((scale, scale), np.uint8))  # HR pixel = its LR parent
    sampler = PatchSampler([hr], [lr], scale, p, augment=True)
    gen = torch.Generator().manual_seed(0)
    lr_b, hr_b = sampler.batch(64, gen)
    assert lr_b.shape == (64, 1, p, p) and hr_b.shape == (64, 1, p * scale, p * scale)
    # Aligned crops under the same flip/rotation: HR is the nearest-neighbour upscale of LR.
    assert torch.equal(torch.repeat_interleave(torch.repeat_interleave(lr_b, scale, 2), scale, 3),
                       hr_b)
    # Crops come from many places and orientations, and every LR crop is from the image.
    assert len({tuple(x.flatten().tolist()[:3]) for x in lr_b}) > 30
    windows = set()
    for i in range(lr.shape[0] - p + 1):
        for j in range(lr.shape[1] - p + 1):
            w = lr[i:i + p, j:j + p]
            for f in (w, w[:, ::-1]):
                windows.update(np.ascontiguousarray(np.rot90(f, k)).tobytes() for k in range(4))
    assert all((x[0].numpy() * 255).round().astype(np.uint8).tobytes() in windows for x in lr_b)


def test_ema_fields() -> None:
    r = Recipe(steps=100, ema=0.99, ema_from=40)
    assert [r.ema_at(s) for s in (0, 39, 40, 99)] == [0.0, 0.0, 0.99, 0.99]
    assert Recipe(steps=100).ema_at(50) == 0.0
    for bad, message in [({"ema": 1.0}, "in \\[0, 1\\)"), ({"ema": -0.1}, "ema"),
                         ({"ema_from": 10}, "ema_from needs ema"),
                         ({"ema": 0.9, "ema_from": 100}, "ema_from")]:
        with pytest.raises(InputError, match=message):
            Recipe(steps=100, **bad)
    # A longer run may start averaging at a step not yet taken, not change steps already taken.
    base = Recipe(model="esr-max-k3c2-x2", steps=100, schedule="constant")
    later = base.replace(steps=200, ema=0.999, ema_from=100)
    assert later.extends(base, 100) is None
    assert "averaging at step 100" in later.extends(later.replace(ema=0.99), 120)
    assert "averaging at step 100" in base.replace(steps=200).extends(later, 120)



# --- the loop --------------------------------------------------------------------------------

def _tiny(tmp_path: Path) -> tuple[Path, Path]:
    return _images(tmp_path / "train", count=3, seed=0), _images(tmp_path / "val", 2, seed=5)


def _train_until(stop: int, recipe: Recipe, data: list[Path], out: Path, **kw: object) -> None:
    """Run ``train`` and stop it through its ``cancel`` event after step ``stop``."""
    cancel = threading.Event()

    def progress(step: int, total: int, loss: float) -> None:
        if step == stop:
            cancel.set()

    with pytest.raises(Cancelled):
        train(recipe, data, out, progress=progress, cancel=cancel, **kw)  # type: ignore[arg-type]


def test_train_writes_weights_that_load(tmp_path: Path) -> None:
    data, val = _tiny(tmp_path)
    recipe = Recipe(model="esr-max-k3c2-x2", steps=12, batch=4, lr_patch=8, val_every=6)
    result = train(recipe, [data], tmp_path / "out", val_dirs=[val], show_progress=False)
    assert result.step == 12 and [h["step"] for h in result.history] == [6, 12]
    model = load_model(result.best)  # a path works wherever a model name does
    assert model.spec.name == "esr-max-k3c2-x2"
    assert model(torch.rand(1, 1, 7, 9)).shape == (1, 1, 14, 18)
    ckpt = load_checkpoint(tmp_path / "out" / "last.ckpt")
    assert ckpt["step"] == 12 and ckpt["recipe"]["model"] == "esr-max-k3c2-x2"
    assert (tmp_path / "out" / "log.jsonl").read_text().count("\n") == 2


def test_a_damaged_checkpoint_is_refused(tmp_path: Path) -> None:
    # torch.load does not check the zip's CRCs: a changed weight (a flipped bit) loaded silently
    data, _ = _tiny(tmp_path)
    recipe = Recipe(model="esr-max-k3c2-x2", steps=2, batch=2, lr_patch=6)
    train(recipe, [data], tmp_path / "out", show_progress=False)
    path = tmp_path / "out" / "last.ckpt"
    assert load_checkpoint(path)["step"] == 2
    raw = torch.load(path, weights_only=True)
    first = next(iter(raw["model"]))
    raw["model"][first].view(-1)[0] += 2.0 ** -10
    torch.save(raw, path)
    with pytest.raises(WeightsError, match="is damaged"):
        load_checkpoint(path)
    raw.pop("sha256")  # one written before the digest was added still loads
    torch.save(raw, path)
    assert load_checkpoint(path)["step"] == 2


@pytest.mark.parametrize("name", ["esr-tm-k3c2-x2", "ecbsr-m1c4-x3"])
def test_resume_is_bit_exact(tmp_path: Path, name: str) -> None:
    data, val = _tiny(tmp_path)
    recipe = Recipe(model=name, steps=10, batch=3, lr_patch=6, val_every=4, lr=1e-2)
    kw = {"val_dirs": [val], "show_progress": False, "cache_dir": tmp_path / "cache"}
    train(recipe, [data], tmp_path / "a", **kw)

    _train_until(7, recipe, [data], tmp_path / "b", **kw)
    assert load_checkpoint(tmp_path / "b" / "last.ckpt")["step"] == 7
    result = train(None, [data], tmp_path / "b", resume=tmp_path / "b" / "last.ckpt", **kw)
    assert result.step == 10
    a = load_file(str(tmp_path / "a" / "final.safetensors"))
    b = load_file(str(tmp_path / "b" / "final.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert load_checkpoint(tmp_path / "a" / "last.ckpt")["best_psnr"] == \
        load_checkpoint(tmp_path / "b" / "last.ckpt")["best_psnr"]


@pytest.mark.parametrize("where", ["loss", "validation", "update", "best"])
def test_ctrl_c_anywhere_resumes_bit_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            where: str) -> None:
    # the checkpoint taken on Ctrl-C held the data RNG of the next step, or a step whose
    # validation never ran: no resume matched an unbroken run
    from vidsr.train import loop

    data, val = _tiny(tmp_path)
    recipe = Recipe(model="esr-tm-k3c2-x2", steps=10, batch=3, lr_patch=6, val_every=4, lr=1e-2,
                    ema=0.9)
    kw = {"val_dirs": [val], "show_progress": False, "cache_dir": tmp_path / "cache"}
    train(recipe, [data], tmp_path / "a", **kw)
    target = {"loss": (loop, "_loss", 7), "validation": (loop, "validate", 2),
              "update": (loop.WeightAverage, "update", 6),
              "best": (loop, "save_weights", 1)}[where]
    owner, name, at = target
    real = getattr(owner, name)
    calls = []

    def interrupt(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == at:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(recipe, [data], tmp_path / "b", **kw)
    monkeypatch.undo()
    held = load_checkpoint(tmp_path / "b" / "last.ckpt")["step"]
    assert held == {"loss": 6, "validation": 8, "update": 4, "best": 4}[where]  # update: kept
    result = train(None, [data], tmp_path / "b", resume=tmp_path / "b" / "last.ckpt", **kw)
    a = load_file(str(tmp_path / "a" / "final.safetensors"))
    b = load_file(str(tmp_path / "b" / "final.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["step"] for h in result.history] == [4, 8, 10]
    assert [h["step"] for h in loop._logged(tmp_path / "b")] == [4, 8, 10]  # each once
    assert load_file(str(tmp_path / "b" / "best.safetensors")).keys() == a.keys()


@pytest.mark.skipif(sys.platform == "win32", reason="advisory locks are POSIX")
def test_a_second_run_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    data, _val = _tiny(tmp_path)
    recipe = Recipe(model="esr-max-k3c2-x2", steps=2, batch=2, lr_patch=6, val_every=2)
    out = tmp_path / "out"
    out.mkdir()
    with _run_lock(out):  # as a running `vidsr train` holds it
        with pytest.raises(InputError, match=f"in use by another vidsr train \\(pid {os.getpid()}"):
            train(recipe, [data], out, show_progress=False)
        assert not (out / "last.ckpt").exists()
    assert train(recipe, [data], out, show_progress=False).step == 2  # released


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32",
                    reason="POSIX signals")
def test_sigterm_checkpoints_and_exits_143(tmp_path: Path) -> None:
    """``kill`` (or a scheduler's stop) on a running ``vidsr train``: it checkpoints, says how to
    resume, and exits 128 + SIGTERM; the checkpoint resumes."""
    data, _val = _tiny(tmp_path)
    recipe = tmp_path / "r.toml"
    # a constant rate, so that the resume below may cut the run short (--steps): a cosine
    # schedule of another length is another run, which a resume refuses
    recipe.write_text('model = "esr-max-k3c2-x2"\nsteps = 10000000\nbatch = 2\n'
                      'lr_patch = 6\nval_every = 10000000\nschedule = "constant"\n')
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidsr", "train", "--recipe", str(recipe), "--data", str(data),
         "--out", str(out), "--no-progress", "--threads", "1"],
        stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:  # wait until the loop runs
        lines.append(line)
        if "training esr-max-k3c2-x2" in line:
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == 128 + signal.SIGTERM, "".join(lines) + rest
    assert "terminated: training stopped at step" in rest and "--resume" in rest
    step = load_checkpoint(out / "last.ckpt")["step"]
    assert 0 < step < 10000000
    result = train(None, [data], out, resume=out / "last.ckpt", steps=step + 2,
                   show_progress=False)
    assert result.step == step + 2


def test_extended_resume_equals_the_longer_run(tmp_path: Path) -> None:
    data, val = _tiny(tmp_path)
    short = Recipe(model="esr-tm-k3c2-x2", steps=6, batch=3, lr_patch=6, val_every=3, lr=1e-2)
    longer = short.replace(steps=10, restarts=(6,), restart_lr=5e-3, tune_loss="mse", tune_from=8)
    kw = {"val_dirs": [val], "show_progress": False, "cache_dir": tmp_path / "cache"}
    train(longer, [data], tmp_path / "a", **kw)
    train(longer.replace(tune_loss="", tune_from=0), [data], tmp_path / "c", **kw)
    a = load_file(str(tmp_path / "a" / "final.safetensors"))
    c = load_file(str(tmp_path / "c" / "final.safetensors"))
    assert not all(torch.equal(a[k], c[k]) for k in a)  # the switch changed the last two steps
    train(short, [data], tmp_path / "b", **kw)
    with pytest.raises(InputError, match="batch differs"):
        train(longer.replace(batch=2), [data], tmp_path / "b",
              resume=tmp_path / "b" / "last.ckpt", **kw)
    # --steps is checked like a recipe: a cosine run made longer has a different rate already
    # (it was accepted, and the result matched no from-scratch run), and fewer steps than taken
    with pytest.raises(InputError, match="--steps 12 does not extend.*learning rate"):
        train(None, [data], tmp_path / "b", resume=tmp_path / "b" / "last.ckpt", steps=12, **kw)
    with pytest.raises(InputError, match="--steps 4 does not extend.*at step 6"):
        train(None, [data], tmp_path / "b", resume=tmp_path / "b" / "last.ckpt", steps=4, **kw)
    result = train(longer, [data], tmp_path / "b", resume=tmp_path / "b" / "last.ckpt", **kw)
    assert result.step == 10
    assert load_checkpoint(tmp_path / "b" / "last.ckpt")["recipe"]["steps"] == 10
    b = load_file(str(tmp_path / "b" / "final.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", ["esr-tm-k3c2-x2", "ecbsr-m1c4-x2"])
def test_init_from_weights_starts_where_they_are(tmp_path: Path, name: str) -> None:
    data, val = _tiny(tmp_path)
    kw = {"show_progress": False, "cache_dir": tmp_path / "cache"}
    first = train(Recipe(model=name, steps=8, batch=4, lr_patch=8, lr=2e-2, val_every=8),
                  [data], tmp_path / "a", **kw)
    start_file = first.out_dir / "final.safetensors"
    # A rate too small to move anything: the new run's weights are the ones it started from
    # (ECBSR goes through its training form and back).
    warm = Recipe(model=name, steps=2, batch=4, lr_patch=8, lr=1e-12, schedule="constant",
                  val_every=2, init="weights", init_weights=str(start_file), whiten=1e-3
                  if name.startswith("esr") else 0.0)
    run = train(warm, [data], tmp_path / "b", val_dirs=[val], **kw)
    x = torch.rand(1, 1, 9, 10)
    torch.testing.assert_close(load_model(run.out_dir / "final.safetensors")(x),
                               load_model(start_file)(x), atol=1e-5, rtol=1e-4)
    assert load_checkpoint(run.out_dir / "last.ckpt")["recipe"]["init_sha256"] == \
        sha256_file(start_file)
    # Its first validation, at step 0, scores the starting weights.
    assert [h["step"] for h in run.history] == [0, 2]
    start_psnr = evaluate(load_model(start_file), val).psnr
    assert run.history[0]["mean_psnr"] == pytest.approx(start_psnr, abs=1e-9)
    # Made longer, it resumes from its checkpoint (the pin carries over; the file is not reread).
    longer = train(warm.replace(steps=4, val_every=4), [data], tmp_path / "b", val_dirs=[val],
                   resume=run.out_dir / "last.ckpt", **kw)
    assert [h["step"] for h in longer.history] == [0, 2, 4]
    with pytest.raises(InputError, match="pins"):
        train(warm.replace(init_sha256="0" * 64), [data], tmp_path / "d", **kw)
    other = "esr-tm-k3c2-x3" if name.startswith("esr") else "ecbsr-m1c4-x3"
    with pytest.raises(InputError, match="is " + name):
        train(warm.replace(model=other), [data], tmp_path / "e", **kw)


def test_psnr_sampling_draws_the_images_a_net_gets_right_more_often(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(0)
    flat = np.full((32, 32, 3), 128, np.uint8)
    noise = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    hrs, lrs = zip(*(degrade(rgb, 2) for rgb in (flat, noise)), strict=True)
    net = load_model("esr-max-k7c4-x2")
    errors = plane_errors(net, hrs, lrs, 2)
    assert errors[0] < 1e-6 < 1e-2 < errors[1]      # flat gray is exact, noise is not
    sampler = PatchSampler(hrs, lrs, 2, 8, augment=False)
    before = sampler.weights.clone()
    sampler.reweigh([1.0 / (e + 1e-4) for e in errors])
    assert torch.allclose(sampler.weights / before,
                          torch.tensor([1.0 / (e + 1e-4) for e in errors], dtype=torch.float64))
    lr_b = sampler.batch(64, torch.Generator().manual_seed(0))[0]
    drawn_flat = int((lr_b.std(dim=(1, 2, 3)) < 1e-3).sum())
    assert drawn_flat > 55                          # ~99% of draws, against 50% unweighted
    with pytest.raises(ValueError, match="factors"):
        sampler.reweigh([1.0])
    with pytest.raises(InputError, match="psnr_sampling"):
        Recipe(psnr_sampling=True)
    # In a run it weighs by the start weights' error, again on a resume.
    data, val = _tiny(tmp_path)
    kw = {"show_progress": False, "cache_dir": tmp_path / "cache"}
    start = tmp_path / "start.safetensors"
    train(Recipe(model="esr-max-k3c2-x2", steps=2, batch=4, lr_patch=8, val_every=2), [data],
          tmp_path / "a", **kw).out_dir.joinpath("final.safetensors").rename(start)
    recipe = Recipe(model="esr-max-k3c2-x2", steps=2, batch=4, lr_patch=8, val_every=2,
                    schedule="constant", init="weights", init_weights=str(start),
                    psnr_sampling=True)
    with caplog.at_level(logging.INFO, logger="vidsr"):
        train(recipe, [data], tmp_path / "b", **kw)
        train(recipe.replace(steps=4), [data], tmp_path / "b",
              resume=tmp_path / "b" / "last.ckpt", **kw)
    assert sum("psnr_sampling: init_weights' MSE" in r.message for r in caplog.records) == 2


def test_distillation_pulls_the_student_to_its_teacher(tmp_path: Path) -> None:
    data, val = _tiny(tmp_path)
    kw = {"show_progress": False, "cache_dir": tmp_path / "cache"}
    teacher_run = train(Recipe(model="esr-max-k3c2-x2", steps=8, batch=4, lr_patch=8, lr=5e-2,
                               val_every=8), [data], tmp_path / "t", **kw)
    teacher_file = teacher_run.out_dir / "final.safetensors"
    student = Recipe(model="esr-tm-k3c2-x2", steps=60, batch=4, lr_patch=8, lr=3e-2,
                     val_every=60, loss="mse")
    plain_run = train(student, [data], tmp_path / "p", **kw)
    distilled = student.replace(teacher=str(teacher_file), distill=1.0)
    run = train(distilled, [data], tmp_path / "d", **kw)
    # The checkpoint pins the teacher's file, so a resume cannot silently use other weights.
    pinned = load_checkpoint(run.out_dir / "last.ckpt")["recipe"]["teacher_sha256"]
    assert pinned == sha256_file(teacher_file)
    lr_y = make_pair(read_rgb(next(val.iterdir())), 2).lr_y
    x = torch.from_numpy(np.asarray(lr_y, np.float32) / 255.0)[None, None]
    t = load_model(teacher_file)(x).clamp(0, 1)
    gap = {name: (load_model(r.out_dir / "final.safetensors")(x) - t).square().mean().item()
           for name, r in (("plain", plain_run), ("distilled", run))}
    assert gap["distilled"] < 0.5 * gap["plain"], gap
    # The self-ensemble teacher: the student is pulled to the teacher's 8-way mean instead.
    se_run = train(distilled.replace(teacher_ensemble=True), [data], tmp_path / "s", **kw)
    assert load_checkpoint(se_run.out_dir / "last.ckpt")["recipe"]["teacher_ensemble"] is True
    t_se = SelfEnsemble(load_model(teacher_file))(x).clamp(0, 1)
    student_se = load_model(se_run.out_dir / "final.safetensors")(x)
    student_d = load_model(run.out_dir / "final.safetensors")(x)
    assert (student_se - t_se).square().mean() < (student_d - t_se).square().mean()
    with pytest.raises(InputError, match="pins"):
        train(distilled.replace(teacher_sha256="0" * 64), [data], tmp_path / "e", **kw)
    with pytest.raises(InputError, match="upscales x2"):
        train(distilled.replace(model="esr-tm-k3c2-x3"), [data], tmp_path / "f", **kw)


def test_distilling_with_l1_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # 0.5 |p - HR| + 0.5 |p - teacher| has no gradient between the two targets.
    data, _ = _tiny(tmp_path)
    kw = {"show_progress": False, "cache_dir": tmp_path / "cache"}
    base = Recipe(model="esr-max-k3c2-x2", steps=2, batch=2, lr_patch=8, val_every=2,
                  teacher="esr-max-x2", distill=0.5)
    with caplog.at_level(logging.WARNING, logger="vidsr"):
        train(base.replace(loss="mse"), [data], tmp_path / "m", **kw)
        assert "L1-like" not in caplog.text
        train(base.replace(loss="l1"), [data], tmp_path / "l", **kw)
        assert "L1-like" in caplog.text


def test_whitened_basis_keeps_the_function_and_whitens_the_patches() -> None:
    rng = np.random.default_rng(0)
    lrs = [cv2.GaussianBlur(rng.integers(0, 256, (40, 50)).astype(np.uint8), (5, 5), 1.5)
           for _ in range(3)]
    moment = patch_moment(lrs, 5, stride=1)
    lam = np.linalg.eigvalsh(moment)
    assert lam.max() / lam.min() > 1e3  # neighbouring pixels correlate: badly conditioned
    basis = whitening_basis(moment, 0.0).double().numpy()
    # In the basis the patch features have the identity as second moment.
    assert np.allclose(basis @ moment @ basis.T, np.eye(25), atol=1e-3)
    for name in ("esr-tm-k5c2-x2", "esr-cnn-c2d2s3-x2"):
        model = parse_name(name).build(training=True)
        x = torch.rand(1, 1, 12, 14)
        before = model(x)
        apply_whitening(model, lrs, 1e-3)
        assert torch.allclose(model(x), before, atol=1e-5)
        assert trained_weight(model) is not first_filter(model).weight  # theta is what trains
        deployed = plain(model)
        assert "filter.parametrizations" not in str(list(deployed.state_dict()))
        assert torch.allclose(deployed(x), before, atol=1e-5)


def test_whitened_training_resumes_bit_exactly_and_saves_plain_weights(tmp_path: Path) -> None:
    data, val = _tiny(tmp_path)
    short = Recipe(model="esr-tm-k5c2-x2", steps=4, batch=3, lr_patch=8, val_every=4, lr=1e-2,
                   whiten=1e-3, key_gain=4.0)
    recipe = short.replace(steps=8, restarts=(4,))
    kw = {"val_dirs": [val], "show_progress": False, "cache_dir": tmp_path / "cache"}
    train(recipe, [data], tmp_path / "a", **kw)
    train(short, [data], tmp_path / "b", **kw)
    train(recipe, [data], tmp_path / "b", resume=tmp_path / "b" / "last.ckpt", **kw)
    a = load_file(str(tmp_path / "a" / "final.safetensors"))
    b = load_file(str(tmp_path / "b" / "final.safetensors"))
    assert set(a) == {"filter.weight"} and torch.equal(a["filter.weight"], b["filter.weight"])
    model = load_model(str(tmp_path / "a" / "best.safetensors"))
    assert model(torch.rand(1, 1, 9, 9)).shape == (1, 1, 18, 18)


def test_weight_average_decay_warms_up() -> None:
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    average = WeightAverage(model)            # starts as a copy of the model
    with torch.no_grad():
        model.weight.fill_(1.0)
    average.update(model, 0.9)                # one step averaged: decay min(0.9, 2 / 11)
    assert average.model.weight.item() == pytest.approx(1.0 - 2.0 / 11.0)
    for _ in range(200):
        average.update(model, 0.9)
    assert average.model.weight.item() == pytest.approx(1.0, abs=1e-6)
    assert model.weight.requires_grad and not average.model.weight.requires_grad


@pytest.mark.parametrize("name", ["esr-tm-k5c2-x2", "ecbsr-m1c4-x2"])
def test_weight_averaging_saves_the_average_and_resumes_bit_exactly(tmp_path: Path,
                                                                     name: str) -> None:
    data, val = _tiny(tmp_path)
    plain_run = Recipe(model=name, steps=10, batch=3, lr_patch=8, val_every=5, lr=1e-2,
                       whiten=1e-3 if name.startswith("esr") else 0.0)
    averaged = plain_run.replace(ema=0.9, ema_from=3)
    kw = {"val_dirs": [val], "show_progress": False, "cache_dir": tmp_path / "cache"}
    train(plain_run, [data], tmp_path / "a", **kw)
    train(averaged, [data], tmp_path / "b", **kw)
    a, b = (load_checkpoint(tmp_path / d / "last.ckpt") for d in "ab")
    # averaging watches the run without changing it
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["average"] is None and b["average"]["count"] == 10 - 3 - 1
    final_a = load_file(str(tmp_path / "a" / "final.safetensors"))
    final_b = load_file(str(tmp_path / "b" / "final.safetensors"))
    assert not all(torch.equal(final_a[k], final_b[k]) for k in final_a)
    spec = parse_name(name)
    model = spec.build(training=True)
    if plain_run.whiten:
        noise = np.random.default_rng(0).integers(0, 256, (20, 20), dtype=np.uint8)
        apply_whitening(model, [noise], plain_run.whiten)   # the basis comes from the state
    model.load_state_dict(b["average"]["model"])
    deployed = deploy_form(model, spec).state_dict()
    assert all(torch.equal(deployed[k], final_b[k]) for k in final_b)
    # stopped at step 7 and resumed: the same average
    _train_until(7, averaged, [data], tmp_path / "c", **kw)
    train(None, [data], tmp_path / "c", resume=tmp_path / "c" / "last.ckpt", **kw)
    final_c = load_file(str(tmp_path / "c" / "final.safetensors"))
    assert all(torch.equal(final_b[k], final_c[k]) for k in final_b)
    assert load_checkpoint(tmp_path / "c" / "last.ckpt")["best_psnr"] == b["best_psnr"]


def test_ecbsr_saved_reparameterized(tmp_path: Path) -> None:
    data, _ = _tiny(tmp_path)
    recipe = Recipe(model="ecbsr-m1c4-x2", steps=3, batch=2, lr_patch=6)
    result = train(recipe, [data], tmp_path / "out", show_progress=False)
    tensors = load_file(str(result.best))
    assert all(k.startswith(("convs.", "acts.")) for k in tensors)
    assert load_model(result.best)(torch.rand(1, 1, 5, 5)).shape == (1, 1, 10, 10)


# --- CLI and shipping ------------------------------------------------------------------------

def test_cli_train_and_ship(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vidsr.weights as weights

    data, val = _tiny(tmp_path)
    recipe = tmp_path / "r.toml"
    recipe.write_text('model = "esr-max-k3c2-x2"\nsteps = 4\nbatch = 2\nlr_patch = 8\n')
    out = tmp_path / "out"
    assert main(["train", "--recipe", str(recipe), "--data", str(data), "--val", str(val),
                 "--out", str(out), "--threads", "1", "--no-progress"]) == 0
    assert main(["train", "--model", "esr-tm-x2", "--recipe", str(recipe), "--data", str(data),
                 "--out", str(out)]) == 1  # the recipe names another model

    _empty_package(tmp_path, monkeypatch)
    assert main(["train", "--ship", str(out / "best.safetensors")]) == 0
    entry = weights.manifest()["esr-max-k3c2-x2"]
    assert entry.path.is_file() and entry.sha256 == weights.sha256_file(entry.path)
    assert entry.params == 2 * 2 * 2 * 3 * 3 and entry.metrics == {}
    assert entry.recipe == "recipes/esr-max-k3c2-x2.toml"
    # Metrics come only from `vidsr eval --record`.
    assert main(["eval", "--model", "esr-max-k3c2-x2", "--data", str(val), "--record"]) == 0
    entry = weights.manifest()["esr-max-k3c2-x2"]
    assert set(entry.metrics["val"]) == {"psnr", "ssim"} and "--record" not in entry.command


@pytest.mark.parametrize("name", ["esr-max-k7c4-x2", "esr-tm-k5c3-x3", "esr-tr-k7c2-x4"])
def test_bicubic_init_starts_at_bicubic(name: str) -> None:
    from vidsr.imresize import BicubicUpsample
    from vidsr.registry import parse_name
    from vidsr.train.init import apply_init

    spec = parse_name(name)
    model = spec.build()
    apply_init(model, spec, "bicubic", 0.0)
    x = torch.rand(1, 1, 20, 20)
    b = 3 * spec.scale  # zero padding vs. replicated edges differ only near the border
    diff = (model(x) - BicubicUpsample(spec.scale)(x))[..., b:-b, b:-b]
    assert diff.abs().max() < 1e-5
    with pytest.raises(ValueError):
        apply_init(parse_name("esr-cnn-x2").build(), parse_name("esr-cnn-x2"), "bicubic", 0.0)


@pytest.mark.parametrize("name", ["esr-tm-k3c2-x2", "esr-tr-k3c2-x3", "esr-cnn-c2d1s3-x2"])
def test_key_gain_scales_only_the_key_rows_steps(tmp_path: Path, name: str) -> None:
    """key_gain g: the first Adam step moves key/query rows g times as far, values the same."""
    data, _ = _tiny(tmp_path)
    finals = {}
    for gain in (1.0, 8.0):
        recipe = Recipe(model=name, steps=1, batch=3, lr_patch=6, key_gain=gain, lr=1e-3)
        train(recipe, [data], tmp_path / f"g{gain}", cache_dir=tmp_path / "c",
              show_progress=False)
        finals[gain] = load_file(str(tmp_path / f"g{gain}" / "final.safetensors"))
    torch.manual_seed(0)
    start = parse_name(name).build(training=True)  # the same seed: the same initial weights
    key = "filter.weight" if "cnn" not in name else "cnn.4.weight"
    w0 = start.state_dict()[key]
    spec = parse_name(name)
    first = start.c * spec.scale * spec.scale
    d1, d8 = finals[1.0][key] - w0, finals[8.0][key] - w0
    assert torch.allclose(d1[:first], d8[:first], atol=1e-7)
    assert d1[first:].abs().max() > 1e-5
    assert torch.allclose(d8[first:], 8 * d1[first:], rtol=1e-3, atol=1e-7)


def test_key_gain_and_whiten_refuse_models_they_do_not_fit() -> None:
    # both were found only after the training planes were built
    with pytest.raises(InputError, match="key_gain"):
        Recipe(model="esr-max-k3c2-x2", steps=1, batch=2, lr_patch=6, key_gain=4.0)
    with pytest.raises(InputError, match="whiten"):
        Recipe(model="ecbsr-m1c4-x2", whiten=1e-3)
    with pytest.raises(InputError, match="key_gain"):
        Recipe(key_gain=4.0).replace(model="ecbsr-m1c4-x2")  # -m given beside the recipe


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the no-CUDA message")
def test_train_on_cuda_without_cuda_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no CUDA device"):
        train(Recipe(model="esr-max-k3c2-x2", steps=1), [tmp_path], tmp_path / "o",
              device="cuda", show_progress=False)
    assert not (tmp_path / "o").exists()


def test_train_refuses_what_it_cannot_do_in_one_line(tmp_path: Path, capsys) -> None:
    # each was a traceback, or (a second run into a used --out) silently replaced that run
    data, val = _tiny(tmp_path)
    base = ["train", "--data", str(data), "--no-progress", "--steps", "2"]
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"model = \"esr-max-k3c2-x2\"\n# \xff\xfe\n")
    notckpt = tmp_path / "x.ckpt"
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((8, 8, 3), np.uint8))
    notckpt.write_bytes((tmp_path / "x.png").read_bytes())
    recipe = tmp_path / "r.toml"
    recipe.write_text('model = "esr-max-k3c2-x2"\nbatch = 2\nlr_patch = 6\nval_every = 2\n')
    first = ["--recipe", str(recipe), "--out", str(tmp_path / "run"), "--val", str(val)]
    assert main([*base, *first]) == 0
    (tmp_path / "other").mkdir()
    assert main([*base, *first[:2], "--out", str(tmp_path / "other")]) == 0
    twin = tmp_path / "twin" / val.name  # another folder of the same name
    twin.parent.mkdir()
    twin.mkdir()
    cv2.imwrite(str(twin / "a.png"), np.zeros((40, 40, 3), np.uint8))
    notnpz = tmp_path / "junk.npz"
    notnpz.write_bytes(b"not a zip at all")
    assert not (tmp_path / "run" / ".lock").exists()  # it was left behind by every run
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    for name in ("best.safetensors", "log.jsonl"):
        (earlier / name).write_bytes((tmp_path / "run" / name).read_bytes())
    planes = next((tmp_path / "run").glob("train-*.npz")).read_bytes()
    flipped = tmp_path / "flipped.npz"
    middle = len(planes) // 2
    flipped.write_bytes(planes[:middle] + bytes(b ^ 0xFF for b in planes[middle:middle + 100])
                        + planes[middle + 100:])
    capsys.readouterr()
    for args, said in [
        (["-m", "bicubic-x2", "--out", str(tmp_path / "b")], "no weights to train"),
        (["--recipe", str(bad), "--out", str(tmp_path / "c")], "not a text (UTF-8)"),
        (["--resume", str(notckpt), "--out", str(tmp_path / "d")], "not a vidsr training"),
        (["-m", "esr-tm-k3c2-x2", "--out", str(tmp_path / "run")], "holds a training run"),
        (["-m", "esr-max-k3c2-x2", "--out", str(tmp_path / "e"), "--val",
          str(tmp_path / "nope")], "not a folder"),
        (["-m", "esr-max-k3c2-x2", "--out", str(bad)], "is a file"),
        (["-m", "esr-max-k3c2-x2", "--out", str(bad / "sub")], "inside a file"),
        (["--resume", str(tmp_path / "run" / "last.ckpt"), "--out", str(tmp_path / "other")],
         "holds a training run's last.ckpt"),
        (["-m", "esr-tm-k3c2-x2", "--resume", str(tmp_path / "run" / "last.ckpt"), "--out",
          str(tmp_path / "run")], "disagrees with"),
        (["-m", "esr-max-k3c2-x2", "--out", str(tmp_path / "f"), "--val", str(val),
          str(twin)], "two --val folders are named"),
        (["-m", "esr-max-k3c2-x2", "--out", str(tmp_path / "g"), "--data", str(notnpz)],
         "not a plane file"),
        (["-m", "esr-max-k3c2-x2", "--out", str(tmp_path / "h"), "--data",
          str(tmp_path / "none.npz")], "no such plane file"),
        (["-m", "esr-max-k3c2-x2", "--out", str(tmp_path / "i"), "--threads", "-1"],
         "--threads"),
        (["-m", "esr-max-k3c2-x2", "--out", str(tmp_path / "j"), "--device", "tpu"],
         "unsupported device"),
        (["-m", "bicubic-x2", "--out", str(tmp_path / "k" / "deep" / "er")],
         "no weights to train"),
        (["-m", "bicubic-x2", "--out", str(tmp_path / "l" / ".." / "m")],
         "no weights to train"),
        # an earlier run's weights and log without its checkpoint were overwritten (and the
        # log kept the old run's lines), a bad --cache was a traceback after the planes were
        # built, a damaged plane file zlib's traceback
        (["-m", "esr-max-k3c2-x2", "--out", str(earlier)], "holds an earlier run's "
         "best.safetensors, log.jsonl"),
        (["-m", "esr-max-k3c2-x2", "--out", str(tmp_path / "n"), "--cache", str(bad)],
         "--cache"),
        (["-m", "esr-max-k3c2-x2", "--out", str(tmp_path / "o"), "--data", str(flipped)],
         "not a plane file"),
        (["-m", "esr-max-k3c2-x2", "--out", str(tmp_path / "p"), "--data", str(data / ".")],
         "more than once"),
        (["-m", "bicubic-x2", "--out", str(tmp_path / "q" / "run"), "--cache",
          str(tmp_path / "q" / "run" / "cache")], "no weights to train"),
        (["-m", "esr-max-k3c2-x2", "--out", str(data)], "is one of the image folders"),
    ]:
        assert main([*base, *args]) == 1, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("vidsr: error:") and said in err[0], err
    assert not (tmp_path / "e" / "train-").exists() and not list((tmp_path / "e").glob("*.npz"))
    for folder in "bcdefghijklmnopq":  # no empty --out folder (nor its new parents) left behind
        assert not (tmp_path / folder).exists(), folder


def test_a_resume_warns_only_when_the_data_changed(tmp_path: Path, monkeypatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    # the checkpoint held --data as given: a resume from another folder with the same data
    # named relatively warned that the data had changed
    data, _ = _tiny(tmp_path)
    other = _images(tmp_path / "other", count=3, seed=9)
    recipe = Recipe(model="esr-max-k3c2-x2", batch=2, lr_patch=6, steps=4, val_every=2)
    monkeypatch.chdir(tmp_path)
    _train_until(2, recipe, [Path("train")], tmp_path / "run", show_progress=False)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    with caplog.at_level(logging.WARNING, logger="vidsr"):
        _train_until(3, None, [Path("..") / "train"], tmp_path / "run",  # type: ignore[arg-type]
                     resume=tmp_path / "run" / "last.ckpt", show_progress=False)
    assert "differs from the data" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="vidsr"):
        train(None, [other], tmp_path / "run", resume=tmp_path / "run" / "last.ckpt",
              show_progress=False)
    assert "--data differs from the data" in caplog.text
    assert data.is_dir()


def test_a_shipped_recipe_finds_its_start_weights_from_any_folder(tmp_path: Path,
                                                                  monkeypatch) -> None:
    # recipes name their starts as recipes/teachers/..., which only resolved from the repo root
    shipped = Path(__file__).resolve().parents[1] / "recipes" / "esr-max-k7c4-x2.toml"
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe(shipped)
    assert recipe.init_weights.endswith("recipes/teachers/esr-max-k7c4-x2-09de6e45.safetensors")
    assert Path(recipe.init_weights).is_file()


def test_a_recipe_extends_itself_from_any_folder(tmp_path: Path, monkeypatch) -> None:
    # from elsewhere load_recipe names the start file by its full path: the same file
    shipped = Path(__file__).resolve().parents[1] / "recipes" / "ecbsr-m4c16-x2.toml"
    monkeypatch.chdir(shipped.parents[1])
    here = load_recipe(shipped)
    monkeypatch.chdir(tmp_path)
    there = load_recipe(shipped)
    assert here.init_weights != there.init_weights
    assert here.extends(there, 10) is None and there.extends(here, 10) is None
    assert "init_weights differs" in (here.replace(init_weights="ecbsr-x2").extends(there, 10)
                                      or "")


def test_a_resume_into_another_folder_takes_the_run_with_it(tmp_path: Path) -> None:
    # the new --out got final.safetensors only: the best weights and the log stayed behind
    # (the last line named a best that was not there), and no last.ckpt to go on from
    data, val = _tiny(tmp_path)
    recipe = Recipe(model="esr-max-k3c2-x2", steps=8, batch=2, lr_patch=6, val_every=2,
                    lr=1e-2)
    kw = {"val_dirs": [val], "show_progress": False}
    whole = train(recipe, [data], tmp_path / "whole", **kw)
    _train_until(5, recipe, [data], tmp_path / "a", **kw)
    moved = train(None, [data], tmp_path / "b", resume=tmp_path / "a" / "last.ckpt", **kw)
    assert (moved.best_step, moved.best_psnr) == (whole.best_step, whole.best_psnr)
    for name in ("best.safetensors", "final.safetensors"):
        a = load_file(str(tmp_path / "whole" / name))
        b = load_file(str(tmp_path / "b" / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert (tmp_path / "b" / "log.jsonl").read_text() == \
        (tmp_path / "whole" / "log.jsonl").read_text()
    assert load_checkpoint(tmp_path / "b" / "last.ckpt")["step"] == 8
    # a finished run resumed elsewhere: its files, and a checkpoint, are there too
    again = train(None, [data], tmp_path / "c", resume=tmp_path / "whole" / "last.ckpt", **kw)
    assert again.best_step == whole.best_step
    assert {p.name for p in (tmp_path / "c").iterdir()} >= {
        "best.safetensors", "final.safetensors", "log.jsonl", "last.ckpt"}


def test_a_resume_without_val_keeps_validating(tmp_path: Path, caplog) -> None:
    # without --val a resume wrote its unvalidated weights over the run's validated best
    data, val = _tiny(tmp_path)
    recipe = Recipe(model="esr-max-k3c2-x2", steps=8, batch=2, lr_patch=6, val_every=2)
    kw = {"val_dirs": [val], "show_progress": False}
    _train_until(3, recipe, [data], tmp_path / "r", **kw)
    whole = train(recipe, [data], tmp_path / "whole", **kw)
    ckpt = tmp_path / "r" / "last.ckpt"
    with caplog.at_level("INFO"):
        resumed = train(None, [data], tmp_path / "r", resume=ckpt, show_progress=False)
    assert "validating on the folders the run was validated on" in caplog.text
    assert [h["step"] for h in resumed.history] == [2, 4, 6, 8]
    assert (resumed.best_step, resumed.best_psnr) == (whole.best_step, whole.best_psnr)
    # also when it stopped before its first validation (the checkpoint names the folders)
    _train_until(1, recipe, [data], tmp_path / "early", **kw)
    early = train(None, [data], tmp_path / "early", resume=tmp_path / "early" / "last.ckpt",
                  show_progress=False)
    assert [h["step"] for h in early.history] == [2, 4, 6, 8]
    # a checkpoint that does not name its folders, or names ones gone, is refused
    state = torch.load(ckpt, weights_only=True)
    state.pop("val")
    state.pop("sha256")  # as one written before the checkpoint held either
    torch.save(state, tmp_path / "old.ckpt")
    with pytest.raises(InputError, match="give the --val folders it was validated on"):
        train(None, [data], tmp_path / "s", resume=tmp_path / "old.ckpt", show_progress=False)
    moved = tmp_path / "moved"
    val.rename(moved)
    with pytest.raises(InputError, match=f"{val} no longer there"):
        train(None, [data], tmp_path / "s", resume=ckpt, show_progress=False)
    assert not (tmp_path / "s").exists()
    # a resume into a folder holding another run's weights and log (but no checkpoint)
    (tmp_path / "e").mkdir()
    for name in ("best.safetensors", "log.jsonl"):
        (tmp_path / "e" / name).write_bytes((tmp_path / "whole" / name).read_bytes())
    with pytest.raises(InputError, match="holds an earlier run's best.safetensors"):
        train(None, [data], tmp_path / "e", resume=ckpt, val_dirs=[moved], show_progress=False)


def test_repeated_data_and_val_options_add_up() -> None:
    # "--data A --data B", as vidsr eval takes it, kept only B
    from vidsr.cli.main import build_parser

    args = build_parser().parse_args(["train", "--data", "a", "b", "--data", "c", "--val", "d",
                                      "--val", "e"])
    assert args.data == ["a", "b", "c"] and args.val == ["d", "e"]


def test_a_time_limited_run_says_it_stopped(tmp_path: Path, capsys) -> None:
    # the summary read like a finished run's
    data, _ = _tiny(tmp_path)
    out = tmp_path / "t"
    recipe = tmp_path / "r.toml"
    recipe.write_text('model = "esr-max-k3c2-x2"\nbatch = 2\nlr_patch = 6\nsteps = 50\n')
    assert main(["train", "--recipe", str(recipe), "--data", str(data), "--out", str(out),
                 "--time-limit", "0", "--no-progress"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("step 1 of 50 (stopped by --time-limit; resume with --resume "), line
    # and that command alone does it: the run's folder and data come from the checkpoint
    # (it wanted --data and --out too)
    resume = line.split("--resume ")[1].split(")")[0]
    assert main(["train", "--resume", resume, "--no-progress", "--time-limit", "0"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("step 2 of 50 ")
    data.rename(tmp_path / "moved")
    assert main(["train", "--resume", resume, "--no-progress"]) == 1
    assert "no longer there; give --data" in capsys.readouterr().err
    (tmp_path / "moved").rename(data)
    # a limit reached on the last step is a finished run (it was "stopped", with no final
    # weights)
    recipe.write_text('model = "esr-max-k3c2-x2"\nbatch = 2\nlr_patch = 6\nsteps = 1\n')
    assert main(["train", "--recipe", str(recipe), "--data", str(data), "--out",
                 str(tmp_path / "u"), "--time-limit", "0", "--no-progress"]) == 0
    assert (tmp_path / "u" / "final.safetensors").is_file()
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("step 1: ")


def test_a_run_that_failed_after_its_first_validation_can_be_resumed(tmp_path: Path,
                                                                     monkeypatch) -> None:
    # the step-0 validation wrote best.safetensors and the log but no checkpoint: a rerun was
    # refused as "an earlier run's" files, with nothing to resume
    import vidsr.train.loop as loop

    data, val = _tiny(tmp_path)
    start = tmp_path / "start.safetensors"
    from vidsr.weights import save_weights

    save_weights(load_model("esr-max-k3c2-x2", pretrained=False), parse_name("esr-max-k3c2-x2"),
                 start)
    recipe = Recipe(model="esr-max-k3c2-x2", steps=4, batch=2, lr_patch=6, val_every=2,
                    init="weights", init_weights=str(start))

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(loop, "_loss", fail)
    with pytest.raises(RuntimeError):
        train(recipe, [data], tmp_path / "g", val_dirs=[val], show_progress=False)
    monkeypatch.undo()
    with pytest.raises(InputError, match="holds a training run already"):
        train(recipe, [data], tmp_path / "g", val_dirs=[val], show_progress=False)
    done = train(None, [data], tmp_path / "g", resume=tmp_path / "g" / "last.ckpt",
                 show_progress=False)
    assert [h["step"] for h in done.history] == [0, 2, 4]


def test_channels_take_a_grayscale_image_as_its_own_three_planes(tmp_path: Path) -> None:
    # a gray file in a channels run raised numpy's AxisError out of vidsr train (a traceback)
    folder = tmp_path / "hr"
    folder.mkdir()
    gray = np.random.default_rng(3).integers(0, 256, (40, 50), dtype=np.uint8)
    cv2.imwrite(str(folder / "g.png"), gray)
    hrs, lrs = build_planes([folder], 2, None, channels=True)
    assert len(hrs) == 4    # R, G and B gray images, then the image itself
    want_hr, want_lr = degrade(np.repeat(gray[..., None], 3, axis=2), 2)
    for c in range(3):
        assert np.array_equal(hrs[c], want_hr) and np.array_equal(lrs[c], want_lr)
    assert np.array_equal(hrs[3], gray)     # the gray image itself: its values as Y


def test_a_ship_or_record_that_cannot_write_the_manifest_changes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # the copy over the shipped weights came first: with the manifest unwritable the model then
    # failed its sha256 check ("reinstall vidsr"), after a traceback

    data, val = _tiny(tmp_path)
    recipe = Recipe(model="esr-max-k3c2-x2", steps=2, batch=2, lr_patch=8)
    first = train(recipe, [data], tmp_path / "a", show_progress=False)
    second = train(recipe.replace(seed=1), [data], tmp_path / "b", show_progress=False)
    pkg = _empty_package(tmp_path, monkeypatch)
    assert main(["train", "--ship", str(first.best)]) == 0
    before = {p.name: p.read_bytes() for p in pkg.iterdir()}
    real_replace = os.replace

    def no_manifest(src, dst):
        if Path(dst).name == "manifest.json":
            raise OSError(30, "Read-only file system")
        return real_replace(src, dst)

    real_write = Path.write_text

    def no_manifest_write(self, *a, **kw):
        if self.name == "manifest.json":
            raise OSError(30, "Read-only file system")
        return real_write(self, *a, **kw)

    monkeypatch.setattr(os, "replace", no_manifest)     # the manifest file itself read-only
    monkeypatch.setattr(Path, "write_text", no_manifest_write)
    capsys.readouterr()
    assert main(["train", "--ship", str(second.best)]) == 1
    assert "cannot ship esr-max-k3c2-x2" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in pkg.iterdir()} == before    # nothing left behind
    assert load_model("esr-max-k3c2-x2") is not None    # still passes its sha256 check
    assert main(["eval", "--model", "esr-max-k3c2-x2", "--data", str(val), "--record"]) == 1
    assert "cannot write" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in pkg.iterdir()} == before


def _run_beside_an_empty_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN202
    """A 2-step esr-max-k3c2-x2 run and an ``_empty_package``; returns the run's result and its
    val folder."""
    data, val = _tiny(tmp_path)
    result = train(Recipe(model="esr-max-k3c2-x2", steps=2, batch=2, lr_patch=8), [data],
                   tmp_path / "run", show_progress=False)
    _empty_package(tmp_path, monkeypatch)
    return result, val


def _empty_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder standing in for the package's weights (``--ship`` and ``--record``
    write there, and its manifest is the registry's)."""
    import vidsr.weights as weights

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    monkeypatch.setattr(weights, "WEIGHTS_DIR", pkg)
    monkeypatch.setattr(weights, "MANIFEST", pkg / "manifest.json")
    return pkg


def test_a_model_shipped_outside_the_table_is_listed(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys) -> None:
    # `vidsr train --ship` registered ecbsr-m2c4-x3, eval --record measured it, and
    # `vidsr models` (and the README table made from it) never showed it
    import json

    result, val = _run_beside_an_empty_package(tmp_path, monkeypatch)
    assert main(["train", "--ship", str(result.best)]) == 0
    assert main(["eval", "--model", "esr-max-k3c2-x2", "--data", str(val), "--record"]) == 0
    capsys.readouterr()
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["esr-max-k3c2-x2"]["weights"] == "shipped"
    assert rows["esr-max-k3c2-x2"]["params"] == 2 * 2 * 2 * 3 * 3
    assert "esr-max-k7c4-x2" in rows and "bicubic-x2" in rows


def test_ship_says_when_the_recipe_it_records_is_not_the_runs(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              caplog) -> None:
    # the registry named recipes/<name>.toml for weights from any recipe, or from none there
    from vidsr.train.ship import ship

    result, _val = _run_beside_an_empty_package(tmp_path, monkeypatch)
    with caplog.at_level("WARNING"):
        ship(result.best)
    assert "recipes/esr-max-k3c2-x2.toml, which does not exist" in caplog.text
    for steps, said in ((20000, "steps 20000 there, 2 in the run"), (2, "")):
        recipe = tmp_path / f"r{steps}.toml"
        recipe.write_text(f'model = "esr-max-k3c2-x2"\nsteps = {steps}\nbatch = 2\n'
                          'lr_patch = 8\n')
        caplog.clear()
        with caplog.at_level("WARNING"):
            ship(result.best, str(recipe))
        assert said in caplog.text if said else caplog.text == ""
