"""Full and LoRA fine-tuning of causal LMs (transformers + PEFT), checkpoints, DDP, merge."""
