"""The `tf-faceedit` command: one entry point for the command-line tools.

    tf-faceedit train --method=sagan --config=sagan_quick --model_dir=RUN [...]
    tf-faceedit evaluate|edit|export|demo|augment|loss-balance [...]   (each command's flags: tf-faceedit CMD --help)
    tf-faceedit serve-client|grpc-server [...]                         (a TF Serving client; the gRPC test server)
    python -m tf_faceedit CMD [...]                                    (the same, without the console script)

Each command is the `main(argv)` of `tf_faceedit.cli.CMD` (also `python -m tf_faceedit.CMD`); this module only
picks it.
"""

import importlib
import sys

# command -> (module whose main(argv) runs it, one-line summary)
COMMANDS = {
    "train": ("tf_faceedit.cli.train", "train a method (or resume a run)"),
    "evaluate": ("tf_faceedit.cli.evaluate", "metrics of a trained model on a held-out split"),
    "edit": ("tf_faceedit.cli.edit", "edit the faces of your own photos"),
    "export": ("tf_faceedit.cli.export", "write a SavedModel for TF Serving"),
    "demo": ("tf_faceedit.cli.demo", "the web demo (needs the [demo] extra)"),
    "augment": ("tf_faceedit.cli.augment", "grow a dataset with edited copies of its faces"),
    "loss-balance": ("tf_faceedit.cli.loss_balance", "each generator loss term's weight in value and gradient"),
    "serve-client": ("tf_faceedit.cli.serve_client", "edit one photo with a model served by TF Serving"),
    "grpc-server": ("tf_faceedit.cli.grpc_server", "a local gRPC server with TF Serving's API, for tests"),
}


def usage():
    lines = ["usage: tf-faceedit COMMAND [flags]   (tf-faceedit COMMAND --help for a command's flags)", "", "commands:"]
    lines += [f"  {name:12s} {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        from tf_faceedit import __version__

        print(f"tf_faceedit {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        from tf_faceedit.errors import suggest

        print(
            f"error: unknown command {command!r}{suggest(command, COMMANDS)}; commands: {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
