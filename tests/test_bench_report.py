"""`alae-fast bench` (alae_fast.bench.report): what --quick selects, per-case progress and
Ctrl-C, and the refusal of a bad --device or --json before anything is measured.

Nothing here times a real case: the suites are replaced by one-case fakes and ``measure`` by a
function that returns fixed figures, so every test runs in well under a second.
"""

import json
import sys
import types
from pathlib import Path

import pytest
import torch

import alae_fast.bench.report as report
from alae_fast.bench.harness import Case, Result
from alae_fast.cli import main as cli_main
from alae_fast.errors import UserError


@pytest.fixture
def fake_suites(monkeypatch):
    """Every suite of SUITES replaced by a module whose cases() returns one case named after the
    suite; returns the list of the suites whose cases() was called, in order."""
    called = []
    for op in report.SUITES:
        module = types.ModuleType(f"_fake_bench_{op}")

        def cases(device, quick=False, compile=True, op=op):
            called.append(op)
            return [Case(op, "case", {"fused": lambda: None, "ref": lambda: None}, device)]

        module.cases = cases
        monkeypatch.setitem(sys.modules, module.__name__, module)
        monkeypatch.setitem(report.SUITES, op, module.__name__)
    return called


@pytest.fixture
def fake_measure(monkeypatch):
    """``measure`` replaced by one returning fixed figures; returns the cases it was given."""
    measured = []

    def measure(case, rounds):
        measured.append(case)
        return Result(case, {"fused": 1e-3, "ref": 2e-3}, {"fused": 1.0, "ref": 2.0})

    monkeypatch.setattr(report, "measure", measure)
    return measured


def _refuse_measuring(monkeypatch):
    def measure(case, rounds):
        raise AssertionError(f"measured {case.op} {case.name} although an option was refused")

    monkeypatch.setattr(report, "measure", measure)


# --quick ---------------------------------------------------------------------------------------

def test_quick_leaves_out_the_heavy_suites_unless_named():
    selected, left_out = report.select_ops(None, quick=True)
    assert "official" not in selected and "train_load" not in selected
    assert left_out == ["official", "train_load"]
    assert set(selected) | set(left_out) == set(report.SUITES)
    # named, they run under --quick too
    assert report.select_ops(["official", "bias_act"], quick=True) == (["official", "bias_act"], [])
    assert report.select_ops(["train_load"], quick=True) == (["train_load"], [])
    # without --quick nothing is left out
    assert report.select_ops(None, quick=False) == (list(report.SUITES), [])
    assert report.select_ops([], quick=False) == (list(report.SUITES), [])
    with pytest.raises(UserError, match=r"unknown --ops \['nope'\]"):
        report.select_ops(["nope"], quick=True)


def test_quick_run_says_what_it_left_out_and_how_to_run_it(fake_suites, fake_measure, capsys):
    assert report.main(["--quick", "--device", "cpu"]) == 0
    assert "official" not in fake_suites and "train_load" not in fake_suites
    assert {c.op for c in fake_measure} == set(report.SUITES) - set(report.HEAVY)
    out = capsys.readouterr().out
    assert "left out by --quick" in out and "alae-fast bench --ops official train_load" in out
    # the table keeps its format: header, rule, one row per case
    assert "op " in out and "fused ms" in out and "ref/fused" in out
    assert report.main(["--quick", "--device", "cpu", "--ops", "official"]) == 0
    assert fake_suites[-1] == "official" and "left out" not in capsys.readouterr().out


