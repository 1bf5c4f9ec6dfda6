"""The main job: one tiny model through every stage, with a report.

Each stage is a module in `stages/` (run in file-name order) exposing
`TITLE` and `run(ctx) -> StageResult`; later capabilities add a module.
"""
