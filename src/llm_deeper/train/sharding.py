"""How the model is spread over processes under torchrun: DDP (replicas) or FSDP (shards).

- DDP: every process holds every weight and the whole optimizer state;
  gradients are all-reduced during backward.
- FSDP (PyTorch's `fully_shard`, per-parameter sharding): each process holds
  1/N of every weight, gradient and Adam moment; a decoder layer's weights are
  all-gathered just before it runs and freed after, gradients reduce-scattered.
  Per-process memory for parameters + optimizer drops by about N×, at the cost
  of more communication.

Checkpoints and the final output are always written unsharded by rank 0
(the same files as one process writes), so a run can resume on another
number of processes' worth of hardware only with the same world size
(the data order depends on it), but its output loads anywhere.
TinyGPT pre-training and fine-tuning both shard through here.
"""

from __future__ import annotations

SHARDINGS = ("ddp", "fsdp")


def wrap_for_training(loss_module, info, sharding: str, blocks=()):
    """The module to call for a training step: itself (one process), DDP, or FSDP with each of `blocks` sharded on its own."""
    if not info.enabled:
        return loss_module
    if sharding == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for layer in blocks:
            fully_shard(layer)  # each block gathered on its own: only one block's full weights live at once
        fully_shard(loss_module)  # the rest: embeddings, final norm, head
        return loss_module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(loss_module, device_ids=[info.local_rank] if info.device.type == "cuda" else None)


def full_trainable_state(loss_module, optimizer, info, sharding: str, everything: bool = False) -> tuple[dict, dict | None]:
    """(trainable weights, optimizer state), unsharded, on the CPU; complete on rank 0.

    With `everything`, all weights (a full fine-tune's output). A collective under FSDP: every rank calls it.
    """
    names = {name for name, p in loss_module.named_parameters() if p.requires_grad or everything}
    if info.enabled and sharding == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        weights = {k: v for k, v in get_model_state_dict(loss_module, options=options).items() if k in names}
        optim = get_optimizer_state_dict(loss_module, optimizer, options=options) if optimizer is not None else None
        return weights, optim
    weights = {name: p.detach().cpu() for name, p in loss_module.named_parameters() if name in names}
    return weights, optimizer.state_dict() if optimizer is not None else None


def full_state(module, optimizer, info, sharding: str) -> tuple[dict, dict]:
    """(the module's whole state_dict, the optimizer's), unsharded on the CPU: what one process would save.

    A collective under FSDP (every rank calls it; rank 0 gets the complete copy).
    """
    if info.enabled and sharding == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_model_state_dict(module, options=options), get_optimizer_state_dict(module, optimizer, options=options)
    return module.state_dict(), optimizer.state_dict()


def load_optimizer_state(module, optimizer, state: dict, info, sharding: str) -> None:
    """Put a saved (unsharded) optimizer state back; under FSDP each rank keeps its shard of it."""
    if info.enabled and sharding == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(module, optimizer, state, options=StateDictOptions(full_state_dict=True))
        return
    optimizer.load_state_dict(state)


def load_trainable_state(loss_module, optimizer, weights: dict, optimizer_state: dict, info, sharding: str) -> None:
    """Put a checkpoint's weights and optimizer state back (every rank reads the same file)."""
    import torch

    from ..errors import UserError

    params = dict(loss_module.named_parameters())
    unknown = [name for name in weights if name not in params]
    if unknown:
        raise UserError(f"the checkpoint does not fit this model ({len(unknown)} unknown weights, e.g. {unknown[0]}); resume with the same --model and --method")
    if info.enabled and sharding == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict, set_optimizer_state_dict

        options = StateDictOptions(full_state_dict=True, strict=False)
        set_model_state_dict(loss_module, weights, options=options)
        set_optimizer_state_dict(loss_module, optimizer, optimizer_state, options=options)
        return
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    optimizer.load_state_dict(optimizer_state)


def local_mb(tensors) -> float:
    """MiB these tensors take in this process: a sharded (DTensor) one counts only its local shard."""
    import torch

    total = 0
    for t in tensors:
        if isinstance(t, torch.Tensor):
            local = t.to_local() if hasattr(t, "to_local") else t
            total += local.numel() * local.element_size()
    return total / 2**20
