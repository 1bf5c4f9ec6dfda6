"""`adapters lint` and the `deploy vllm` checks on tiny hand-made adapters (no server, no vLLM)."""

from __future__ import annotations

import json
import shlex

import pytest

from llm_deeper.deploy import env as vllm_env
from llm_deeper.deploy.adapters import base_modules, matching_targets, read_adapter
from llm_deeper.deploy.checks import plan
from llm_deeper.deploy.launch import VllmConfig, fitting_lora_rank
from llm_deeper.deploy.lint import lint
from llm_deeper.errors import UserError
from conftest import run_cli


def make_adapter(folder, base_dir, rank=4, targets=("q_proj", "v_proj"), modules_to_save=None, dtype="float32", layers=None):
    """A PEFT-shaped LoRA folder whose factors fit the tiny base model."""
    import torch
    from safetensors.torch import save_file

    config = json.loads((base_dir / "config.json").read_text())
    hidden, heads, kv = config["hidden_size"], config["num_attention_heads"], config.get("num_key_value_heads", config["num_attention_heads"])
    head_dim = config.get("head_dim") or hidden // heads
    out = {"q_proj": heads * head_dim, "k_proj": kv * head_dim, "v_proj": kv * head_dim, "o_proj": hidden}
    tensors = {}
    for layer in range(layers if layers is not None else config["num_hidden_layers"]):
        for name in targets:
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{name}"
            tensors[f"{prefix}.lora_A.weight"] = torch.zeros(rank, hidden, dtype=getattr(torch, dtype))
            tensors[f"{prefix}.lora_B.weight"] = torch.zeros(out.get(name, hidden), rank, dtype=getattr(torch, dtype))
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank, "target_modules": list(targets),
        "modules_to_save": modules_to_save, "base_model_name_or_path": str(base_dir)}))
    return folder


def test_adapter_facts_come_from_the_header(tiny_llama_dir, tmp_path):
    info = read_adapter(make_adapter(tmp_path / "a", tiny_llama_dir, rank=12, dtype="bfloat16"))
    assert info.rank == 12 and info.dtypes == {"BF16"} and info.adapted == {"q_proj", "v_proj"}
    modules = base_modules(tiny_llama_dir)
    chosen, missing = matching_targets(["q_proj", "nope"], modules)
    assert missing == ["nope"] and chosen and all(m.endswith(".q_proj") for m in chosen)
    last, _ = matching_targets(["q_proj"], modules, layers=[1])  # layers_to_transform: only layer 1 is adapted
    assert last == {m for m in chosen if ".layers.1." in m} and 0 < len(last) < len(chosen)
    assert fitting_lora_rank([12]) == 16 and fitting_lora_rank([8, 3]) == 8


def test_a_clean_adapter_is_accepted_by_vllm_and_ours_and_needs_conversion_elsewhere(tiny_llama_dir, tmp_path):
    _, verdicts = lint(make_adapter(tmp_path / "a", tiny_llama_dir))
    by_target = {v.target: v for v in verdicts}
    assert by_target["vllm"].ok and by_target["ours"].ok
    assert any("--max-lora-rank 8" in n for n in by_target["vllm"].notes)
    assert "convert peft-to-mlx" in by_target["mlx"].problems[0]
    assert "GGUF" in by_target["llamacpp"].problems[0]


def test_modules_to_save_and_unmatched_targets_are_refused_with_the_fix(tiny_llama_dir, tmp_path):
    _, verdicts = lint(make_adapter(tmp_path / "a", tiny_llama_dir, modules_to_save=["lm_head"]), ("vllm",))
    assert not verdicts[0].ok and "llm-deeper merge" in verdicts[0].problems[0]
    _, verdicts = lint(make_adapter(tmp_path / "b", tiny_llama_dir, targets=("query_key_value",), layers=0), ("vllm",))
    assert not verdicts[0].ok and "would change nothing" in verdicts[0].problems[0]


def test_lint_cli_exit_codes(tiny_llama_dir, tmp_path):
    good = make_adapter(tmp_path / "good", tiny_llama_dir)
    done = run_cli("adapters", "lint", str(good), "--target", "vllm")
    assert done.returncode == 0 and "accepts" in done.stdout
    done = run_cli("adapters", "lint", str(good), "--target", "mlx")
    assert done.returncode == 1 and "peft-to-mlx" in done.stdout
    done = run_cli("adapters", "lint", str(tmp_path), "--target", "vllm")
    assert done.returncode == 2 and "adapter_config.json is missing" in done.stderr and "Traceback" not in done.stderr
    done = run_cli("adapters", "lint", str(good), "--target", "tgi")
    assert done.returncode == 2 and "--target must be one of" in done.stderr


