"""`gpt3mix <command> [--flags]`: each command is a module in `gpt3mix_hf.commands` with an argument
dataclass (parsed by `HfArgumentParser`, so every field's help is a flag's help) and a `run` function."""

from __future__ import annotations

import importlib
import sys

from transformers import HfArgumentParser

COMMANDS = {
    "augment": ("gpt3mix_hf.commands.augment", "Augment a labelled dataset with GPT3Mix."),
    "experiment": ("gpt3mix_hf.commands.experiment", "Run the paper's protocol: NoAug vs EDA vs BT vs GPT3Mix."),
    "push-dataset": ("gpt3mix_hf.commands.push", "Publish an augmented dataset to the Hub, with its card."),
    "push-model": ("gpt3mix_hf.commands.push", "Publish a trained classifier to the Hub, with its card."),
}


def _usage() -> str:
    lines = ["usage: gpt3mix <command> [--flags]   (gpt3mix <command> --help for its flags)", "", "commands:"]
    lines += [f"  {name:<14} {help_text}" for name, (_, help_text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(_usage() + "\n")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        sys.stderr.write(f"gpt3mix: unknown command {name!r}.\n{_usage()}\n")
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    parser = HfArgumentParser(module.arguments(name), prog=f"gpt3mix {name}")
    parsed = parser.parse_args_into_dataclasses(args=rest)
    return module.run(name, *parsed) or 0


if __name__ == "__main__":
    sys.exit(main())
