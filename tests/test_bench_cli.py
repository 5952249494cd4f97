"""`alae-fast bench --ops` as given on the command line, and the selections of the pytest-benchmark
suites in benchmarks/ (their `quick` and `slow` marks).

Nothing here times a case: `measure` is replaced where a run starts, and the pytest suites' marks
are read from the parameters that benchmarks/case_params.py builds for fake suites.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

import alae_fast.bench.report as report
from alae_fast.bench.harness import Case, LeftOut, Result
from alae_fast.cli import main as cli_main

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _fixed_measure(monkeypatch):
    measured = []

    def measure(case, rounds):
        measured.append((case.op, case.name))
        return Result(case, {"fused": 1e-3, "ref": 2e-3}, {"fused": 1.0, "ref": 2.0})

    monkeypatch.setattr(report, "measure", measure)
    return measured


# --ops -------------------------------------------------------------------------------------------

def test_ops_with_no_names_is_refused_naming_the_suites(monkeypatch, capsys):
    # `--ops` with nothing after it ran every suite, the heavy ones included
    measured = _fixed_measure(monkeypatch)
    for argv in (["--ops"], ["--ops", "--quick"], ["--ops", "--list"]):
        assert cli_main(["bench", "--device", "cpu", *argv]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("alae-fast bench: error: --ops was given no names"), err
        assert ", ".join(report.SUITES) in err[0]
    assert not measured
    with pytest.raises(report.UserError, match="--ops was given no names"):
        report.select_ops([], quick=False)


def test_ops_named_twice_runs_once(monkeypatch, capsys):
    # `--ops bias_act bias_act` listed and timed every case twice
    module = type(sys)("_fake_bench_twice")
    module.cases = lambda device, quick=False, compile=True: [
        Case("bias_act", name, {"fused": lambda: None, "ref": lambda: None}, device) for name in ("a", "b")]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(report.SUITES, "bias_act", module.__name__)
    measured = _fixed_measure(monkeypatch)
    assert report.select_ops(["bias_act", "adain", "bias_act"], quick=True) == (["bias_act", "adain"], [])
    assert report.main(["--device", "cpu", "--ops", "bias_act", "bias_act"]) == 0
    assert measured == [("bias_act", "a"), ("bias_act", "b")]
    cap = capsys.readouterr()
    assert "--ops named bias_act more than once; each suite runs once" in cap.err
    assert report.main(["--device", "cpu", "--list", "--ops", "bias_act", "bias_act"]) == 0
    assert capsys.readouterr().out.count("bias_act: a [") == 1


def test_ops_takes_the_ops_whose_cases_live_in_another_suite(monkeypatch, capsys):
    # the report's rows name instance_norm_stats and modulate_weight, which --ops refused as unknown
    module = type(sys)("_fake_bench_adain")
    module.cases = lambda device, quick=False, compile=True: [
        Case(op, "c", {"fused": lambda: None, "ref": lambda: None}, device) for op in ("adain", "instance_norm_stats")]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(report.SUITES, "adain", module.__name__)
    measured = _fixed_measure(monkeypatch)
    assert report.select_ops(["instance_norm_stats", "adain", "modulate_weight"], quick=True) == (
        ["adain", "modulated_conv2d"], [])
    assert report.main(["--device", "cpu", "--ops", "instance_norm_stats"]) == 0
    assert measured == [("adain", "c"), ("instance_norm_stats", "c")]
    assert "instance_norm_stats's cases are in the adain suite, which runs whole" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        report.main(["--device", "cpu", "--ops", "instance_norm"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unknown --ops ['instance_norm']" in err and "(or instance_norm_stats, modulate_weight)" in err, err
    assert set(report.PART_OF.values()) <= set(report.SUITES)


# the pytest-benchmark suites' selections -----------------------------------------------------------

@pytest.fixture(scope="module")
def case_params():
    spec = importlib.util.spec_from_file_location("_bench_case_params", BENCHMARKS / "case_params.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_cases(suite_module: str):
    """A cases() of ``suite_module`` (a value of report.SUITES): the suite's own op and a second
    one (as adain has instance_norm_stats), the quick run with fewer cases and one candidate
    left out, as the real suites do."""
    suite = next((k for k, v in report.SUITES.items() if v == suite_module), "elsewhere")

    def cases(device, quick=False, compile=True):
        cand = lambda *names: {n: (lambda: None) for n in names}
        big = [] if quick else [Case(suite, "big", cand("fused", "ref"), device)]
        drop = {"compiled": LeftOut("--quick", "slow to compile")} if quick else {}
        return [Case(suite, "small", cand("fused", "ref", *([] if quick else ["compiled"])), device,
                     left_out=drop),
                *big,
                Case(suite, "small 2", cand("fused", "ref"), device),
                Case("op_b", "small", cand("fused", "ref"), device)]
    cases.__module__ = suite_module
    return cases


def _marks(params):
    return {p.id: sorted(m.name for m in p.marks) for p in params if p.id.startswith("cpu-")}


# pytest.mark.quick is registered by benchmarks/conftest.py, which this session does not load
@pytest.mark.filterwarnings("ignore::pytest.PytestUnknownMarkWarning")
def test_quick_marks_one_small_case_per_op_with_its_quick_candidates(case_params):
    # `pytest benchmarks` had no quick path: 245 items, some taking minutes
    marks = _marks(case_params.bench_params(_fake_cases(report.SUITES["bias_act"])))
    assert marks == {"cpu-small-fused": ["quick"], "cpu-small-ref": ["quick"], "cpu-small-compiled": [],
                     "cpu-big-fused": [], "cpu-big-ref": [], "cpu-small-2-fused": [], "cpu-small-2-ref": [],
                     "cpu-op_b-small-fused": ["quick"], "cpu-op_b-small-ref": ["quick"]}


@pytest.mark.parametrize("suite", sorted(report.HEAVY))
def test_the_suites_quick_leaves_out_are_slow_and_never_quick(case_params, suite):
    marks = _marks(case_params.bench_params(_fake_cases(report.SUITES[suite])))
    assert marks and all(m == ["slow"] for m in marks.values()), marks


def test_a_cases_function_of_no_suite_is_refused(case_params):
    with pytest.raises(ValueError, match="is not the cases\\(\\) of a suite"):
        case_params.bench_params(_fake_cases("somewhere.else"))


def test_every_benchmark_file_builds_its_params_through_bench_params():
    # the marks exist only on params that bench_params built: a suite that parametrizes its own
    # cases would be neither quick nor slow
    files = sorted(BENCHMARKS.glob("bench_*.py"))
    assert len(files) == len(report.SUITES)
    for path in files:
        text = path.read_text()
        assert "bench_params(cases)" in text, path.name


_FAKE_SUITE = """
import pytest
from alae_fast.bench.harness import Case
from case_params import bench_params


