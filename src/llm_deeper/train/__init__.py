"""The shared training package: one loop that TinyGPT pre-training and fine-tuning both run on.

Reading order: `loop.py` (the optimizer step, the optimizer, the result) →
`schedule.py` → `precision.py` (bf16 where it pays) → `distributed.py`
(torchrun, threads) → `sharding.py` (DDP or FSDP) → `checkpointing.py`
(atomic, checksummed files) → `evaluation.py` → `plot.py`.
TinyGPT's pre-training job is `tinygpt/`; fine-tuning's is `llm_deeper.finetune`.
"""
