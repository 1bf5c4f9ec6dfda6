"""Read tool calls out of a model's text

After lesson inferencing_and_advanced/04 (tool calling). Write `solve(text)` that
returns `(content, calls)`: `calls` is a list of `(name, arguments)` pairs, one per
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>` block in order, and
`content` is the text outside the blocks, stripped. A model may write several
calls, text before them, and spaces or new lines around the JSON.
"""

LESSON = "inferencing_and_advanced/04"
SIGNATURE = "def solve(text: str) -> tuple[str, list[tuple[str, dict]]]"

TEXTS = [
    '<tool_call>{"name":"get_weather","arguments":{"city":"Paris"}}</tool_call>',
    'Let me check.\n<tool_call>\n{"name": "calculator", "arguments": {"expression": "17 * 23"}}\n</tool_call>',
    '<tool_call>{"name":"get_weather","arguments":{"city":"Oslo"}}</tool_call>\n<tool_call>{"name":"get_weather","arguments":{"city":"Rome","unit":"celsius"}}</tool_call>',
    "The capital of France is Paris.",
    '<tool_call>{"name":"get_current_time","arguments":{}}</tool_call>',
]


def check(solve) -> None:
    from llm_deeper.lesson import check
    from llm_deeper.tools.formats.hermes import HermesFormat

    hermes = HermesFormat()
    for text in TEXTS:
        content, calls = solve(text)
        ref = hermes.parse(text)
        same = calls == [(c.name, c.arguments) for c in ref.calls] and content == (ref.content or "").strip()
        check(f"{len(calls)} call(s) {[name for name, _ in calls]}: the same as the server's hermes parser", same, repr(text[:40]))