def cases(device, quick=False, compile=True):
    names = ["small"] if quick else ["small", "big"]
    return [Case("{op}", n, {{"fused": lambda: None, "ref": lambda: None}}, device) for n in names]


cases.__module__ = "{module}"


@pytest.mark.parametrize("case,name", bench_params(cases))
def test_{op}(case, name):
    pass
"""


def test_pytest_selections_run_as_documented(tmp_path):
    # the conftest's hooks and marks, through a real pytest run on copies of the suite's files
    import shutil
    import subprocess

    for name in ("conftest.py", "case_params.py"):
        shutil.copy(BENCHMARKS / name, tmp_path / name)
    for op in ("bias_act", "official"):
        (tmp_path / f"bench_{op}.py").write_text(_FAKE_SUITE.format(op=op, module=report.SUITES[op]))
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"

    def pytest_run(*args):
        cmd = [sys.executable, "-m", "pytest", str(tmp_path), "-c", str(pyproject), "--rootdir", str(tmp_path),
               "-p", "no:cacheprovider", "--strict-markers", "-o", "python_files=bench_*.py", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)

    default = pytest_run()  # the project's addopts: -m "not slow"
    assert default.returncode == 0, default.stdout + default.stderr
    assert "4 passed, 4 deselected" in default.stdout
    assert "4 slow benchmarks deselected (run them with `pytest benchmarks -m slow`)" in default.stdout
    assert f"official: {report.HEAVY['official']}" in default.stdout
    assert "`-m quick` runs one small case per op" in default.stdout  # the header
    quick = pytest_run("-m", "quick", "-v")
    assert quick.returncode == 0, quick.stdout + quick.stderr  # --strict-markers: quick is registered
    assert "2 passed, 6 deselected" in quick.stdout
    assert "test_bias_act[cpu-small-fused] PASSED" in quick.stdout and "big" not in quick.stdout.split("deselected")[0]
    slow = pytest_run("-m", "slow")
    assert slow.returncode == 0 and "4 passed, 4 deselected" in slow.stdout, slow.stdout


# benchmarks/gpu_check.sh without a GPU -------------------------------------------------------------
# A fake python (every stage's command answered from the environment) and a fake nvidia-smi run the
# script's control flow here in a second; nothing is built or installed.

_FAKE_PYTHON = r"""#!/usr/bin/env bash
echo "$*" >> "$FAKE_LOG"
case "$1" in
  -m) case "$2" in
        pip) exit 0 ;;
        pytest) printf '%s\n' "$FAKE_PYTEST"; exit 0 ;;
        alae_fast) echo "bench stderr: boom" >&2; echo "alae-fast bench: warning: w" >&2; echo "bench table"
                   exit "$FAKE_BENCH_RC" ;;
      esac ;;
  -c) case "$2" in *cuda.is_available*) exit "$FAKE_NO_CUDA" ;; esac; echo 2.13.0; exit 0 ;;
