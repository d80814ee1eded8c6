"""The README's model table is generated from the registry and must not go stale."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_readme_model_table_matches_registry() -> None:
    script = ROOT / "scripts" / "update_readme.py"
    spec = importlib.util.spec_from_file_location("update_readme", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.render() in (ROOT / "README.md").read_text(), \
        "README model table is stale: run python scripts/update_readme.py"


def test_the_readme_run_command_upscales_the_bundled_sample(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """The README's one command for the bundled sample, as written there, run in-process on a
    copy of the checkout's samples/ (it writes out.mp4 in the working folder)."""
    import re
    import shutil

    import av

    from vidsr.cli.main import main

    readme = (ROOT / "README.md").read_text()
    command = re.search(r"## Upscale the bundled sample\s+```bash\n(vidsr [^\n]+)\n```", readme)
    assert command, "the README lost its sample command"
    args = command.group(1).split()[1:]
    assert args[0] == "samples/sample.mp4" and "out.mp4" in args
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    monkeypatch.chdir(tmp_path)
    assert main([*args, "-q"]) == 0
    with av.open("out.mp4") as out, av.open("samples/sample.mp4") as src:
        assert [s.type for s in out.streams] == [s.type for s in src.streams]
        v, sv = out.streams.video[0], src.streams.video[0]
        assert (v.width, v.height) == (2 * sv.width, 2 * sv.height)
        assert out.streams.audio[0].codec_context.name == "aac"
    assert "96 frames" in capsys.readouterr().out


def test_bundled_samples_are_small_clips_with_sound() -> None:
    import av

    for name, seconds in (("sample.mp4", 4), ("photos.mp4", 6)):
        path = ROOT / "samples" / name
        assert path.stat().st_size < 2_000_000
        with av.open(str(path)) as c:
            assert c.streams.video[0].codec_context.name == "h264"
            assert c.streams.audio[0].codec_context.name == "aac"
            assert abs(c.duration / 1e6 - seconds) < 0.1


def test_the_readme_library_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture) -> None:
    """The README's first library block, as written, on a copy of samples/."""
    import re
    import shutil

    import numpy as np

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Library\s+```python\n(.*?)```", readme, re.S)
    assert block, "the README lost its library example"
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block.group(1), "README.md (Library)", "exec"), scope)  # noqa: S102
    assert scope["big"].shape == (240, 320, 3) and scope["big"].dtype == np.uint8
    assert scope["summary"].frames == 24 and (tmp_path / "sample_x2.mp4").is_file()
    assert scope["y2"].shape == (360, 640) and scope["frame"].index == 11
    assert "24 frames in" in capsys.readouterr().out
