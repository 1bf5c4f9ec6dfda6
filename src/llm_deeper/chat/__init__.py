"""The chat layer: a chat request (messages, tools, tool_choice, sampling) → an OpenAI-shaped reply.

One path for every caller, so an eval scores exactly what the server serves:

- `request.py`: the request and reply values and the `ChatModel` protocol;
- `tool_constraint.py`: tools + tool_choice → the engine's `Constraint`;
- `plan.py`: tools and tool_choice (or response_format) → the one constraint,
  messages → the prompt's messages, the model's text → the assistant message
  (whole, or as stream deltas); a call the reply already made is dropped;
- `engine_model.py`: `EngineChatModel`, the engine in this process (requests
  decoded together by continuous batching);
- `openai_model.py`: `OpenAIChatModel`, any OpenAI-compatible server through
  the official client (ours with `--base-url`, vLLM, llama.cpp).

The server's route uses `plan.py` with its own asynchronous submission; the
tool eval, BFCL, the agent and the fine-tune probe use a `ChatModel`.
"""

from .request import ChatModel, ChatReply, ChatRequest

__all__ = ["ChatModel", "ChatReply", "ChatRequest"]
