"""``vidsr bench`` runs on tiny sizes and reports what it promises (no timing asserts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidsr.cli.main import main
from vidsr.engine.bench import BenchConfig, format_report, parse_size, run
from vidsr.errors import InputError


def test_bench_cli_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bench.json"
    rc = main(["bench", "--models", "esr-max-k3c2-x2", "ecbsr-m2c4-x2", "--sizes", "64x48",
               "--frames", "1", "--device", "cpu", "--e2e-frames", "3", "--e2e-size", "96x64",
               "--e2e-model", "esr-max-k3c2-x2", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "eager/fast" in text and "encoder fps" in text
    report = json.loads(out.read_text())
    rows = report["sr"]
    assert [(r["model"], r["input"], r["device"]) for r in rows] == [
        ("esr-max-k3c2-x2", "64x48", "cpu"), ("ecbsr-m2c4-x2", "64x48", "cpu")]
    for r in rows:
        assert r["eager_ms"] > 0 and r["fast_ms"] > 0
        # the ratio comes from unrounded medians; tiny times round to 0.01 ms
        assert r["speedup"] == pytest.approx(r["eager_ms"] / r["fast_ms"], rel=0.1, abs=0.1)
        assert r["fast_backend"] != "eager"
    (e2e,) = report["e2e"]
    assert e2e["output"] == "192x128" and e2e["frames"] == 3
    assert e2e["ratio"] == pytest.approx(e2e["pipeline_fps"] / e2e["encoder_only_fps"], rel=0.01)
    assert e2e["bound_by"] in ("decode", "sr", "encode")
    assert "cpu" in report["machine"] and report["machine"]["torch_threads"] >= 1


def test_bench_library_without_e2e() -> None:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        report = run(BenchConfig(models=("bicubic-x3",), sizes=("32x24",), frames=1,
                                 devices=("cpu",), e2e_frames=0))
        assert torch.get_num_threads() == 2  # the caller's, as it was (the rows left it at 1)
    finally:
        torch.set_num_threads(before)
    assert report["e2e"] == [] and report["sr"][0]["scale"] == 3
    assert "bicubic-x3" in format_report(report)
    # a machine busy with other work is named under the header
    cores = report["machine"]["cpu_count"]
    report["machine"]["load_average_start"] = [float(cores), 0.0, 0.0]
    assert f"is at or above the {cores} cores" in format_report(report)
    report["machine"]["load_average_start"] = [cores - 0.5, 0.0, 0.0]
    assert "at or above" not in format_report(report)


def test_bench_onnx_column_runs_the_exported_model(tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    report = run(BenchConfig(models=("esr-max-k3c2-x2", "bicubic-x2"), sizes=("40x24",),
                             frames=1, devices=("cpu",), e2e_frames=0, onnx=True))
    net, bicubic = report["sr"]
    assert net["onnxruntime_ms"] > 0 and net["onnxruntime_threads"] >= 1
    assert net["onnxruntime_vs_fast"] == pytest.approx(net["onnxruntime_ms"] / net["fast_ms"],
                                                       rel=0.1, abs=0.1)
    assert "onnxruntime_ms" not in bicubic
    assert "ort/fast" in format_report(report)


def test_parse_size() -> None:
    assert parse_size("1280x720") == (1280, 720)
    assert parse_size("540p") == (960, 540)
    with pytest.raises(InputError):
        parse_size("big")
    assert main(["bench", "--sizes", "nonsense", "--no-e2e", "--device", "cpu"]) == 1


def test_kernels_flag_delegates(monkeypatch: pytest.MonkeyPatch) -> None:
    import vidsr.kernels.bench as kbench

    seen = {}

    def fake_run(args) -> int:  # noqa: ANN001
        seen.update(vars(args))
        return 0

    monkeypatch.setattr(kbench, "run", fake_run)
    assert main(["bench", "--kernels", "--models", "ecbsr-m4c16-x2", "--iters", "7",
                 "--no-compile", "--tuning", '{"ecbsr-m4c16-x2": {"per_sm": 2}}']) == 0
    assert seen["models"] == ["ecbsr-m4c16-x2"] and seen["iters"] == 7 and seen["no_compile"]
    assert seen["size"] == "1920x1080"
    assert kbench.load_tuning(seen["tuning"]) == {"ecbsr-m4c16-x2": {"per_sm": 2}}


def test_kernel_tuning_from_json_or_file(tmp_path: Path) -> None:
    from vidsr.errors import VidsrError
    from vidsr.kernels.bench import load_tuning

    assert load_tuning(None) == {}
    f = tmp_path / "tuning.json"
    f.write_text('{"ecbsr-m4c8-x2": {"num_warps": 4, "unroll": true}}')
    assert load_tuning(str(f)) == {"ecbsr-m4c8-x2": {"num_warps": 4, "unroll": True}}
    # an alias is keyed as the model it names, as the rows are (it matched no row before)
    assert load_tuning('{"ECBSR-x2": {"per_sm": 2}}') == {"ecbsr-m4c16-x2": {"per_sm": 2}}
    for bad in ("{not json", '{"ecbsr-m4c8-x2": 4}', "[1, 2]", '{"ecbsr-q9": {}}',
                '{"ecbsr-x2": {}, "ecbsr-m4c16-x2": {}}', '{"chroma-bicubic-x2": {}}',
                # a keyword the kernel does not take was a TypeError mid-run, after other
                # models had been timed; a model no kernel runs took any tuning
                '{"esr-max-x2": {"bogus": 1}}', '{"ecbsr-x2": {"block_h": 8}}',
                '{"esr-cnn-x2": {"num_warps": 4}}'):
        with pytest.raises(VidsrError, match="--tuning"):
            load_tuning(bad)
    assert load_tuning('{"esr-tm-x2": {"block_h": 8, "num_warps": 8}}') == \
        {"esr-tm-k7c16-x2": {"block_h": 8, "num_warps": 8}}


def test_tuning_keywords_are_the_kernels_own() -> None:
    import inspect

    pytest.importorskip("triton")
    from vidsr.kernels.bench import TUNING_KEYWORDS
    from vidsr.kernels.ecbsr import FusedPlainSR
    from vidsr.kernels.edgesr import FusedEdgeSR

    for kernel, cls in (("ecbsr", FusedPlainSR), ("edgesr", FusedEdgeSR)):
        params = list(inspect.signature(cls.__init__).parameters)[2:]  # after self, model
        assert tuple(params) == TUNING_KEYWORDS[kernel], kernel


def test_panes_bench_runs_every_pane_on_the_same_frame(capsys) -> None:
    from vidsr.cli.main import main

    assert main(["bench", "--panes", "--models", "bicubic-x2", "esr-max-k3c2-x2",
                 "--sizes", "48x32", "--frames", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "2 panes, 48x32 -> x2 on cpu" in out
    assert "bicubic-x2" in out and "esr-max-k3c2-x2" in out and "display rate" in out


def test_panes_bench_report() -> None:
    from vidsr.engine.panes import panes_bench

    report = panes_bench(("bicubic-x3",), (20, 16), frames=3, device="cpu")
    assert report["scale"] == 3 and report["frames"] == 3
    (pane,) = report["panes"]
    assert pane["model"] == "bicubic-x3" and pane["sr_ms"] > 0 and report["display_fps"] > 0


def test_train_bench_times_both_ecbsr_forms(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "train.json"
    rc = main(["bench", "--train", "--models", "ecbsr-m1c4-x2", "ecbsr-m2c4-x3", "--batch", "2",
               "--patch", "8", "--steps", "1", "--device", "cpu", "--json", str(out)])
    assert rc == 0
    assert "merged ms/step" in capsys.readouterr().out
    (report,) = json.loads(out.read_text())
    assert report["device"] == "cpu" and (report["batch"], report["lr_patch"]) == (2, 8)
    assert [r["model"] for r in report["rows"]] == ["ecbsr-m1c4-x2", "ecbsr-m2c4-x3"]
    for r in report["rows"]:
        assert r["branches_ms"] > 0 and r["merged_ms"] > 0
        assert r["speedup"] == pytest.approx(r["branches_ms"] / r["merged_ms"], rel=0.1, abs=0.1)


def test_train_bench_refuses_a_model_without_a_training_form(capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "--train", "--models", "esr-max-k3c2-x2", "--steps", "1"]) != 0
    assert "ECBSR" in capsys.readouterr().err


def test_bad_end_to_end_settings_are_refused_before_any_timing(capsys) -> None:
    # each was found only after every SR row had been timed (minutes), the timings lost
    base = ["bench", "--quick", "--models", "esr-max-x2", "--sizes", "160x90"]
    for extra, said in ((["--e2e-size", "10x"], "must look like WxH"),
                        (["--e2e-model", "nosuch"], "unknown model"),
                        (["--codec", "nosuch"], "is not available"),
                        (["--crf", "-40"], "outside libx264's range"),
                        (["--preset", "bogus"], "--preset bogus"),
                        (["--e2e-frames", "-3"], "--e2e-frames must be >= 0"),
                        (["--sizes", "99999x99999"], "at most 16384 pixels")):
        assert main([*base, *extra]) == 1, extra
        err = capsys.readouterr().err
        assert said in err and "timing" not in err, (extra, err)


@pytest.mark.parametrize("argv, said", [
    (["--kernels", "--panes"], "not allowed with"),
    (["--kernels", "--batch", "8"], "--batch does not apply to --kernels"),
    (["--panes", "--iters", "4"], "--iters does not apply to --panes"),
    (["--train", "--sizes", "64x64"], "--sizes does not apply to --train"),
    (["--sizes", "64x48", "--steps", "3"], "--steps does not apply to the default SR run"),
    (["--panes", "--e2e-frames", "3"], "--e2e-frames does not apply to --panes"),
    (["--no-e2e", "--e2e-frames", "3"], "contradict"),
    (["--no-e2e", "--codec", "nosuch"], "--codec does not apply with --no-e2e"),
    (["--e2e-frames", "0", "--e2e-size", "1x1"], "--e2e-size does not apply with --e2e-frames 0"),
    (["--no-e2e", "--crf", "30"], "--crf does not apply with --no-e2e"),
    (["--kernels", "--sizes", "64x48", "128x96"], "one --sizes size"),
    (["--kernels", "--device", "cpu"], "CUDA only"),
    (["--train", "--batch", "0"], "--batch must be at least 1"),
])
def test_an_option_another_mode_reads_is_refused(argv, said, capsys) -> None:
    # each was accepted and silently ignored: `--kernels --batch 8`, `--panes --iters 4`,
    # `--no-e2e --e2e-frames 30`; `--kernels --panes` ran the kernels alone
    try:
        rc = main(["bench", "--models", "bicubic-x2", *argv])
    except SystemExit as usage:  # argparse's own refusals exit from the parser
        rc = usage.code
    # a combination of options is a usage error (status 2, as argparse's own), a value out
    # of range an error (1)
    assert rc == (1 if "at least" in said else 2), rc
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and said in err[0], err


def test_panes_bench_times_every_size_and_names_mixed_scales(tmp_path: Path, capsys) -> None:
    # only the first --sizes entry was timed, and a x4 pane beside a x2 one was headed "x2"
    out = tmp_path / "panes.json"
    assert main(["bench", "--panes", "--models", "bicubic-x4", "esr-max-k3c2-x2", "--sizes",
                 "24x16", "32x24", "--frames", "1", "--device", "cpu", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "2 panes, 24x16 -> mixed scales" in text and "2 panes, 32x24 -> mixed scales" in text
    reports = json.loads(out.read_text())
    assert [r["input"] for r in reports] == ["24x16", "32x24"]
    assert all(r["scale"] is None for r in reports)
    assert [p["scale"] for p in reports[0]["panes"]] == [4, 2]


def test_panes_columns_fit_a_long_backend_name() -> None:
    from vidsr.engine.panes import format_panes

    long = "cpu-packed-bfloat16-cols2 (2 bands)"
    report = {"device": "cpu", "input": "8x8", "scale": 2, "frames": 1, "display_fps": 1.0,
              "panes": [{"model": "a-x2", "backend": long, "scale": 2, "sr_ms": 1.0,
                         "fps": 1e3},
                        {"model": "b-x2", "backend": "eager", "scale": 2, "sr_ms": 2.0,
                         "fps": 500.0}]}
    header, first, second = format_panes(report).splitlines()[1:4]
    assert header.index("SR ms") == first.index("    1.0") + 2 == second.index("    2.0") + 2


def test_bench_reports_the_model_an_alias_names(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "--models", "esr-max-x2", "--sizes", "32x24", "--frames", "1",
                 "--device", "cpu", "--no-e2e", "--json", str(out)]) == 0
    assert [r["model"] for r in json.loads(out.read_text())["sr"]] == ["esr-max-k7c4-x2"]


def test_kernels_takes_the_chroma_kernel_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # `--kernels --models chroma-bicubic-x2` (a name the kernel bench lists) was "unknown model"
    import vidsr.kernels.bench as kbench

    seen = {}
    monkeypatch.setattr(kbench, "run", lambda args: seen.update(vars(args)) or 0)
    assert main(["bench", "--kernels", "--models", "ecbsr-x2", kbench.CHROMA]) == 0
    assert seen["models"] == ["ecbsr-m4c16-x2", kbench.CHROMA] and seen["iters"] == 50


def test_bench_threads_holds_the_fast_path_to_as_many_bands(tmp_path: Path) -> None:
    # --threads 1 held eager and onnxruntime to one thread while the fast path still ran a
    # band per core: the README's "--threads 1" ratios gave vidsr a second core
    import torch

    before = torch.get_num_threads()
    try:
        report = run(BenchConfig(models=("esr-max-k3c2-x2",), sizes=("40x24",), frames=1,
                                 devices=("cpu",), e2e_frames=0, threads=1))
    finally:
        torch.set_num_threads(before)
    (row,) = report["sr"]
    assert "bands" not in row["fast_backend"] and row["eager_threads"] == 1, row
    assert "fast: 1 band)" in format_report(report)


def test_end_to_end_job_upscales_with_the_shipped_weights(monkeypatch) -> None:
    # the job ran a randomly initialised network: its output is noise, which libx264 encoded
    # about a third slower than the trained network's pictures, so pipeline and encoder fps
    # were not a real job's
    import torch

    import vidsr.engine.bench as bench
    from vidsr.api import load_model

    seen = []
    real_engine = bench.Engine
    monkeypatch.setattr(bench, "Engine",
                        lambda module, **kw: seen.append(module) or real_engine(module, **kw))
    config = BenchConfig(models=(), sizes=(), devices=("cpu",), e2e_frames=2,
                         e2e_model="esr-max-k7c4-x2", e2e_size="32x24")
    row = bench.e2e_row(config, torch.device("cpu"))
    shipped = load_model("esr-max-k7c4-x2", pretrained=True).state_dict()
    (module,) = seen
    assert all(torch.equal(t.float(), shipped[k].float()) for k, t in module.state_dict().items())
    assert row["weights"] == "shipped"


def test_end_to_end_warm_up_runs_the_chroma_path_too(monkeypatch) -> None:
    # the warm-up upscaled luma only: the chroma path's first call (on CUDA the chroma kernel's
    # compile) fell inside the timed job
    import torch

    import vidsr.engine.bench as bench
    from vidsr.engine import Engine

    calls: list[str] = []
    chroma = Engine.upscale_chroma
    monkeypatch.setattr(Engine, "upscale_chroma",
                        lambda self, *a, **k: calls.append("chroma") or chroma(self, *a, **k))
    import vidsr.pipeline as pipeline  # e2e_row imports upscale_video from it when it runs

    real = pipeline.upscale_video
    monkeypatch.setattr(pipeline, "upscale_video",
                        lambda *a, **k: calls.append("job") or real(*a, **k))
    config = BenchConfig(models=(), sizes=(), devices=("cpu",), e2e_frames=2,
                         e2e_model="esr-max-k7c4-x2", e2e_size="32x24")
    row = bench.e2e_row(config, torch.device("cpu"))
    assert "job" in calls and "chroma" in calls[:calls.index("job")], calls
    # --threads 1 holds the job to one band, as it holds the SR rows (it ran one per core)
    from dataclasses import replace

    one = bench.e2e_row(replace(config, threads=1), torch.device("cpu"))
    assert "bands" not in one["backend"], one["backend"]
    assert row["backend"]  # named either way


def test_header_counts_the_bands_the_fast_path_ran(monkeypatch) -> None:
    # held to one core (taskset -c 0) the fast path ran one band, and the header said
    # "fast: 2 bands, one per core" from os.cpu_count()
    import os

    if not hasattr(os, "sched_getaffinity") or (os.cpu_count() or 1) < 2:
        pytest.skip("needs sched_getaffinity and two cores")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    report = run(BenchConfig(models=("esr-max-k3c2-x2",), sizes=("40x24",), frames=1,
                             devices=("cpu",), e2e_frames=0))
    (row,) = report["sr"]
    assert "bands" not in row["fast_backend"], row
    text = format_report(report)
    assert "fast: 1 band, one per usable core)" in text and "(1 usable)" in text, text
