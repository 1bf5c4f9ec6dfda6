"""A tools-aware chat template for vLLM, made from the project's one tool renderer.

vLLM renders prompts with the model's Jinja chat template. The default model's
ChatML template knows nothing about tools, so without help vLLM would show the
model a prompt unlike the one our server and our fine-tuning data use, and a
tool adapter would see text it was never trained on. This module writes a
template that first rewrites the messages exactly as `tools/render.py` does
(tool prompt in the system message, `<tool_call>` lines for assistant calls,
`<tool_response>` user turns for results) and then runs the model's own
template on them. A test renders both ways and compares the text.

One difference by necessity: Jinja cannot parse JSON, so a JSON tool result is
inserted as the client sent it, where the Python renderer re-serialises it
compactly. Clients that send compact JSON (our agent, the conformance suite)
get identical prompts.

Tool results and call arguments are JSON, so their markers are escaped as
the Python renderer escapes them (`escape_markers`: "<" as \\u003c inside
JSON strings): a result holding "</tool_response>" or "<|im_end|>" cannot end
its result, fake a call or open a turn in vLLM, which reads special-token
text in a rendered prompt as control tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..tools.render import CALL_END, CALL_START, MARKERS, RESPONSE_END, RESPONSE_START, TOOL_PROMPT

_HEAD, _TAIL = (part.replace("{{", "{").replace("}}", "}") for part in TOOL_PROMPT.split("{tools}"))


def _literal(text: str) -> str:
    """A Jinja string literal (Jinja decodes the same escapes JSON writes)."""
    return json.dumps(text)


_RESPONSE_OPEN = _literal(RESPONSE_START + '{"name":')  # <tool_response>{"name":
_RESPONSE_CLOSE = _literal("}" + RESPONSE_END)
_CALL_OPEN = _literal(CALL_START + '{"name":')  # <tool_call>{"name":
_CALL_CLOSE = _literal("}" + CALL_END)
COMPACT = "tojson(separators=(',', ':'))"  # transformers' tojson takes json.dumps' arguments
# Jinja filters doing what tools/render.py's escape_markers does (transformers' tojson escapes nothing).
ESCAPE = "".join(f" | replace({_literal(m)}, {_literal(chr(92) + 'u003c' + m[1:])})" for m in MARKERS)

_PREFIX = (
    "{#- Tools rewritten as text by llm_deeper (tools/render.py), then the model's own template. -#}\n"
    "{%- macro _text(content) -%}{%- if content is none -%}{%- elif content is string -%}{{ content }}"
    "{%- else -%}{%- for part in content -%}{%- if part.type is not defined or part.type == 'text' -%}{{ part.text }}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}{%- endmacro -%}\n"
    # type_text and params_text of tools/render.py (dict keys by subscript: `schema.items` is the dict method)
    "{%- macro _type(schema) -%}"
    "{%- if schema is not mapping -%}any"
    f"{{%- elif 'enum' in schema -%}}{{%- for value in schema['enum'] -%}}{{{{ '' if loop.first else '|' }}}}{{{{ value if value is string else value | {COMPACT} }}}}{{%- endfor -%}}"
    "{%- elif schema.get('anyOf') or schema.get('oneOf') -%}{%- for choice in (schema.get('anyOf') or schema.get('oneOf')) -%}"
    "{{ '' if loop.first else '|' }}{{ _type(choice) }}{%- endfor -%}"
    "{%- elif schema.get('type') is sequence and schema.get('type') is not string -%}{{ schema['type'] | join('|') }}"
    "{%- elif schema.get('type') == 'array' -%}array{%- if 'items' in schema %} of {{ _type(schema['items']) }}{%- endif -%}"
    "{%- elif schema.get('properties') -%}{{ '{' }}{{ _params(schema) }}{{ '}' }}"
    "{%- else -%}{{ schema.get('type') or 'any' }}{%- endif -%}"
    "{%- endmacro -%}\n"
    "{%- macro _params(schema) -%}{%- set required = schema.get('required') or [] -%}"
    "{%- for name, prop in (schema.get('properties') or {}).items() -%}"
    "{{ '' if loop.first else ', ' }}{{ name }}{{ '' if name in required else '?' }}: {{ _type(prop) }}"
    f"{{%- if prop is mapping and 'default' in prop %}} = {{{{ prop['default'] | {COMPACT} }}}}{{%- endif -%}}"
    "{%- endfor -%}{%- endmacro -%}\n"
    "{%- set ns = namespace(out=[], results=[]) -%}\n"
    "{%- for message in messages -%}\n"
    "{%- if message.role == 'tool' -%}\n"
    "  {%- set found = namespace(name=(message.name if message.name is defined and message.name else '')) -%}\n"
    "  {%- if not found.name -%}{%- for earlier in messages -%}{%- if earlier.tool_calls is defined and earlier.tool_calls -%}"
    "{%- for call in earlier.tool_calls -%}{%- if call.id == message.tool_call_id -%}{%- set found.name = call.function.name -%}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}{%- endfor -%}{%- endif -%}\n"
    "  {%- set body = _text(message.content) | string -%}\n"
    "  {%- set bare = body.strip() -%}\n"
    "  {%- if bare[:1] in ['{', '['] or bare in ['true', 'false', 'null'] or bare.lstrip('-').replace('.', '', 1).isdigit() -%}"
    "{%- set value = bare -%}{%- else -%}{%- set value = body | tojson -%}{%- endif -%}\n"
    f"  {{%- set ns.results = ns.results + [{_RESPONSE_OPEN} ~ (found.name | tojson{ESCAPE}) ~ ',\"content\":' ~ (value{ESCAPE}) ~ {_RESPONSE_CLOSE}] -%}}\n"
    "{%- else -%}\n"
    "  {%- if ns.results -%}{%- set ns.out = ns.out + [{'role': 'user', 'content': ns.results | join('\\n')}] -%}"
    "{%- set ns.results = [] -%}{%- endif -%}\n"
    "  {%- if message.role == 'assistant' and message.tool_calls is defined and message.tool_calls -%}\n"
    "    {%- set calls = namespace(parts=[]) -%}\n"
    "    {%- for call in message.tool_calls -%}\n"
    "      {%- set function = call.function if call.function is defined else call -%}\n"
    "      {%- if function.arguments is string -%}{%- set arguments = function.arguments -%}"
    f"{{%- else -%}}{{%- set arguments = function.arguments | {COMPACT} -%}}{{%- endif -%}}\n"
    f"      {{%- set calls.parts = calls.parts + [{_CALL_OPEN} ~ (function.name | tojson{ESCAPE}) ~ ',\"arguments\":' ~ (arguments{ESCAPE}) ~ {_CALL_CLOSE}] -%}}\n"
    "    {%- endfor -%}\n"
    "    {%- set text = (_text(message.content) | string).strip() -%}\n"
    "    {%- set ns.out = ns.out + [{'role': 'assistant', 'content': (text ~ '\\n' if text else '') ~ calls.parts | join('\\n')}] -%}\n"
    "  {%- elif message.role in ['system', 'developer'] -%}\n"
    "    {%- set ns.out = ns.out + [{'role': 'system', 'content': _text(message.content) | string}] -%}\n"
    "  {%- else -%}\n"
    "    {%- set ns.out = ns.out + [{'role': message.role, 'content': _text(message.content) | string}] -%}\n"
    "  {%- endif -%}\n"
    "{%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if ns.results -%}{%- set ns.out = ns.out + [{'role': 'user', 'content': ns.results | join('\\n')}] -%}{%- endif -%}\n"
    "{%- if tools -%}\n"
    "  {%- set listed = namespace(lines=[]) -%}\n"
    "  {%- for item in tools -%}\n"
    "    {%- set function = item.function if item.function is defined else item -%}\n"
    "    {%- set description = ((function.description if function.description is defined and function.description else '') | string).strip().split('\\n')[0].strip() -%}\n"
    "    {%- set signature = function.name ~ '(' ~ _params(function.parameters if function.parameters is defined and function.parameters else {}) ~ ')' -%}\n"
    "    {%- set listed.lines = listed.lines + [signature ~ (': ' ~ description if description else '')] -%}\n"
    "  {%- endfor -%}\n"
    f"  {{%- set prompt = {_literal(_HEAD)} ~ listed.lines | join('\\n') ~ {_literal(_TAIL)} -%}}\n"
    "  {%- if ns.out and ns.out[0].role == 'system' -%}\n"
    "    {%- set first = ns.out[0].content -%}\n"
    "    {%- set ns.out = [{'role': 'system', 'content': ((first.rstrip() ~ '\\n\\n' ~ prompt) if first.strip() else prompt)}] + ns.out[1:] -%}\n"
    "  {%- else -%}\n"
    "    {%- set ns.out = [{'role': 'system', 'content': prompt}] + ns.out -%}\n"
    "  {%- endif -%}\n"
    "{%- endif -%}\n"
    "{%- set messages = ns.out -%}\n"
    "{%- set tools = none -%}\n"
)


def knows_tools(template: str | None) -> bool:
    """Does a chat template render tools itself? (It mentions the `tools` variable.)"""
    return bool(template) and "tools" in template


def tools_template(model_template: str) -> str:
    """The model's template, preceded by the rewrite of tool messages into the renderer's text."""
    if not model_template:
        raise ValueError("the model has no chat template to wrap")
    return _PREFIX + model_template


def model_chat_template(folder: Path) -> str | None:
    """The chat template saved with an HF folder (chat_template.jinja or tokenizer_config.json)."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    config = folder / "tokenizer_config.json"
    if config.is_file():
        template = json.loads(config.read_text()).get("chat_template")
        if isinstance(template, str):
            return template
        if isinstance(template, list):  # named templates: the default one
            for item in template:
                if item.get("name") == "default":
                    return item.get("template")
    return None


def write_tools_template(folder: Path, out: Path) -> Path | None:
    """Write the tools-aware template for a model folder; None when its own template handles tools."""
    template = model_chat_template(folder)
    if template is None:
        from ..errors import UserError

        raise UserError(f"{folder} has no chat template (chat_template.jinja or tokenizer_config.json): vLLM's chat API needs one")
    if knows_tools(template):
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(tools_template(template))
    return out
