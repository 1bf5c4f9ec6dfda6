"""Speedrun stages, run in file-name order (10_, 20_, ...)."""
