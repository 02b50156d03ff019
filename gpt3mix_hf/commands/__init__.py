"""`gpt3mix` sub-commands: one module each, with `arguments(name)` and `run(name, *parsed)`."""
