"""Generation: sampling settings, chat prompts, streamed decoding."""
