"""vLLM deployment: its own virtual environment, the launcher, the checks, the adapter linter.

vLLM pins its own torch and transformers, which conflict with the project's,
so it never runs inside `.venv`: `env.py` builds a separate environment on
demand and everything else talks to vLLM over a subprocess and HTTP.
"""
