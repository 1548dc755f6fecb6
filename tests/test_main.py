"""The `tf-faceedit` command (tf_faceedit/__main__.py): it picks the `main(argv)` of each command's module."""

import importlib

import pytest

import tf_faceedit
from tf_faceedit import __main__ as cli


def test_every_command_is_a_module_with_main():
    assert set(cli.COMMANDS) == (
        {"train", "evaluate", "edit", "export", "demo", "augment", "loss-balance"} | {"serve-client", "grpc-server"}
    )
    for module, _ in cli.COMMANDS.values():
        assert callable(importlib.import_module(module).main)


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_the_command_receives_the_remaining_arguments(command, monkeypatch):
    module = importlib.import_module(cli.COMMANDS[command][0])
    seen = []
    monkeypatch.setattr(module, "main", lambda argv: seen.append(argv) or 3)
    assert cli.main([command, "--flag", "x"]) == 3
    assert seen == [["--flag", "x"]]


def test_usage_version_and_unknown_commands(capsys):
    assert cli.main([]) == 2 and "usage: tf-faceedit COMMAND" in capsys.readouterr().out
    assert cli.main(["--help"]) == 0 and "augment" in capsys.readouterr().out
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tf_faceedit {tf_faceedit.__version__}"
    assert cli.main(["evalute"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown command 'evalute'") and "did you mean: evaluate" in err
