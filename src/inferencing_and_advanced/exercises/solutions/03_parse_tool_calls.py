import json
import re

CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)


def solve(text: str) -> tuple[str, list[tuple[str, dict]]]:
    calls = []
    for body in CALL.findall(text):
        call = json.loads(body)
        calls.append((call["name"], call.get("arguments", {})))
    return CALL.sub("", text).strip(), calls
