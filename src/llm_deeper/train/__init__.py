"""TinyGPT pretraining: data batches, schedule, the loop, checkpoints, DDP.

Reading order: `config.py` (every knob, with why) → `text.py` (tokenizer and
batches) → `schedule.py` → `checkpoint.py` → `distributed.py` → `loop.py`.
"""
