"""Converters between formats: TinyGPT → Hugging Face folder, PEFT ⇄ MLX, adapter checks."""
