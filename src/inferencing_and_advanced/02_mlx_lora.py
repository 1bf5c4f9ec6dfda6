"""MLX LoRA: fine-tune with mlx-lm, generate with the adapter, serve it twice (mlx-lm's server and ours).

What you learn:
- `mlx_lm lora --train`: mlx-lm's own LoRA trainer on our tool data (rank, scale and keys in a config file);
- `stream_generate`: mlx-lm's one generation path (its CLI, chat and server all use it), token by token;
- `mlx_lm server --adapter-path`: an OpenAI-compatible server, called with the official `openai` client;
- the MLX adapter converted to PEFT (`llm-deeper convert mlx-to-peft`), equal logits, served by `llm-deeper serve --lora`.

Run: python src/inferencing_and_advanced/02_mlx_lora.py   (--quick: tiny random model, seconds)
Takes: about 5 minutes on a 2-core AVX2-only CPU (282 s measured on such an AMD EPYC, the slowest machine we support; 227 s
on a 2-core AVX-512 EPYC at load 6: a 2-step mlx-lm fine-tune ~2.7 minutes, two servers; mlx[cpu] on Linux multiplies with the
reference BLAS, which torch's AVX2 switches do not reach, so mlx-lm reads ~10 tokens/s on either).
MLX runs on the CPU here (`mlx[cpu]`), on Metal on Apple silicon.
"""

# %%
import json
import sys

import numpy as np
import openai

from llm_deeper.chat_format import prompt_ids, template_messages
from llm_deeper.convert.lora_shapes import base_folder
from llm_deeper.convert.mlx_runtime import MlxLmServer, load_mlx, mlx_logits, mlx_status
from llm_deeper.convert.mlx_to_peft import mlx_to_peft
from llm_deeper.data.sft import ChatExample, read_jsonl, write_jsonl
from llm_deeper.convert.mlx_lora import MlxLoraConfig, train_mlx_lora
from llm_deeper.finetune.tool_probe import expected_tool, prompt_messages
from llm_deeper.finetune.tool_recipe import lesson_setup
from llm_deeper.lesson import check, done, is_quick, output_dir, saved, section, show
from llm_deeper.tools.formats import HERMES

usable, reason = mlx_status()
if not usable:
    print(f"This lesson needs MLX: {reason}")
    sys.exit(0)
out = output_dir("inferencing_02")
quick = is_quick()
setup = lesson_setup(out, quick)
base = base_folder(setup.model)

