"""Retraining a decoded genotype from scratch (``midas train``).

The protocols of MIDAS.md section 4 are the defaults: every ``train.*`` key left null
resolves by space family and dataset (``train_protocol``). ``run_train`` writes
``metrics.json``, ``train_log.csv``, ``config.yaml`` and an atomic ``checkpoint.pt``
after every epoch; rerunning with the same output folder resumes from it, and because
the RNG is reseeded at every epoch start a resumed CPU run is bitwise identical to an
uninterrupted one.

Data stay in memory as uint8 tensors and are batched and augmented in-process
(``midas.data.BatchLoader``), so no DataLoader workers are involved: on a CPU both
cores go to torch's intra-op threads (``threads`` caps them).
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from midas import checkpoint, io
from midas import config as config_mod
from midas.data import BatchLoader, ImageArrays, Normalizer, load_split
from midas.errors import ConfigError, NonFiniteLossError
from midas.evalnets import DropPathMixin, build_eval_network, count_parameters
from midas.flops import flops_summary
from midas.genotypes import Genotype, load_genotype_file
from midas.runtime import autocast, configure, epoch_seed, grad_scaler, log, progress, seed_everything
from midas.search import genotype_json
from midas.spaces import SearchSpace

CHECKPOINT = "checkpoint.pt"
#: config keys that may differ between a checkpoint and the resuming run (speed, not results)
RESUME_FREE = {"device", "progress", "threads", "train.memory_check", "train.compile", "train.channels_last"}

#: DARTS-family protocol (DARTS paper); NB201 protocol (NAS-Bench-201 paper, 200 epochs)
PROTOCOLS: dict[str, dict[str, Any]] = {
    "darts": {"epochs": 600, "batch_size": 96, "lr": 0.025, "nesterov": False, "weight_decay": 3e-4,
              "cutout": 16, "drop_path": 0.2, "auxiliary_weight": 0.4},
    "nb201": {"epochs": 200, "batch_size": 256, "lr": 0.1, "nesterov": True, "weight_decay": 5e-4,
              "cutout": 0, "drop_path": 0.0, "auxiliary_weight": 0.0, "channels": 16},
}
#: RobustDARTS evaluation sizes (layers, channels) on CIFAR-10; other datasets use 8 / 16
RDARTS_CIFAR10 = {"s1": (20, 36), "s2": (20, 16), "s3": (20, 36), "s4": (20, 16)}
RDARTS_OTHER = (8, 16)
DARTS_SIZE = (20, 36)


def network_size(space: SearchSpace, dataset: str) -> tuple[int, int]:
    """(layers, channels) of the evaluation network by space and dataset (MIDAS.md section 4)."""
    if space.family == "nb201":
        return 0, PROTOCOLS["nb201"]["channels"]
    if space.name in RDARTS_CIFAR10:
        return RDARTS_CIFAR10[space.name] if dataset == "cifar10" else RDARTS_OTHER
    return DARTS_SIZE


def train_protocol(cfg: dict[str, Any], space: SearchSpace) -> dict[str, Any]:
    """``cfg['train']`` with every null resolved to the protocol default of the space family."""
    t = dict(cfg["train"])
    for key, value in PROTOCOLS[space.family].items():
        if t.get(key) is None:
            t[key] = value
    layers, channels = network_size(space, cfg["dataset"])
    if t["layers"] is None:
        t["layers"] = layers
    if t["channels"] is None:
        t["channels"] = channels
    for key in ("epochs", "batch_size", "eval_batch_size", "channels", "cells_per_stage"):
        if t[key] <= 0:
            raise ConfigError(f"train.{key} must be positive, got {t[key]}")
    if t["lr"] <= 0:
        raise ConfigError(f"train.lr must be positive, got {t['lr']}")
    if not 0.0 <= t["drop_path"] < 1.0:
        raise ConfigError(f"train.drop_path must be in [0, 1), got {t['drop_path']}")
    if t["auxiliary_weight"] < 0 or t["cutout"] < 0 or not 0.0 <= t["label_smoothing"] < 1.0:
        raise ConfigError("train.auxiliary_weight and train.cutout must be >= 0, train.label_smoothing in [0, 1)")
    return t


def drop_path_at(max_prob: float, epoch: int, epochs: int) -> float:
    """DARTS schedule: the probability grows linearly from 0 at epoch 0 towards ``max_prob``."""
    return max_prob * epoch / epochs


# ---------------------------------------------------------------------- steps

def _forward(model: nn.Module, x: torch.Tensor, amp: str, device: torch.device
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
    with autocast(amp, device):
        logits, aux = model(x)
    return logits.float(), (aux.float() if aux is not None else None)


def train_epoch(model: nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                loader: BatchLoader, epoch: int, t: dict[str, Any], cfg: dict[str, Any],
                device: torch.device, desc: str) -> tuple[float, float]:
    """One pass over the training split; returns (mean loss, accuracy in percent)."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    loss_sum, correct, seen = 0.0, 0, 0
    memory_format = torch.channels_last if t["channels_last"] else torch.contiguous_format
    for step, (x, y) in progress(enumerate(loader.epoch(epoch)), len(loader), desc, cfg["progress"]):
        x = x.to(device, non_blocking=True).contiguous(memory_format=memory_format)
        y = y.to(device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        logits, aux = _forward(model, x, cfg["amp"], device)
        loss = F.cross_entropy(logits, y, label_smoothing=t["label_smoothing"])
        if aux is not None and t["auxiliary_weight"] > 0:
            loss = loss + t["auxiliary_weight"] * F.cross_entropy(aux, y, label_smoothing=t["label_smoothing"])
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss became {loss.item()} at epoch {epoch + 1} step {step + 1}; "
                "lower train.lr, keep train.grad_clip on, or use amp=none"
            )
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_(params, t["grad_clip"])
        scaler.step(opt)
        scaler.update()
        loss_sum += loss.item() * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
    return loss_sum / max(seen, 1), 100.0 * correct / max(seen, 1)


