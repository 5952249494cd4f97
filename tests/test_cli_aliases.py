"""An option given twice with two different values is refused, under two of its spellings or one.

(A new user's trial found `generate --psi 0.5 --trunc 0.7` sampling with psi 0.7 and `generate
--network A --ckpt B` opening B, without a word: argparse keeps the last value of an option,
whatever it was called. The CLI refuses other contradictions in one line with status 2, such as
`train --mixing-prob 0.2 --set mixing_prob=0.9` or `--flip --no-flip`.)
"""

from __future__ import annotations

import argparse

import pytest

from alae_fast.cli import main
from alae_fast.cli.parser import build_parser


def _commands(parser=None) -> dict[str, argparse.ArgumentParser]:
    parser = parser or build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _refused(capsys, argv: list[str]) -> str:
    """The one line the parser refuses ``argv`` with (status 2)."""
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# every option of the CLI with more than one spelling that takes a value: (command, the arguments
# the command needs besides it, its spellings, two values)
ALIASES = [
    ("generate", [], ("--ckpt", "--network"), ("runs/x", "/tmp/other")),
    ("generate", ["--ckpt", "runs/x"], ("--psi", "--trunc"), ("0.5", "0.7")),
]


def test_the_aliases_listed_are_all_of_the_cli():
    # an option given another spelling later is to be added to ALIASES, so that it is tested
    found = set()
    for name, p in _commands().items():
        for action in p._actions:
            if len(action.option_strings) > 1 and action.option_strings != ["-h", "--help"]:
                found.add((name, tuple(action.option_strings)))
    assert found == {(command, spellings) for command, _, spellings, _ in ALIASES}


@pytest.mark.parametrize("command,needed,spellings,values", ALIASES)
def test_an_alias_pair_with_two_values_is_refused_naming_both(command, needed, spellings, values, capsys):
    (a, b), (x, y) = spellings, values
    for first, second in ((a, b), (b, a)):
        line = _refused(capsys, [command, *needed, first, x, second, y])
        name = a.lstrip("-")
        assert f"alae-fast {command}: error: {first} {x} and {second} {y} give {name} two different values; " \
               f"give one (see alae-fast {command} --help)" == line, line


@pytest.mark.parametrize("command,needed,spellings,values", ALIASES)
def test_an_alias_pair_with_one_value_is_taken(command, needed, spellings, values):
    (a, b), (x, _) = spellings, values
    dest = a.lstrip("-")
    for argv in ([a, x, b, x], [b, x, a, x], [a, x], [b, x], [a, x, a, x]):
        args = build_parser().parse_args([command, *needed, *argv])
        assert getattr(args, dest) == (float(x) if dest == "psi" else x), argv


def test_the_reported_cases_are_refused_through_main(capsys):
    with pytest.raises(SystemExit) as e:
        main(["generate", "--ckpt", "runs/x", "--psi", "0.5", "--trunc", "0.7"])
    assert e.value.code == 2
    assert "--psi 0.5 and --trunc 0.7 give psi two different values" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["generate", "--network", "/tmp/other", "--ckpt", "runs/x", "--n", "2"])
    assert e.value.code == 2
    assert "--network /tmp/other and --ckpt runs/x give ckpt two different values" in capsys.readouterr().err


def test_values_are_compared_after_their_type():
    # the same number, seeds or path in another writing is the same value
    args = build_parser().parse_args(["generate", "--ckpt", "r", "--psi", "0.5", "--trunc", ".50",
                                      "--seeds", "0-2", "--seeds", "0,1,2"])
    assert args.psi == 0.5 and args.seeds == [0, 1, 2]
    args = build_parser().parse_args(["generate", "--ckpt=r", "--trunc=1", "--psi", "1.0"])
    assert args.ckpt == "r" and args.psi == 1.0


def test_one_path_spelt_two_ways_is_one_value(tmp_path, monkeypatch, capsys):
    # a new user's trial: --ckpt runs/x --network runs/x/ was refused as two values
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "x").mkdir(parents=True)
    for a, b in (("runs/x", "runs/x/"), ("runs/x", str(tmp_path / "runs" / "x")), ("./runs/x", "runs//x")):
        args = build_parser().parse_args(["generate", "--ckpt", a, "--network", b])
        assert args.ckpt == b
        args = build_parser().parse_args(["train", "--out", a, "--out", b])
        assert args.out == b
        args = build_parser().parse_args(["generate", "--ckpt", a, "--seeds", "0", "--outdir", a, "--outdir", b])
        assert args.outdir == b
        args = build_parser().parse_args(["train", "--from-official", a, "--from-official", b, "--config", a,
                                          "--config", b])
        assert args.from_official == b == args.official_config
    # a folder's name elsewhere is not the same path, nor is a path's spelling taken for another option
    line = _refused(capsys, ["generate", "--ckpt", "runs/x", "--network", "runs/y"])
    assert "--ckpt runs/x and --network runs/y give ckpt two different values" in line
    line = _refused(capsys, ["train", "--data", "digits", "--data", "./digits"])
    assert "--data digits and --data ./digits give data two different values" in line


