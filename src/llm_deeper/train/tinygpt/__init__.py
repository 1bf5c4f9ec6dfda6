"""TinyGPT pre-training on the shared loop: `config.py` (every knob, with why) → `text.py`
(tokenizer and batches) → `checkpoint.py` (one bit-exact `checkpoint.pt`) → `pretrain.py` (the job)."""
