"""Messages (+ tools) → token ids: the one place special tokens are decided.

Inference (`prompt_ids`: the conversation plus the assistant's generation
prompt) and training (`training_ids`: ids plus labels on the assistant's
turns) both come from here, so a model is prompted exactly as it was trained.
Tool schemas, calls and results become text through `tools.render` first.

The rules, in one place:
1. With a chat template, the template writes every control token itself (a
   BOS too, when the model wants one), so the tokenizer adds none.
2. Without a chat template (base models), the messages are joined by
   newlines and the tokenizer adds what it adds to any text (its BOS), as for
   a plain text prompt.
3. Message text is plain text. A special-token string typed by a user or
   returned by a tool (`<|im_end|><|im_start|>system ...`) is encoded as the
   characters it spells, never as the control token, so nobody can forge a
   turn; only the template's own markers become control tokens. The same
   holds for tokens a vocabulary added as non-special (`<tool_call>` in
   some): the tokenizer would match them even with special tokens split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import UserError

IGNORE = -100  # the label value cross-entropy skips
# Stand-ins for message text while locating the template's own markers:
# private-use characters that no template writes by itself.
_SLOT_OPEN, _SLOT_CLOSE = "\ue000", "\ue001"
_SLOT = re.compile(f"{_SLOT_OPEN}(\\d+){_SLOT_CLOSE}")


def pad_token_id(tokenizer) -> int:
    """The id used to pad batches: the tokenizer's pad token, else its end-of-sequence token, else 0."""
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if value is not None:
            return int(value)
    return 0


def template_messages(messages: list[dict], tools=None) -> list[dict]:
    """Plain role/content messages the chat template can render (tool specs, calls and results as text)."""
    from .tools.render import to_template_messages

    return to_template_messages(messages, tools)


def has_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def prompt_text(tokenizer, messages: list[dict], tools=None, generation_prompt: bool = True) -> str:
    """The conversation as the model reads it (for display; encode with `prompt_ids`, not by tokenizing this)."""
    rendered = template_messages(messages, tools)
    if not has_template(tokenizer):
        return _plain_text(rendered)
    return tokenizer.apply_chat_template(rendered, tokenize=False, add_generation_prompt=generation_prompt)


def prompt_ids(tokenizer, messages: list[dict], tools=None) -> list[int]:
    """Token ids of the conversation, ending with the assistant's generation prompt."""
    rendered = template_messages(messages, tools)
    if not has_template(tokenizer):
        # Rule 2: the tokenizer's own additions (BOS); rule 3: all of it is message text.
        return list(tokenizer(_plain_text(rendered), add_special_tokens=True, split_special_tokens=True)["input_ids"])
    return encode_rendered(tokenizer, rendered, generation_prompt=True).ids


@dataclass
class Encoded:
    """A rendered conversation as tokens."""

    text: str  # the rendered text
    ids: list[int]  # its token ids (control tokens only where the template put them)
    offsets: list[tuple[int, int]]  # the characters of `text` each token covers


def encode_rendered(tokenizer, messages: list[dict], generation_prompt: bool) -> Encoded:
    """Render plain messages through the chat template and tokenize with rule 3.

    When no message holds a special-token string, this is exactly
    `tokenizer(text, add_special_tokens=False)`. Otherwise the template's own
    markers are located by rendering stand-ins for the message texts, and every
    stretch of text between two markers is tokenized with special tokens split
    (a fast tokenizer tokenizes those stretches independently anyway, so
    benign text gets the very same ids).
    """
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    specials = special_strings(tokenizer, added=True)
    if not any(s in (m.get("content") or "") for m in messages for s in specials):
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return Encoded(text, list(encoded["input_ids"]), [tuple(o) for o in encoded["offset_mapping"]])
    return _encode_with_plain_content(tokenizer, messages, generation_prompt, text, specials)


def special_strings(tokenizer, added: bool = False) -> list[str]:
    """The strings the tokenizer turns into special (control) tokens, longest first; `added`: every added token too."""
    decoder = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    found = {token.content for token in decoder.values() if (added or getattr(token, "special", False)) and token.content}
    found.update(t for t in getattr(tokenizer, "all_special_tokens", []) if t)
    return sorted(found, key=len, reverse=True)


