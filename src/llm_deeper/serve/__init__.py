"""OpenAI-compatible HTTP server (FastAPI) around the inference engine."""
