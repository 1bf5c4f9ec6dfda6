"""The agent: a model that calls tools, sees their results and answers (`loop.py`), on the chat layer;
the tools run in killable worker processes with time, memory and output limits (`executor.py`, `workers.py`)."""