@pytest.fixture
def cpu_target(monkeypatch, tmp_path):
    monkeypatch.setattr(vllm_env, "has_nvidia_gpu", lambda: False)
    monkeypatch.setenv("LLM_DEEPER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(vllm_env.ENV_VAR, str(tmp_path / "no-env"))


def test_plan_for_cpu_has_fp32_lora_tools_and_kv_sizing(tiny_llama_dir, tmp_path, cpu_target):
    adapter = make_adapter(tmp_path / "a", tiny_llama_dir, rank=12)
    checked = plan(VllmConfig(model=str(tiny_llama_dir), loras={"tools": str(adapter)}, tools=True, kv_cache_gib=0.5, max_model_len=64))
    argv = checked.argv
    assert argv[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert argv[argv.index("--dtype") + 1] == "float32" and argv[argv.index("--max-lora-rank") + 1] == "16"
    assert f"tools={adapter.resolve()}" in argv and argv[argv.index("--tool-call-parser") + 1] == "hermes"
    assert argv[argv.index("--tool-strict-level") + 1] == "parameter"  # forced calls held to each tool's schema
    assert "--chat-template" in argv and checked.variables == {"VLLM_CPU_KVCACHE_SPACE": "0.5"}
    assert (tmp_path / "home" / "vllm" / f"{tiny_llama_dir.name}.tools.jinja").read_text().startswith("{#- Tools")  # the command's template exists
    config = json.loads((tiny_llama_dir / "config.json").read_text())
    per_token = 2 * config["num_hidden_layers"] * config["num_key_value_heads"] * (config["hidden_size"] // config["num_attention_heads"]) * 4
    assert checked.kv_tokens == int(0.5 * 2**30 // per_token) and checked.kv_sequences == checked.kv_tokens // 64


def test_plan_refuses_what_vllm_would_refuse_or_misserve(tiny_llama_dir, tmp_path, cpu_target):
    wide = make_adapter(tmp_path / "wide", tiny_llama_dir, rank=40)
    with pytest.raises(UserError, match="exceeds --max-lora-rank 32"):
        plan(VllmConfig(model=str(tiny_llama_dir), loras={"a": str(wide)}, max_lora_rank=32))
    with pytest.raises(UserError, match="not one vLLM accepts"):
        plan(VllmConfig(model=str(tiny_llama_dir), loras={"a": str(wide)}, max_lora_rank=48))
    saved = make_adapter(tmp_path / "saved", tiny_llama_dir, modules_to_save=["lm_head"])
    with pytest.raises(UserError, match="modules_to_save"):
        plan(VllmConfig(model=str(tiny_llama_dir), loras={"a": str(saved)}))
    with pytest.raises(UserError, match="unknown tool-call parser"):
        plan(VllmConfig(model=str(tiny_llama_dir), tools=True), tool_parser="herms")
    with pytest.raises(UserError, match="less than one sequence"):
        plan(VllmConfig(model=str(tiny_llama_dir), device="cuda", max_model_len=64), gpu_memory_gib=1)


def test_deploy_cli_dry_run_prints_the_command_and_bad_input_is_one_line(tiny_llama_dir, tmp_path):
    adapter = make_adapter(tmp_path / "a", tiny_llama_dir)
    env = {vllm_env.ENV_VAR: str(tmp_path / "no-env")}
    done = run_cli("deploy", "vllm", "--model", str(tiny_llama_dir), "--lora", f"tools={adapter}", "--tools", "--max-model-len", "64", env=env)
    assert done.returncode == 0, done.stderr
    argv = shlex.split(done.stdout.strip().splitlines()[-1])
    assert "vllm.entrypoints.openai.api_server" in argv and "--enable-lora" in argv and "KV cache" in done.stderr
    assert not (tmp_path / "no-env").exists()  # a dry run installs nothing
    done = run_cli("deploy", "vllm", "--model", str(tiny_llama_dir), "--lora", "tools", env=env)
    assert done.returncode == 2 and "--lora expects NAME=DIR" in done.stderr and "Traceback" not in done.stderr
    done = run_cli("deploy", "vllm", "--model", str(tiny_llama_dir), "--max-model-len", "999999", env=env)
    assert done.returncode == 2 and "exceeds the model's context" in done.stderr
    if not vllm_env.has_nvidia_gpu():
        done = run_cli("deploy", "vllm", "--model", str(tiny_llama_dir), "--gpu-memory", "24", "--run", env=env)
        assert done.returncode == 2 and "no NVIDIA GPU" in done.stderr


def test_parser_names_are_read_from_the_vllm_environment(tmp_path):
    from llm_deeper.deploy.checks import installed_parsers

    registry = tmp_path / "env" / "lib" / "python3.11" / "site-packages" / "vllm" / "tool_parsers" / "__init__.py"
    registry.parent.mkdir(parents=True)
    registry.write_text('_TOOL_PARSERS_TO_REGISTER = {\n    "hermes": (\n        "hermes_tool_parser",\n        "Hermes2ProToolParser",\n    ),\n'
                        '    "deepseek_v3": (  # name\n        "deepseekv3_tool_parser",  # filename\n    ),\n}\n')
    assert installed_parsers(tmp_path / "env" / "bin" / "python") == ("deepseek_v3", "hermes")
    assert installed_parsers(tmp_path / "nothing" / "bin" / "python") is None