@pytest.mark.parametrize("argv,said", [
    (["train", "--seed", "1", "--seed", "2"], "--seed 1 and --seed 2 give seed two different values"),
    (["train", "--kimg", "1", "--kimg", "2"], "--kimg 1 and --kimg 2 give kimg two different values"),
    (["train", "--preset", "digits-32", "--preset", "photos-32"],
     "--preset digits-32 and --preset photos-32 give preset"),
    (["generate", "--ckpt", "r", "--seed", "1", "--seed", "2"], "--seed 1 and --seed 2 give seed"),
    (["generate", "--ckpt", "r", "--seeds", "0-2", "--seeds", "0,1"], "--seeds 0-2 and --seeds 0,1 give seeds"),
    (["generate", "--ckpt", "r", "--noise-mode", "const", "--noise-mode", "random"],
     "--noise-mode const and --noise-mode random give noise-mode"),
    (["evaluate", "--ckpt", "r", "--device", "cpu", "--device", "cuda"], "--device cpu and --device cuda give device"),
    (["style-mix", "--ckpt", "r", "--sources", "a b.png", "--sources", "c.png"],
     "--sources 'a b.png' and --sources c.png give sources"),
    (["edit", "--ckpt", "r", "--direction", "3-8=1", "--noise", "random", "--noise", "const"],
     "--noise random and --noise const give noise"),
    (["convert", "x.pth", "--out", "a.pt", "--out", "b.pt"], "--out a.pt and --out b.pt give out"),
    (["serve", "--ckpt", "r", "--port", "80", "--port", "81"], "--port 80 and --port 81 give port"),
])
def test_one_spelling_given_twice_with_two_values_is_refused(argv, said, capsys):
    line = _refused(capsys, argv)
    assert said in line and line.endswith(f"give one (see alae-fast {argv[0]} --help)"), line


def test_one_spelling_given_twice_with_one_value_is_taken():
    args = build_parser().parse_args(["train", "--seed", "1", "--seed", "1", "--kimg", "2", "--kimg", "2.0",
                                      "--amp", "--amp", "--flip", "--flip", "--no-channels-last",
                                      "--no-channels-last"])
    assert (args.seed, args.kimg, args.amp, args.flip, args.channels_last) == (1, 2.0, True, True, False)


def test_repeatable_options_still_repeat():
    args = build_parser().parse_args(["train", "--set", "mixing_prob=0.5", "--set", "mixing_prob=0.9",
                                      "--schedule", "lod_batch=[32]", "--schedule", "lod_kimg=[1]"])
    assert args.model_overrides == [("mixing_prob", 0.5), ("mixing_prob", 0.9)]
    assert args.schedule_overrides == [("lod_batch", [32]), ("lod_kimg", [1])]
    args = build_parser().parse_args(["edit", "--ckpt", "r", "a.png", "--direction", "3-8=1", "--direction",
                                      "3-8=2"])
    assert args.direction == ["3-8=1", "3-8=2"] and args.images == ["a.png"]


@pytest.mark.parametrize("argv,said", [
    (["--flip", "--no-flip"], "argument --no-flip: not allowed with argument --flip"),
    (["--no-d-zero-grad-step", "--d-zero-grad-step"],
     "argument --d-zero-grad-step: not allowed with argument --no-d-zero-grad-step"),
    (["--channels-last", "--no-channels-last"], "argument --no-channels-last: not allowed with argument "
                                                "--channels-last"),
])
def test_opposite_flags_keep_their_refusal(argv, said, capsys):
    assert said in _refused(capsys, ["train", *argv])


def test_flags_left_out_keep_their_defaults_and_nothing_else_is_added():
    args = build_parser().parse_args(["train", "--seed", "3"])
    assert args.flip is None and args.channels_last is None and args.kimg is None
    assert not [k for k in vars(args) if k.startswith("_")]
    args = build_parser().parse_args(["generate", "--ckpt", "r", "--psi", "0.5", "--trunc", "0.5"])
    assert args.seed is None and args.n is None
    assert not [k for k in vars(args) if k.startswith("_")]


def test_one_parser_parses_again_without_remembering():
    parser = build_parser()
    assert parser.parse_args(["generate", "--ckpt", "r", "--psi", "0.5"]).psi == 0.5
    assert parser.parse_args(["generate", "--ckpt", "r", "--trunc", "0.7"]).psi == 0.7
    assert parser.parse_args(["generate", "--network", "s"]).ckpt == "s"


def test_the_bench_options_follow_the_same_rule(capsys):
    from alae_fast.bench.report import build_parser as bench_parser

    with pytest.raises(SystemExit) as e:
        bench_parser().parse_args(["--rounds", "3", "--rounds", "4"])
    assert e.value.code == 2
    assert "--rounds 3 and --rounds 4 give rounds two different values" in capsys.readouterr().err
    assert bench_parser().parse_args(["--rounds", "3", "--rounds", "3"]).rounds == 3