section("1. A LoRA fine-tune with mlx-lm's own trainer")
# mlx-lm on a Linux CPU multiplies with the reference BLAS (~10 tokens/s through the default model), so the lesson
# trains two steps on its two shortest conversations, one per step (~70 s a step on 2 busy cores)
train = write_jsonl(out / "mlx-train.jsonl", sorted(read_jsonl(setup.train), key=lambda e: len(json.dumps(e.to_json())))[:2])
# mlx-lm wants a validation set and reports its loss before and after; one short chat keeps that cheap
valid = write_jsonl(out / "mlx-valid.jsonl", [ChatExample([{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hello! How can I help?"}])])
config = MlxLoraConfig(
    model=setup.model, train=train, valid=valid, output=out / "mlx-adapter",
    iters=2, batch_size=1, num_layers=-1 if quick else 4, rank=8, scale=2.0,
    learning_rate=5e-2 if quick else 1e-3, max_seq_length=setup.max_length,
)
show("command", "python -m mlx_lm lora --model BASE --train --data DIR --iters N --num-layers K --mask-prompt --config lora.yaml")
run = train_mlx_lora(config, log=lambda line: print("   ", line, flush=True))
saved(run.folder)
check("mlx-lm wrote an adapter (adapter_config.json + adapters.safetensors)", (run.folder / "adapters.safetensors").exists())
check("it reported a training loss at every step", len(run.train_losses) == config.iters)

# %%
section("2. Generate with the adapter, streamed (mlx_lm.stream_generate)")
from mlx_lm import stream_generate  # noqa: E402
from mlx_lm.sample_utils import make_sampler  # noqa: E402

model, tokenizer = load_mlx(base, run.folder)
question = [{"role": "user", "content": "What is the capital of France?"}]
prompt = tokenizer.apply_chat_template(question, add_generation_prompt=True, return_dict=False)
pieces, ids = [], []
print("  ", end="")
for response in stream_generate(model, tokenizer, prompt, max_tokens=12 if quick else 24, sampler=make_sampler(temp=0.0)):
    print(response.text, end="", flush=True)
    pieces.append(response.text)
    if response.finish_reason != "stop":
        ids.append(response.token)
print()
last = response
show("speed", f"{last.generation_tps:.1f} tokens/s decoding, {last.prompt_tps:.0f} tokens/s prompt")
check("the streamed pieces add up to the decoded tokens", "".join(pieces) == tokenizer.decode(ids))

# %%
section("3. mlx-lm's own server with the adapter, called with the openai client")
example = min((e for e in read_jsonl(setup.test) if expected_tool(e)), key=lambda e: len(json.dumps(e.to_json())))  # the shortest: mlx-lm reads it first
# SmolLM2's chat template has no tools section and mlx-lm picks its tool parser from the template,
# so the tools go into the system message as text by our renderer (what the fine-tune saw), and we parse the reply.
messages = template_messages(prompt_messages(example), example.tools)
with MlxLmServer(base, run.folder) as server:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    show("server", f"{server.url} (python -m mlx_lm server --model BASE --adapter-path ADAPTER)")
    reply = client.chat.completions.create(model="default_model", messages=messages, max_tokens=16 if quick else 48, temperature=0.0)
text = reply.choices[0].message.content or ""
calls = HERMES.parse(text).calls
show("question", messages[-1]["content"])
show("reply", repr(text[:160]))
show("tool call", f"{calls[0].name}({calls[0].arguments})" if calls else "none parsed (a few steps of training rarely teach the format)")
check("mlx-lm's server answered through the openai client", reply.usage.completion_tokens > 0 and isinstance(text, str))

# %%
section("4. The MLX adapter as a PEFT adapter: equal logits, served by our server")
peft_dir, peft_config = mlx_to_peft(run.folder, out / "peft-from-mlx", model=setup.model, force=True)
saved(peft_dir)
show("PEFT config", f"r={peft_config['r']}, lora_alpha={peft_config['lora_alpha']:g} (= scale {config.scale:g} × r), "
                    f"target_modules={peft_config['target_modules']}, layers_to_transform={peft_config['layers_to_transform']}")
import torch  # noqa: E402

from llm_deeper.finetune.merge import load_with_adapter  # noqa: E402

peft_model, hf_tokenizer = load_with_adapter(setup.model, peft_dir)
ids = prompt_ids(hf_tokenizer, question)  # a short prompt: the adapter acts on every position alike
with torch.no_grad():
    theirs = peft_model(input_ids=torch.tensor([ids])).logits[0].numpy()
ours = mlx_logits(model, ids)
worst = float(np.abs(ours - theirs).max())
check("PEFT with the converted adapter gives mlx-lm's logits", worst < 1e-3, f"max |Δ| = {worst:.1e} over {len(ids)} positions")
del peft_model, model

from llm_deeper.inference.engine import Engine  # noqa: E402
from llm_deeper.models.loaders import load_model  # noqa: E402
from llm_deeper.serve.app import create_app  # noqa: E402
from llm_deeper.serve.background import BackgroundServer  # noqa: E402

engine = Engine(load_model(setup.model), adapters={"mlx-lora": peft_dir}, max_batch=2)
try:
    with BackgroundServer(create_app(engine)) as ours_server:
        client = openai.OpenAI(base_url=ours_server.url + "/v1", api_key="unused", max_retries=0)
        names = [m.id for m in client.models.list().data]
        answer = client.chat.completions.create(model="mlx-lora", messages=messages, max_tokens=16 if quick else 64, temperature=0.0)
finally:
    engine.close()
show("our server's models", names)
show("reply with the adapter", repr((answer.choices[0].message.content or "")[:160]))
check("our server serves the mlx-trained adapter by name", "mlx-lora" in names and answer.usage.completion_tokens > 0)
show("the same from a shell", f"llm-deeper serve --model {setup.model} --lora mlx-lora={peft_dir}")

done()
