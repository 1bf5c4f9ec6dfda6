"""Converters between formats: TinyGPT → Hugging Face folder, PEFT ⇄ MLX, adapter checks; and the MLX side they feed (runtime, mlx-lm LoRA training)."""