def test_quick_list_leaves_out_the_same_suites(fake_suites, fake_measure, capsys):
    assert report.main(["--quick", "--list", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "official: case" not in out and "train_load: case" not in out and "bias_act: case" in out
    assert "--ops official train_load" in out and not fake_measure


def test_quick_alae_models_leaves_out_the_minute_long_cases():
    from alae_fast.bench import alae_models

    names = [c.name for c in alae_models.cases(torch.device("cpu"), quick=True)]
    assert len(names) == 3 and all("digits-32 lod" in n for n in names), names
    assert not any("celeba" in n or "fused resampling" in n for n in names)


# progress and Ctrl-C ------------------------------------------------------------------------------

def test_each_case_is_reported_as_soon_as_it_is_measured(fake_suites, monkeypatch, capsys):
    seen_before = []

    def measure(case, rounds):
        seen_before.append(capsys.readouterr().err)
        return Result(case, {"fused": 1e-3, "ref": 2e-3}, {"fused": 1.0, "ref": 2.0})

    monkeypatch.setattr(report, "measure", measure)
    assert report.main(["--device", "cpu", "--ops", "bias_act", "adain"]) == 0
    # the second measurement started after bias_act's figures were on stderr
    assert "bias_act case: fused 1.000 ms, ref/fused 2.00" in seen_before[1]


def test_ctrl_c_prints_what_was_measured_and_writes_it(fake_suites, monkeypatch, capsys, tmp_path):
    def measure(case, rounds):
        if case.op == "adain":
            raise KeyboardInterrupt
        return Result(case, {"fused": 1e-3, "ref": 2e-3}, {"fused": 1.0, "ref": 2.0})

    monkeypatch.setattr(report, "measure", measure)
    out_json = tmp_path / "r.json"
    rc = report.main(["--device", "cpu", "--ops", "bias_act", "adain", "upfirdn2d", "--json", str(out_json)])
    cap = capsys.readouterr()
    assert rc == 130 and "Traceback" not in cap.err and "interrupted" in cap.err
    rows = [line.split() for line in cap.out.splitlines() if line.startswith(("bias_act", "adain", "upfirdn2d"))]
    assert [r[:4] for r in rows] == [["bias_act", "case", "1.000", "2.00"]]
    assert [r["op"] for r in json.loads(out_json.read_text())] == ["bias_act"]


# bad --device ------------------------------------------------------------------------------------

@pytest.mark.skipif(torch.cuda.is_available(), reason="this torch has a usable GPU")
def test_device_cuda_without_cuda_is_one_line_exit_2(monkeypatch, capsys):
    _refuse_measuring(monkeypatch)
    assert cli_main(["bench", "--device", "cuda", "--ops", "bias_act"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("alae-fast bench: error: --device cuda"), err


@pytest.mark.parametrize("device", ["nonsense", "cuda:x", "meta"])
def test_device_that_is_not_one_is_one_line_exit_2(device, monkeypatch, capsys):
    _refuse_measuring(monkeypatch)
    assert cli_main(["bench", "--device", device, "--ops", "bias_act"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device" in err[0] and "Traceback" not in err[0], err


# bad --json --------------------------------------------------------------------------------------

def _bad_json_paths(tmp_path: Path):
    (tmp_path / "a-file").write_text("")
    paths = [(str(tmp_path), "is a folder"),
             (str(tmp_path / "missing" / "r.json"), "does not exist"),
             (str(tmp_path / "a-file" / "r.json"), "is not a folder")]
    if Path("/proc").is_dir():  # refuses files even to root, whom permission bits do not stop
        paths.append(("/proc/x.json", "cannot write a file in '/proc'"))
    return paths


def test_bad_json_is_refused_before_measuring(tmp_path, monkeypatch, capsys):
    _refuse_measuring(monkeypatch)
    for path, says in _bad_json_paths(tmp_path):
        for argv in (["--device", "cpu", "--ops", "bias_act", "--json", path], ["--profile", "--json", path]):
            assert cli_main(["bench", *argv]) == 2, argv
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith(f"alae-fast bench: error: --json {path!r}"), err
            assert says in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # the check leaves nothing behind


def test_profile_with_bad_json_profiles_nothing(tmp_path, monkeypatch, capsys):
    import alae_fast.bench.profile as profile

    def breakdown(*a, **k):
        raise AssertionError("profiled although --json was refused")

    monkeypatch.setattr(profile, "iteration_breakdown", breakdown)
    assert report.main(["--profile", "--quick", "--json", str(tmp_path)]) == 2
    assert "--json" in capsys.readouterr().err


def test_json_is_written_atomically(tmp_path):
    target = tmp_path / "r.json"
    report.write_json(target, [{"op": "x"}])
    assert json.loads(target.read_text()) == [{"op": "x"}]
    # a write that fails half way leaves the previous file whole and no temporary file
    with pytest.raises(TypeError):
        report.write_json(target, [{"op": object()}])
    assert json.loads(target.read_text()) == [{"op": "x"}]
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_good_json_is_written_at_the_end(fake_suites, fake_measure, tmp_path, capsys):
    target = tmp_path / "r.json"
    assert report.main(["--device", "cpu", "--ops", "bias_act", "--json", str(target)]) == 0
    data = json.loads(target.read_text())
    assert data == [{"op": "bias_act", "case": "case", "device": "cpu", "seconds": {"fused": 1e-3, "ref": 2e-3},
                     "ratios": {"fused": 1.0, "ref": 2.0}}]
    assert f"wrote {target}" in capsys.readouterr().out
