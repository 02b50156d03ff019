"""`gpt3mix <command> [--flags]`: each command is a module in `gpt3mix_hf.cli` with argument dataclasses
(parsed by `HfArgumentParser`, so every field's help is a flag's help) and a `run` function.

A mistake in the input (a bad flag value, a missing file, split or column, an unknown dataset or model, a server
that cannot be reached) is reported as one line that says what to change, with exit status 2; `--debug`
anywhere on the command line shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys

from transformers import HfArgumentParser

COMMANDS = {
    "augment": ("gpt3mix_hf.cli.augment", "Augment a labelled dataset with GPT3Mix (local or served LM)."),
    "train": ("gpt3mix_hf.cli.train", "Train a classifier on the real + synthetic rows of `gpt3mix augment`."),
    "experiment": ("gpt3mix_hf.cli.experiment", "Run the paper's protocol: NoAug vs EDA vs BT vs GPT3Mix."),
    "push-dataset": ("gpt3mix_hf.cli.push", "Publish an augmented dataset to the Hub, with its card."),
    "push-model": ("gpt3mix_hf.cli.push", "Publish a trained classifier to the Hub, with its card."),
    "report": ("gpt3mix_hf.cli.report", "Print the quality report of the synthetic rows of an augmented folder."),
}
USAGE_ERROR = 2
DEBUG_FLAG = "--debug"
# Secrets are never flags: a flag stays in the shell history and the process list.
SECRET_FLAGS = ("--hub_token", "--hf_token", "--api_key", "--token")


class UsageError(ValueError):
    """A mistake in the command line that the user fixes by changing it."""


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the input is wrong" (reported in one line), as opposed to a bug (traceback).

    File, folder, dataset and model lookups fail with `OSError` (`FileNotFoundError`, datasets'
    `DatasetNotFoundError`, transformers' "not a valid model identifier"); a missing optional dependency with
    an `ImportError` that names the `pip install`; a served LM that cannot be reached or refuses the key with a
    `ServedBackendError`.
    """
    from ..backends import ServedBackendError

    return (ValueError, OSError, ImportError, ServedBackendError)


def finite_float(text: str) -> float:
    """argparse type of every float flag: `inf` and `nan` are refused where they are typed."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number: give a finite value")
    return value


class CommandParser(HfArgumentParser):
    """`HfArgumentParser` whose float flags refuse non-finite values, whose required flags' help shows no
    "(default: None)", and whose errors are one line."""

    def __init__(self, dataclass_types, **kwargs):
        # No abbreviations: `--api-key sk-...` must not be read as `--api_key_env sk-...`.
        super().__init__(dataclass_types, allow_abbrev=False, **kwargs)
        for action in self._actions:
            if action.type is float:
                action.type = finite_float
            if action.required:
                action.default = argparse.SUPPRESS  # a required flag is always given: its default is never used

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")

    def parse_command_line(self, args: list[str]) -> tuple:
        """The argument dataclasses; unknown flags are named without the values after them (a value may be a
        secret typed in the wrong place)."""
        *parsed, remaining = self.parse_args_into_dataclasses(args=args, return_remaining_strings=True)
        if remaining:
            flags = [arg.split("=")[0] for arg in remaining if arg.startswith("-")] or ["values without a flag"]
            self.error(f"unknown flags: {', '.join(flags)}")
        return tuple(parsed)


def _secret_flag(args: list[str]) -> str | None:
    """The first argument that is, or abbreviates, a secret's flag, however it is spelled (`--hub-token`)."""
    for arg in args:
        if not arg.startswith("--"):
            continue
        name = "--" + arg.split("=")[0].lstrip("-").replace("-", "_").lower()
        if len(name) > 3 and any(secret.startswith(name) for secret in SECRET_FLAGS):
            return arg.split("=")[0]
    return None


def _usage() -> str:
    lines = ["usage: gpt3mix <command> [--flags] [--debug]   (gpt3mix <command> --help for its flags)", "",
             "commands:"]
    lines += [f"  {name:<14} {help_text}" for name, (_, help_text) in COMMANDS.items()]
    return "\n".join(lines)


def one_line(error: BaseException) -> str:
    """The error's message on one line (a multi-line message is joined), without the exception's class name
    unless the message is empty."""
    message = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    if isinstance(error, KeyError) and message.startswith("'"):
        message = f"missing key {message}"
    return message or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(_usage() + "\n")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        hint = ""
        if name.startswith("push"):
            hint = " To publish, use push-dataset (an augmented dataset) or push-model (a trained classifier)."
        sys.stderr.write(f"gpt3mix: error: unknown command {name!r}; choose one of {', '.join(COMMANDS)}.{hint}\n")
        return USAGE_ERROR
    prog = f"gpt3mix {name}"
    secret = _secret_flag(rest)
    if secret is not None:
        sys.stderr.write(
            f"{prog}: error: {secret} is not a flag: a token is never passed on the command line. Log in with "
            "`hf auth login` or set the HF_TOKEN environment variable (a served LM's key: --api_key_env names the "
            "variable that holds it).\n"
        )
        return USAGE_ERROR
    try:
        module = importlib.import_module(COMMANDS[name][0])
        positional = getattr(module, "POSITIONAL", None)
        if positional is not None and rest and not rest[0].startswith("-"):
            # `gpt3mix report <folder>`: the command's one positional argument is its flag's value.
            rest = [f"--{positional}", *rest]
        parser = CommandParser(module.arguments(name), prog=prog)
        parsed = parser.parse_command_line(rest)
        return module.run(name, *parsed) or 0
    except KeyboardInterrupt:
        if debug:
            raise
        sys.stderr.write(f"{prog}: interrupted\n")
        return 130
    except user_errors() as error:
        if debug:
            raise
        hint = "" if isinstance(error, UsageError) else " (add --debug for the traceback)"
        sys.stderr.write(f"{prog}: error: {one_line(error)}{hint}\n")
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
