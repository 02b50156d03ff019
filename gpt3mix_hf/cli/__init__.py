"""`gpt3mix` sub-commands: `main.py` parses the command line; one module per command, each with
`arguments(name)` and `run(name, *parsed)`."""

from .main import main

__all__ = ["main"]
