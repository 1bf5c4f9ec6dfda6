"""LLM Deeper: attention math to a served, tool-calling, LoRA-fine-tuned model."""

__version__ = "0.1.0"