esac
exit 0
"""


def _gpu_check(tmp_path, *args, smi_rc=0, no_cuda=0, pytest_says="488 passed in 9.00s", bench_rc=0):
    import os
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "nvidia-smi").write_text(f"#!/bin/sh\necho 'NVIDIA H200, 143771 MiB, 570.00'\nexit {smi_rc}\n")
    (bin_dir / "python").write_text(_FAKE_PYTHON)
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    log = tmp_path / "calls.log"
    out = tmp_path / "out"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHON=str(bin_dir / "python"), OUT=str(out),
               FAKE_LOG=str(log), FAKE_NO_CUDA=str(no_cuda), FAKE_PYTEST=pytest_says, FAKE_BENCH_RC=str(bench_rc),
               GPU_CHECK_STAGES="tests bench")
    run = subprocess.run(["bash", str(BENCHMARKS / "gpu_check.sh"), *args], capture_output=True, text=True,
                         env=env, timeout=60)
    return run, (log.read_text() if log.exists() else ""), out


def test_gpu_check_stops_before_building_when_nvidia_smi_fails(tmp_path):
    # `nvidia-smi ... || true`: the script built for minutes, then every CUDA test skipped
    run, calls, _ = _gpu_check(tmp_path, smi_rc=9)
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stdout.strip().splitlines()[-1] == "NO USABLE GPU: nvidia-smi failed (exit 9); nothing built"
    assert "== build" not in run.stdout and "-m pip" not in calls


def test_gpu_check_stops_before_building_when_torch_sees_no_gpu(tmp_path):
    run, calls, _ = _gpu_check(tmp_path, no_cuda=1)
    assert run.returncode == 1, run.stdout + run.stderr
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith("NO USABLE GPU: torch.cuda.is_available() is not True in ") and "nothing built" in last
    assert "-m pip" not in calls


def test_gpu_check_fails_when_every_cuda_test_skipped_and_when_the_bench_fails(tmp_path):
    # printed "cuda tests exit code: 0" after 488 skips, and dropped the bench's stderr and status
    run, _, out = _gpu_check(tmp_path, pytest_says="488 skipped in 3.10s", bench_rc=3)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"CUDA TESTS RAN NOTHING (every test skipped; see {out}/cuda_tests.log)" in run.stdout
    assert f"GPU BENCHMARK FAILED (exit 3; stderr in {out}/bench_cuda.log)" in run.stdout
    assert "bench stderr: boom" in (out / "bench_cuda.log").read_text()
    assert run.stdout.strip().splitlines()[-1] == "cuda tests exit code: 1; benchmark exit code: 3"


def test_gpu_check_passes_when_tests_ran_and_the_bench_succeeded(tmp_path):
    run, calls, out = _gpu_check(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().splitlines()[-1] == "cuda tests exit code: 0; benchmark exit code: 0"
    assert "bench table" in (out / "bench_cuda.txt").read_text() and "-m pip" in calls
    assert "alae-fast bench: warning: w" in run.stdout and "boom" not in run.stdout  # warnings are shown


def test_gpu_check_dry_run_needs_no_gpu(tmp_path):
    run, calls, _ = _gpu_check(tmp_path, "--dry-run", smi_rc=9, no_cuda=1)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "== dry run passed ==" in run.stdout and "NO USABLE GPU" not in run.stdout
