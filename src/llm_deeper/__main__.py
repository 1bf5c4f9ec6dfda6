"""`python -m llm_deeper` runs the CLI."""

from .cli import main

main()
