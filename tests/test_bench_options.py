"""`alae-fast bench` defects from a user trial: an empty --json, a run stopped before its first
case, ALAE_FAST_IMPL=ref timing the reference against itself, and the OpenMP wait the report
ran under.

Nothing here times a real case: the suites are replaced by one-case fakes and ``measure`` by a
function that returns fixed figures or raises Ctrl-C.
"""

import json
import sys
import types

import pytest
import torch

import alae_fast
import alae_fast.bench.report as report
from alae_fast.bench.context import format_header, fused_kernels, omp_wait, run_context
from alae_fast.bench.harness import Case, Result, Target
from alae_fast.cli import main as cli_main
from alae_fast.ops import _dispatch


@pytest.fixture
def one_case(monkeypatch):
    """bias_act replaced by a suite of one case with a target, so a run has something to check."""
    module = types.ModuleType("_fake_bench_options")
    module.cases = lambda device, quick=False, compile=True: [
        Case("bias_act", "case", {"fused": lambda: None, "ref": lambda: None}, device,
             targets=[Target(">= 1.5x faster than eager ref", "fused", "ref", 1 / 1.5)])]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(report.SUITES, "bias_act", module.__name__)


def _measure(monkeypatch, fn):
    monkeypatch.setattr(report, "measure", fn)


def _fixed(case, rounds):
    return Result(case, {"fused": 1e-3, "ref": 2e-3}, {"fused": 1.0, "ref": 2.0})


def _refuse(case, rounds):
    raise AssertionError("measured although the run was refused")


# an empty --json ----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", [[], ["--profile"]])
def test_empty_json_is_refused_up_front(mode, one_case, monkeypatch, capsys, tmp_path):
    # `--json ""` ran, wrote nothing and said nothing, exit 0: the empty string read as "no --json"
    _measure(monkeypatch, _refuse)
    import alae_fast.bench.profile as profile
    monkeypatch.setattr(profile, "iteration_breakdown", lambda *a, **k: _refuse(None, None))
    monkeypatch.chdir(tmp_path)
    argv = ["bench", *(mode or ["--device", "cpu", "--ops", "bias_act"]), "--quick", "--json", ""]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["alae-fast bench: error: --json '' is empty; expected the path of a file to write"], err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(report.UserError, match="--json '' is empty"):
        report.check_json_path("")


def test_empty_json_with_list_is_refused_as_unused(capsys):
    with pytest.raises(SystemExit) as e:
        report.main(["--list", "--json", ""])
    assert e.value.code == 2 and "--json: not used by --list" in capsys.readouterr().err


# stopped before the first case -------------------------------------------------------------------

def test_ctrl_c_before_any_case_claims_no_verdict(one_case, monkeypatch, capsys, tmp_path):
    # wrote "targets_passed": true beside empty results, and printed an empty table followed by
    # "the cases above are the ones measured before Ctrl-C"
    def interrupt(case, rounds):
        raise KeyboardInterrupt

    _measure(monkeypatch, interrupt)
    target = tmp_path / "r.json"
    assert report.main(["--device", "cpu", "--ops", "bias_act", "--json", str(target)]) == 130
    data = json.loads(target.read_text())
    assert data["interrupted"] is True and data["results"] == [] and data["targets"] == []
    assert data["targets_passed"] is None
    cap = capsys.readouterr()
    assert "nothing was measured and no target checked" in cap.out
    assert "cases above" not in cap.out and "fused ms" not in cap.out  # no empty table
    assert '"targets_passed": null' in cap.out
    assert "interrupted before any case was measured" in cap.err and "Traceback" not in cap.err


def test_profile_stopped_before_its_first_profile_says_the_json_was_not_written(monkeypatch, capsys, tmp_path):
    import alae_fast.bench.profile as profile

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(profile, "iteration_breakdown", interrupt)
    target = tmp_path / "p.json"
    assert report.main(["--profile", "--quick", "--json", str(target)]) == 130
    assert not target.exists()
    assert f"{target} not written: Ctrl-C came before the first profile was made" in capsys.readouterr().out


def test_targets_passed_is_null_when_nothing_was_checked():
    assert report.targets_passed([]) is None
    assert report.targets_passed([{"status": "SKIP"}]) is None
    assert report.targets_passed([{"status": "SKIP"}, {"status": "PASS"}]) is True
    assert report.targets_passed([{"status": "PASS"}, {"status": "FAIL"}]) is False


def test_a_measured_run_still_gives_its_verdict(one_case, monkeypatch, tmp_path, capsys):
    _measure(monkeypatch, _fixed)
    target = tmp_path / "r.json"
    assert report.main(["--device", "cpu", "--ops", "bias_act", "--json", str(target)]) == 0
    assert json.loads(target.read_text())["targets_passed"] is True
    assert "nothing was measured" not in capsys.readouterr().out


# ALAE_FAST_IMPL=ref ---------------------------------------------------------------------------------