@torch.no_grad()
def evaluate(model: nn.Module, loader: BatchLoader, cfg: dict[str, Any], device: torch.device,
             channels_last: bool = False) -> tuple[float, float]:
    """Loss and top-1 accuracy (percent) on ``loader`` in eval mode."""
    model.eval()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    loss_sum, correct, seen = 0.0, 0, 0
    for x, y in loader.epoch(0):
        x = x.to(device, non_blocking=True).contiguous(memory_format=memory_format)
        y = y.to(device, non_blocking=True)
        logits, _ = _forward(model, x, cfg["amp"], device)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
    return loss_sum / max(seen, 1), 100.0 * correct / max(seen, 1)


# ---------------------------------------------------------------------- memory

class _LogitsOnly(nn.Module):
    """Adapter for ``midas.memory``, which expects a module returning logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits, aux = self.model(x)
        return logits if aux is None else logits + 0.0 * aux.sum()


def check_train_memory(model: nn.Module, loader: BatchLoader, device: torch.device) -> None:
    from midas.errors import ResourceError
    from midas.memory import available_bytes, check_fits, estimate_bytes

    batch = next(iter(loader.epoch(0)))
    need = estimate_bytes(_LogitsOnly(model), batch, loader.batch_size, device)
    try:
        check_fits(need, available_bytes(device), loader.batch_size, "training")
    except ResourceError as exc:
        raise ResourceError(str(exc).replace("search.memory_check", "train.memory_check")) from None


# ---------------------------------------------------------------------- driver

def _num_classes(train: ImageArrays, test: ImageArrays) -> int:
    return int(max(train.y.max() + 1, test.y.max() + 1, len(train.class_names)))


def build_for(space: SearchSpace, genotype: Genotype, t: dict[str, Any], num_classes: int,
              in_channels: int) -> DropPathMixin:
    return build_eval_network(space, genotype, num_classes, t["channels"], t["layers"], t["cells_per_stage"],
                              auxiliary=t["auxiliary_weight"] > 0, drop_path=t["drop_path"] > 0,
                              in_channels=in_channels)


def run_train(cfg: dict[str, Any], genotype_path: str | Path, out: str | Path, fresh: bool = False) -> dict[str, Any]:
    """Retrain the genotype in ``genotype_path`` (resuming from ``out``) and write the outputs."""
    out = Path(out)
    space, genotype, record = load_genotype_file(genotype_path)
    cfg = copy.deepcopy(cfg)
    cfg["space"] = space.name
    if record.get("method") in config_mod.CHOICES["method"]:
        cfg["method"] = record["method"]
    t = train_protocol(cfg, space)
    cfg["train"] = t  # the resolved protocol is what config.yaml and the checkpoint record
    device = configure(cfg)
    seed_everything(cfg["seed"])

    train_set, test_set = load_split(cfg, train=True), load_split(cfg, train=False)
    norm = Normalizer.fit(train_set.x)
    train_loader = BatchLoader(train_set, t["batch_size"], norm, True, cfg["data"]["augment"], t["cutout"],
                               seed=cfg["seed"])
    test_loader = BatchLoader(test_set, t["eval_batch_size"], norm, False)
    num_classes = _num_classes(train_set, test_set)
    in_channels, h, w = train_set.x.shape[-1], train_set.x.shape[1], train_set.x.shape[2]

    model = build_for(space, genotype, t, num_classes, in_channels)
    params = count_parameters(model)
    cost = flops_summary(model, (in_channels, h, w))
    model = model.to(device)
    if t["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), t["lr"], momentum=t["momentum"], weight_decay=t["weight_decay"],
                          nesterov=t["nesterov"])
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, t["epochs"], eta_min=t["lr_min"])
    scaler = grad_scaler(cfg["amp"], device)
    if t["memory_check"]:
        check_train_memory(model, train_loader, device)

    ckpt_path = out / CHECKPOINT
    rows: list[dict[str, Any]] = []
    start, wall = 0, 0.0
    state = None if fresh else checkpoint.load_for_resume(ckpt_path, cfg, RESUME_FREE)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        rows, start, wall = state["rows"], state["epoch"], state["wall_time"]
        log.info("resuming %s from epoch %d of %d", out, start, t["epochs"])
    out.mkdir(parents=True, exist_ok=True)
    io.write_text(out / "config.yaml", config_mod.dump(cfg))

    runner: nn.Module = torch.compile(model) if t["compile"] else model
    name = f"train {space.name}/{cfg['dataset']} seed {cfg['seed']}"
    for epoch in range(start, t["epochs"]):
        t0 = time.perf_counter()
        seed_everything(epoch_seed(cfg["seed"], epoch))
        model.set_drop_path(drop_path_at(t["drop_path"], epoch, t["epochs"]))
        lr = opt.param_groups[0]["lr"]
        train_loss, train_acc = train_epoch(runner, opt, scaler, train_loader, epoch, t, cfg, device,
                                            f"{name} epoch {epoch + 1}/{t['epochs']}")
        scheduler.step()
        test_loss, test_acc = evaluate(runner, test_loader, cfg, device, t["channels_last"])
        dt = time.perf_counter() - t0
        wall += dt
        rows.append({"epoch": epoch + 1, "lr": lr, "train_loss": train_loss, "train_acc": train_acc,
                     "test_loss": test_loss, "test_acc": test_acc, "epoch_time_s": round(dt, 3),
                     "wall_time_s": round(wall, 3)})
        log.info("%s epoch %d/%d train_acc %.2f test_acc %.2f (%.1fs)", name, epoch + 1, t["epochs"],
                 train_acc, test_acc, dt)
        io.write_csv(out / "train_log.csv", rows)
        checkpoint.save(ckpt_path, {"epoch": epoch + 1, "rows": rows, "wall_time": wall,
                                    "model": model.state_dict(), "optimizer": opt.state_dict(),
                                    "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                                    "rng": checkpoint.rng_state(), "config": json.dumps(cfg)})
    if rows:
        io.write_csv(out / "train_log.csv", rows)
    metrics = _metrics(cfg, space, genotype, record, genotype_path, rows, params, cost, wall,
                       len(train_set), len(test_set), device)
    io.write_json(out / "metrics.json", metrics)  # written last: its presence means "done"
    return metrics


def _metrics(cfg: dict[str, Any], space: SearchSpace, genotype: Genotype, record: dict[str, Any],
             genotype_path: str | Path, rows: list[dict[str, Any]], params: int, cost: dict[str, float],
             wall: float, n_train: int, n_test: int, device: torch.device) -> dict[str, Any]:
    t = cfg["train"]
    final = rows[-1]["test_acc"] if rows else float("nan")
    best_row = max(rows, key=lambda r: r["test_acc"]) if rows else None
    best = best_row["test_acc"] if best_row else float("nan")
    return {
        "space": space.name, "method": record.get("method"), "dataset": cfg["dataset"], "seed": cfg["seed"],
        "search_seed": record.get("seed"), "genotype": genotype_json(genotype),
        "genotype_file": Path(genotype_path).name, "source": "train",
        "test_acc": round(final, 4), "test_err": round(100.0 - final, 4),
        "best_test_acc": round(best, 4), "best_test_err": round(100.0 - best, 4),
        "best_epoch": best_row["epoch"] if best_row else None,
        "params_m": round(params / 1e6, 6), "params": params, **cost,
        "epochs": t["epochs"], "train_time_s": round(wall, 3), "device": device.type,
        "budget": {"epochs": t["epochs"], "batch_size": t["batch_size"], "layers": t["layers"],
                   "channels": t["channels"], "cells_per_stage": t["cells_per_stage"], "n_train": n_train,
                   "n_test": n_test, "subset_train": cfg["data"]["subset_train"],
                   "subset_test": cfg["data"]["subset_test"]},
        "protocol": {k: t[k] for k in ("lr", "lr_min", "momentum", "nesterov", "weight_decay", "grad_clip",
                                       "cutout", "drop_path", "auxiliary_weight", "label_smoothing")},
    }
