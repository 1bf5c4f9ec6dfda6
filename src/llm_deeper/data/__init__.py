"""Data: corpora, SFT formats (JSONL readers), chat rendering, loss masks, synthetic tool-calling data."""