def test_impl_ref_is_warned_up_front_and_recorded(one_case, monkeypatch, capsys, tmp_path):
    # timed the reference against itself under "fused" and "ref/fused"; only `impl=ref` said so
    monkeypatch.setattr(_dispatch, "_FORCE_REF", True)  # what the ops read at import
    seen = []

    def measure(case, rounds):
        seen.append(capsys.readouterr().err)
        return _fixed(case, rounds)

    _measure(monkeypatch, measure)
    target = tmp_path / "r.json"
    assert report.main(["--device", "cpu", "--ops", "bias_act", "--json", str(target)]) == 0
    warning = [ln for ln in seen[0].splitlines() if ln.startswith("alae-fast bench: warning:")]
    assert len(warning) == 1 and "fused kernels are not being measured because ALAE_FAST_IMPL=ref" in warning[0]
    ctx = json.loads(target.read_text())["context"]
    assert ctx["fused_kernels_measured"] is False and ctx["warnings"] == [warning[0].split("warning: ", 1)[1]]


def test_impl_ref_in_the_environment_warns_in_a_real_process(tmp_path):
    import subprocess

    env = dict(__import__("os").environ, ALAE_FAST_IMPL="ref")
    run = subprocess.run([sys.executable, "-m", "alae_fast", "bench", "--device", "cpu", "--ops", "bias_act",
                          "--quick", "--no-compile", "--list"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = [ln for ln in run.stderr.splitlines() if "warning:" in ln]
    assert len(lines) == 1 and "because ALAE_FAST_IMPL=ref" in lines[0], run.stderr


def test_fused_kernels_names_every_reason_the_kernels_are_not_timed(monkeypatch):
    monkeypatch.setattr(_dispatch, "_FORCE_REF", False)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    built = {"loaded": True, "cuda": True, "error": None}
    assert fused_kernels(cpu, built) is None and fused_kernels(cuda, built) is None
    assert "did not load (no _C.so)" in fused_kernels(cpu, dict(built, loaded=False, error="no _C.so"))
    assert "no CUDA kernels" in fused_kernels(cuda, dict(built, cuda=False))
    assert fused_kernels(cpu, dict(built, cuda=False)) is None
    monkeypatch.setattr(_dispatch, "_FORCE_REF", True)
    assert "ALAE_FAST_IMPL=ref" in fused_kernels(cpu, built)
    ctx = run_context([], cpu)
    assert ctx["fused_kernels_measured"] is False and len(ctx["warnings"]) == 1


def test_bad_impl_is_refused_by_the_report_too(monkeypatch, capsys):
    # `python benchmarks/report.py` does not pass through the `alae-fast` check
    _measure(monkeypatch, _refuse)
    monkeypatch.setenv("ALAE_FAST_IMPL", "fast")
    assert report.main(["--device", "cpu", "--ops", "bias_act"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["alae-fast bench: error: ALAE_FAST_IMPL must be 'auto' or 'ref'; got 'fast'"], err


# the OpenMP wait ----------------------------------------------------------------------------------

def test_omp_wait_says_the_wait_and_who_chose_it():
    busy = {"others": 3, "threads": 2, "cpus": 2, "sleep": True}
    idle = {"others": 0, "threads": 2, "cpus": 2, "sleep": False}
    w = omp_wait({"GOMP_SPINCOUNT": "0"}, busy)
    assert w["wait"] == "sleep at once (GOMP_SPINCOUNT=0)" and w["set_by"] == "alae_fast"
    assert w["why"] == ("chosen by alae_fast at import: 3 other runnable threads seen beside 2 OpenMP threads "
                        "on 2 usable cores")
    assert w["import_check"] == busy and w["GOMP_SPINCOUNT"] == "0" and w["OMP_WAIT_POLICY"] is None
    w = omp_wait({}, idle)
    assert w["wait"].startswith("libgomp's default: spin") and w["set_by"] == "alae_fast"
    assert w["why"].endswith("so the cores did not look shared")
    assert "could not be counted" in omp_wait({}, dict(idle, others=None))["why"]
    # the same GOMP_SPINCOUNT=0, set by the user: alae_fast did not look
    w = omp_wait({"GOMP_SPINCOUNT": "0"}, None)
    assert w["set_by"] == "environment" and "before alae_fast was imported" in w["why"]
    assert omp_wait({"OMP_WAIT_POLICY": "PASSIVE"}, None)["wait"] == "sleep at once (OMP_WAIT_POLICY=PASSIVE)"
    assert omp_wait({"GOMP_SPINCOUNT": "10000", "OMP_WAIT_POLICY": "passive"}, None)["wait"] == (
        "spin 10000 rounds, then sleep (GOMP_SPINCOUNT=10000)")
    assert omp_wait({"ALAE_FAST_OMP_SPIN": "keep"}, None)["set_by"] == "ALAE_FAST_OMP_SPIN=keep"
    assert omp_wait({}, None)["set_by"] == "torch imported first"


def test_header_and_json_say_the_omp_wait(one_case, monkeypatch, tmp_path, capsys):
    # the JSON showed env GOMP_SPINCOUNT only, the same for alae_fast's choice and a user's
    _measure(monkeypatch, _fixed)
    target = tmp_path / "r.json"
    assert report.main(["--device", "cpu", "--ops", "bias_act", "--json", str(target)]) == 0
    wait = omp_wait()
    assert json.loads(target.read_text())["context"]["omp_wait"] == json.loads(json.dumps(wait))
    out = capsys.readouterr().out
    assert f"  openmp wait: {wait['wait']}; {wait['why']}" in out.split("\n\n")[0]
    assert wait["import_check"] == alae_fast._omp.choice()


def test_header_without_omp_wait_still_formats():
    ctx = run_context([], torch.device("cpu"))
    del ctx["omp_wait"]
    assert "openmp wait" not in format_header(ctx)