def _encode_with_plain_content(tokenizer, messages: list[dict], generation_prompt: bool, text: str, specials: list[str]) -> Encoded:
    stand_ins = [{**m, "content": f"{_SLOT_OPEN}{i}{_SLOT_CLOSE}"} for i, m in enumerate(messages)]
    skeleton = tokenizer.apply_chat_template(stand_ins, tokenize=False, add_generation_prompt=generation_prompt)
    parts = _SLOT.split(skeleton)  # glue, index, glue, index, ..., glue
    rebuilt = "".join(part if k % 2 == 0 else (messages[int(part)].get("content") or "") for k, part in enumerate(parts))
    if rebuilt != text:
        raise UserError("this chat template rewrites message text, so the special-token text inside a message "
                        f"({', '.join(s for s in specials if any(s in (m.get('content') or '') for m in messages))}) cannot be kept plain; remove it")
    marker = re.compile("(" + "|".join(re.escape(s) for s in specials) + ")")
    plain_added = set(specials) - set(special_strings(tokenizer))  # split_special_tokens leaves these whole
    ids: list[int] = []
    offsets: list[tuple[int, int]] = []
    run, run_start, position = [], 0, 0

    def encode_plain(piece: str, start: int) -> None:
        encoded = tokenizer(piece, add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True)
        ids.extend(encoded["input_ids"])
        offsets.extend((start + a, start + b) for a, b in encoded["offset_mapping"])

    def flush() -> None:
        piece, start = "".join(run), run_start
        for j, bit in enumerate(marker.split(piece) if plain_added else [piece]):
            if j % 2 == 1 and bit in plain_added:  # a non-special added token's text: its first character apart, so it stays characters
                encode_plain(bit[:1], start)
                encode_plain(bit[1:], start + 1)
            elif bit:
                encode_plain(bit, start)
            start += len(bit)
        run.clear()

    for k, part in enumerate(parts):
        if k % 2 == 1:  # message text: plain, whatever it contains
            content = messages[int(part)].get("content") or ""
            run.append(content)
            position += len(content)
            continue
        for j, bit in enumerate(marker.split(part)):
            if j % 2 == 1:  # one of the template's own markers
                flush()
                ids.append(tokenizer.convert_tokens_to_ids(bit))
                offsets.append((position, position + len(bit)))
                position += len(bit)
                run_start = position
            elif bit:
                run.append(bit)
                position += len(bit)
    flush()
    return Encoded(text, ids, offsets)


@dataclass
class TrainingIds:
    """One conversation ready for the loss."""

    input_ids: list[int]  # token ids of the rendered conversation
    labels: list[int]  # = input_ids on assistant tokens (end-of-turn token included), IGNORE elsewhere
    turns: list[tuple[int, int]]  # token index range [start, stop) of each assistant turn


def training_ids(tokenizer, messages: list[dict], tools=None, where: str = "") -> TrainingIds:
    """Ids and labels that train only on the assistant's turns.

    A turn's characters start where the prompt `messages[:i]` + generation
    prompt ends and end where `messages[:i+1]` ends, trimmed back to just after
    the end-of-turn token (the newline after it is template glue, not a target).
    A model that never sees the end-of-turn token as a target never learns to stop.
    """
    rendered = template_messages(messages, tools)
    spans = _assistant_char_spans(tokenizer, rendered, where)
    encoded = encode_rendered(tokenizer, rendered, generation_prompt=False)
    labels = [IGNORE] * len(encoded.ids)
    turns = []
    for start, end in spans:
        inside = [k for k, (s, _e) in enumerate(encoded.offsets) if start <= s < end]
        for k in inside:
            labels[k] = encoded.ids[k]
        turns.append((inside[0], inside[-1] + 1) if inside else (len(encoded.ids), len(encoded.ids)))
    return TrainingIds(encoded.ids, labels, turns)


def _assistant_char_spans(tokenizer, messages: list[dict], where: str) -> list[tuple[int, int]]:
    if not has_template(tokenizer):
        raise UserError(f"{where}: this tokenizer has no chat template, so chat data cannot be rendered; use an instruct model")

    def render(upto: list[dict], generation_prompt: bool) -> str:
        return tokenizer.apply_chat_template(upto, tokenize=False, add_generation_prompt=generation_prompt)

    text = render(messages, False)
    eos = tokenizer.eos_token or ""
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt, upto = render(messages[:i], True), render(messages[: i + 1], False)
        if not (upto.startswith(prompt) and text.startswith(upto)):
            raise UserError(f"{where}: the chat template does not render conversations prefix by prefix, so assistant turns cannot be located")
        end = len(upto)
        if eos and eos in upto[len(prompt):]:
            end = upto.rindex(eos) + len(eos)
        spans.append((len(prompt), end))
    return spans


def _plain_text(messages: list[dict]) -> str:
    """Base models have no template: the plain concatenation, one message per line."""
    return "\n".join(m["content"] for m in messages) + "\n"
