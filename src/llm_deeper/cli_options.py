"""Options shared by several commands, so flags read the same everywhere."""

from __future__ import annotations

import typer

from .models.registry import DEFAULT_MODEL


MODEL_OPTION = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Registry name, HF model folder or .gguf file.")
MAX_NEW_TOKENS_OPTION = typer.Option(256, "--max-new-tokens", "-n", min=1, help="Stop after this many new tokens.")
TEMPERATURE_OPTION = typer.Option(0.7, "--temperature", "-t", min=0.0, max=2.0, help="0 = greedy; higher = more random.")
TOP_P_OPTION = typer.Option(0.9, "--top-p", min=0.0, max=1.0, help="Nucleus sampling mass (1 = off).")
TOP_K_OPTION = typer.Option(0, "--top-k", min=0, help="Keep only the k most likely tokens (0 = off).")
SEED_OPTION = typer.Option(None, "--seed", help="Random seed for reproducible sampling.")
QUICK_OPTION = typer.Option(False, "--quick", help="Tiny settings: every stage, seconds not minutes.")
# The project's own key variable, for serving and for calling a server alike. Never OPENAI_API_KEY:
# a user's OpenAI key would be sent to whatever --base-url names.
API_KEY_ENV = "LLM_DEEPER_API_KEY"
CLIENT_API_KEY_OPTION = typer.Option("not-needed", "--api-key", envvar=API_KEY_ENV, help=f"Bearer key for --base-url, if the server wants one (default: ${API_KEY_ENV}).")
