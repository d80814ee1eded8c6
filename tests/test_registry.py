"""Model names, aliases and the table."""

from __future__ import annotations

import pytest

from vidsr import ModelNotFoundError, parse_name
from vidsr.registry import FAMILIES, SCALES, count_params, known_names, macs_per_pixel, table


@pytest.mark.parametrize("name", [
    "ecbsr-m4c16-x2", "ecbsr-m8c32-x4", "esr-max-k7c4-x3", "esr-tm-k5c16-x2",
    "esr-tr-k3c1-x4", "esr-cnn-c6d3s15-x2", "bicubic-x3",
])
def test_canonical_names_round_trip(name: str) -> None:
    assert parse_name(name).name == name


@pytest.mark.parametrize("alias,name", [
    ("ecbsr-x2", "ecbsr-m4c16-x2"), ("ecbsr-x4", "ecbsr-m4c16-x4"),
    ("esr-max-x3", "esr-max-k7c4-x3"), ("esr-tm-x2", "esr-tm-k7c16-x2"),
    ("esr-tr-x2", "esr-tr-k7c12-x2"), ("esr-cnn-x2", "esr-cnn-c6d3s15-x2"),
    ("ECBSR-X2", "ecbsr-m4c16-x2"),
])
def test_aliases_resolve(alias: str, name: str) -> None:
    spec = parse_name(alias)
    assert spec.name == name
    assert spec.alias == alias.lower()


@pytest.mark.parametrize("bad", ["ecbsr-x5", "esr-max-k6c4-x2", "fsrcnn-x2", "ecbsr-m4c0-x2", "",
                                 "ecbsr-m99999c99999-x2", "esr-tm-k99c4-x2"])  # no huge allocs
def test_bad_names_raise(bad: str) -> None:
    with pytest.raises(ModelNotFoundError):
        parse_name(bad)


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(ModelNotFoundError, match="did you mean.*ecbsr-x2"):
        parse_name("ecbsr-2x")


def test_a_missing_weights_path_is_named_as_a_file() -> None:
    # -m /tmp/nosuch.pt or -m runs/x/best was "unknown model '/tmp/nosuch.pt'", as for a name
    for path in ("/tmp/nosuch.pt", "runs/x/best", "model.onnx", "C:\\w\\m"):
        with pytest.raises(ModelNotFoundError, match=r"^no such weights file: "):
            parse_name(path)


def test_table_has_every_family_at_every_scale() -> None:
    specs = table()
    for family in FAMILIES:
        assert {s.scale for s in specs if s.family == family} == set(SCALES)
    assert "ecbsr-m4c8-x2" in known_names()


def test_parameter_counts_by_hand() -> None:
    # ECBSR deploy: 3x3 convs 1->16, 4 x 16->16, 16->4 with biases; PReLU 5 x 16 slopes.
    convs = (9 * 16 + 16) + 4 * (9 * 256 + 16) + (9 * 16 * 4 + 4)
    assert count_params(parse_name("ecbsr-m4c16-x2").build()) == convs + 5 * 16
    assert count_params(parse_name("esr-max-k7c4-x2").build()) == 49 * 4 * 4
    assert count_params(parse_name("esr-tm-k7c16-x3").build()) == 49 * 2 * 9 * 16
    cnn = (25 * 6 + 6) + (9 * 6 * 15 + 15) + 9 * 15 * 2 * 4 * 6  # D=6, S=15, C=6, s=2
    assert count_params(parse_name("esr-cnn-c6d6s15-x2").build()) == cnn


def test_macs_per_pixel() -> None:
    spec = parse_name("ecbsr-m4c8-x2")
    assert macs_per_pixel(spec.build(), 2) == 9 * (8 + 4 * 64 + 8 * 4)
    spec = parse_name("esr-max-k7c4-x2")
    assert macs_per_pixel(spec.build(), 2) == 49 * 16
    # ECBSR-M4C8 costs about 40% of the eSR-CNN C6 D3 S15 it is meant to match.
    ratio = macs_per_pixel(parse_name("ecbsr-m4c8-x2").build(), 2) / macs_per_pixel(
        parse_name("esr-cnn-x2").build(), 2)
    assert 0.3 < ratio < 0.45


def test_training_form_only_for_ecbsr() -> None:
    from vidsr.models import ECBSR, PlainSR
    spec = parse_name("ecbsr-m2c8-x3")
    assert isinstance(spec.build(training=True), ECBSR)
    assert isinstance(spec.build(), PlainSR)


def test_specs_hash_by_what_they_name() -> None:
    # hash(spec) was "unhashable type: 'dict'", and the arch dict given stayed shared
    from vidsr.registry import ModelSpec

    arch = {"m": 4, "c": 16}
    spec = ModelSpec("ecbsr", 2, arch)
    arch["m"] = 99
    assert spec.name == "ecbsr-m4c16-x2"
    assert {parse_name("ecbsr-x2"): "x"}[spec] == "x" and len({spec, parse_name("ecbsr-x2")}) == 1
