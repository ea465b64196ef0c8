"""Bilevel architecture search (DARTS protocol) for MIDAS and DARTS supernets.

``BilevelSearcher`` is the optimizer interface: ``step`` runs one architecture update
on a validation batch and one weight update on a training batch; ``evaluate`` runs the
validation half once and returns the global weights; ``final_architecture`` decodes
them. ``run_search`` wraps it with data, checkpoint/resume and the output files.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from midas import checkpoint, io
from midas import config as config_mod
from midas.data import BatchLoader, ImageArrays, Normalizer, load_split
from midas.decode import decode, default_rule
from midas.errors import NonFiniteLossError
from midas.genotypes import Genotype, Nb201Arch
from midas.runtime import autocast, configure, epoch_seed, grad_scaler, log, progress, seed_everything
from midas.spaces import SearchSpace, get_space
from midas.supernet import Supernet, WeightingConfig, build_supernet
from midas.supernet.mixing import pair_index

CHECKPOINT = "checkpoint.pt"
#: config keys that may differ between a checkpoint and the resuming run
RESUME_FREE = {"device", "progress", "threads", "search.memory_check"}


def _requires_grad(params: list[nn.Parameter], flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


def _finite(loss: torch.Tensor, where: str) -> None:
    if not torch.isfinite(loss).all():
        raise NonFiniteLossError(f"loss became {loss.item()} at {where}")


@dataclass
class WeightStats:
    """Per-epoch validation pass: accuracy, global weights and (optionally) per-sample weights."""

    loss: float
    acc: float
    abar: dict[str, np.ndarray]
    pair_bar: dict[str, list[np.ndarray]]
    samples: dict[str, np.ndarray] = field(default_factory=dict)


class BilevelSearcher:
    def __init__(self, model: Supernet, cfg: dict[str, Any], device: torch.device) -> None:
        self.model, self.cfg, self.device = model.to(device), cfg, device
        s = cfg["search"]
        self.arch_params = model.arch_parameters()
        self.weight_params = model.weight_parameters()
        self.w_opt = torch.optim.SGD(self.weight_params, s["lr"], momentum=s["momentum"],
                                     weight_decay=s["weight_decay"])
        self.a_opt = torch.optim.Adam(self.arch_params, s["arch_lr"], betas=tuple(s["arch_betas"]),
                                      weight_decay=s["arch_weight_decay"])
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.w_opt, s["epochs"], eta_min=s["lr_min"])
        self.scaler = grad_scaler(cfg["amp"], device)
        self.amp = cfg["amp"]
        self.second_order = s["order"] == "second"

    # ------------------------------------------------------------------ steps
    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast(self.amp, self.device):
            logits = self.model(x)
        return F.cross_entropy(logits.float(), y), logits

    def arch_step(self, xv: torch.Tensor, yv: torch.Tensor, xt: torch.Tensor, yt: torch.Tensor,
                  where: str) -> tuple[float, float]:
        self.a_opt.zero_grad(set_to_none=True)
        if self.second_order:
            loss, correct = self._unrolled_backward(xt, yt, xv, yv, where)
        else:
            _requires_grad(self.weight_params, False)
            try:
                loss, logits = self._loss(xv, yv)
                _finite(loss, where + " (architecture step)")
                self.scaler.scale(loss).backward()
            finally:
                _requires_grad(self.weight_params, True)
            correct = (logits.argmax(1) == yv).float().mean().item()
        self.scaler.step(self.a_opt)
        self.scaler.update()
        return loss.item(), correct

    def weight_step(self, x: torch.Tensor, y: torch.Tensor, where: str) -> tuple[float, float]:
        _requires_grad(self.arch_params, False)
        try:
            self.w_opt.zero_grad(set_to_none=True)
            loss, logits = self._loss(x, y)
            _finite(loss, where + " (weight step)")
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.w_opt)
            nn.utils.clip_grad_norm_(self.weight_params, self.cfg["search"]["grad_clip"])
            self.scaler.step(self.w_opt)
            self.scaler.update()
        finally:
            _requires_grad(self.arch_params, True)
        return loss.item(), (logits.argmax(1) == y).float().mean().item()

    def step(self, train_batch: tuple[torch.Tensor, torch.Tensor], val_batch: tuple[torch.Tensor, torch.Tensor],
             where: str = "") -> dict[str, float]:
        xt, yt = (t.to(self.device, non_blocking=True) for t in train_batch)
        xv, yv = (t.to(self.device, non_blocking=True) for t in val_batch)
        self.model.train()
        a_loss, a_acc = self.arch_step(xv, yv, xt, yt, where)
        w_loss, w_acc = self.weight_step(xt, yt, where)
        return {"train_loss": w_loss, "train_acc": w_acc, "arch_loss": a_loss, "arch_acc": a_acc}

    # ------------------------------------------------------------ second order
    def _unrolled_backward(self, xt: torch.Tensor, yt: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor,
                           where: str) -> tuple[torch.Tensor, float]:
        """DARTS's unrolled gradient with the finite-difference Hessian-vector product."""
        model = self.model
        names = [n for n, _ in model.named_parameters() if not model.is_arch_name(n)]
        anames = [n for n, _ in model.named_parameters() if model.is_arch_name(n)]
        params = dict(model.named_parameters())
        w = [params[n] for n in names]
        a = [params[n] for n in anames]
        buffers = {n: b.clone() for n, b in model.named_buffers()}  # keep running stats untouched
        s = self.cfg["search"]
        eta = s["unrolled_eta"] if s["unrolled_eta"] is not None else self.w_opt.param_groups[0]["lr"]
        mom, wd = s["momentum"], s["weight_decay"]

        def loss_at(weights: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            p = {**dict(zip(names, weights)), **dict(zip(anames, a)), **buffers}
            return F.cross_entropy(functional_call(model, p, (x,)), y)

        g = torch.autograd.grad(loss_at(w, xt, yt), w)
        unrolled = []
        for p, gp in zip(w, g):
            buf = self.w_opt.state.get(p, {}).get("momentum_buffer")
            step = gp + wd * p.detach() + (mom * buf if buf is not None else 0.0)
            unrolled.append((p.detach() - eta * step).requires_grad_(True))
        p = {**dict(zip(names, unrolled)), **dict(zip(anames, a)), **buffers}
        logits = functional_call(model, p, (xv,))
        loss = F.cross_entropy(logits, yv)
        _finite(loss, where + " (unrolled architecture step)")
        grads = torch.autograd.grad(loss, a + unrolled)
        da, dw = grads[: len(a)], grads[len(a):]
        r = 1e-2 / torch.sqrt(sum((d * d).sum() for d in dw))
        with torch.no_grad():
            w_plus = [p.detach() + r * d for p, d in zip(w, dw)]
            w_minus = [p.detach() - r * d for p, d in zip(w, dw)]
        g_plus = torch.autograd.grad(loss_at(w_plus, xt, yt), a)
        g_minus = torch.autograd.grad(loss_at(w_minus, xt, yt), a)
        for ap, d, gp_, gm in zip(a, da, g_plus, g_minus):
            ap.grad = d - eta * (gp_ - gm) / (2 * r)
        return loss.detach(), (logits.argmax(1) == yv).float().mean().item()

    # -------------------------------------------------------------- evaluation
    @torch.no_grad()
    def evaluate(self, loader: BatchLoader, sample_cap: int = 0) -> WeightStats:
        """One pass over the validation half; mean weights over samples, patches and cells."""
        self.model.eval()
        space = self.model.space
        sums: dict[str, torch.Tensor] = {}
        pair_sums: dict[str, torch.Tensor] = {}
        kept: dict[str, list[np.ndarray]] = {}
        labels: list[np.ndarray] = []
        n_seen, loss_sum, correct = 0, 0.0, 0
        for x, y in loader.epoch(0):
            x, y = x.to(self.device), y.to(self.device)
            record: list[dict[str, Any]] = []
            with autocast(self.amp, self.device):
                logits = self.model(x, record)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").item()
            correct += int((logits.argmax(1) == y).sum())
            b = len(y)
            take = max(0, min(b, sample_cap - n_seen))
            for ct in space.cell_types:
                cells = [r for r in record if r["cell_type"] == ct]
                # (B, E, K, G, G), averaged over cells of this type
                w = torch.stack([torch.stack([e.float().expand(b, -1, -1, -1) for e in r["edges"]], 1)
                                 for r in cells]).mean(0)
                sums[ct] = sums.get(ct, 0) + w.sum(dim=(0, 3, 4))
                if take:
                    kept.setdefault(ct, []).append(w[:take].half().cpu().numpy())
                if cells[0]["pairs"]:
                    pw = torch.stack([torch.cat([p.float().expand(b, -1, -1, -1) for p in r["pairs"]], 1)
                                      for r in cells]).mean(0)  # B, P_total, G, G
                    pair_sums[ct] = pair_sums.get(ct, 0) + pw.sum(dim=(0, 2, 3)) / (pw.shape[2] * pw.shape[3])
                    if take:
                        kept.setdefault(ct + "_pairs", []).append(pw[:take].half().cpu().numpy())
            if take:
                labels.append(y[:take].cpu().numpy())
            n_seen += b
        grid = self.model.wcfg.patch_grid if self.model.wcfg.method == "midas" else 1
        abar = {ct: (s / (n_seen * grid * grid)).cpu().double().numpy() for ct, s in sums.items()}
        pair_bar: dict[str, list[np.ndarray]] = {}
        for ct, s in pair_sums.items():
            flat = (s / n_seen).cpu().double().numpy()
            sizes = [len(pair_index(len(space.incoming(n)))) for n in space.intermediate_nodes]
            pair_bar[ct] = np.split(flat, np.cumsum(sizes)[:-1])
        samples = {k: np.concatenate(v) for k, v in kept.items()}
        if labels:
            samples["labels"] = np.concatenate(labels)
        return WeightStats(loss_sum / n_seen, correct / n_seen, abar, pair_bar, samples)

    def final_architecture(self, stats: WeightStats, rule: str) -> Genotype:
        return decode(self.model.space, rule, stats.abar, stats.pair_bar)

    # -------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "w_opt": self.w_opt.state_dict(),
                "a_opt": self.a_opt.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])


# ---------------------------------------------------------------------- driver

def split_train_val(arrays: ImageArrays, portion: float) -> tuple[ImageArrays, ImageArrays]:
    n = len(arrays)
    cut = int(math.floor(n * portion))
    if cut < 1 or cut >= n:
        raise ValueError(f"train split of {n} images leaves an empty half at portion {portion}")
    return arrays.take(np.arange(cut)), arrays.take(np.arange(cut, n))


def weighting_config(cfg: dict[str, Any]) -> WeightingConfig:
    m = config_mod.method_settings(cfg)
    return WeightingConfig(method=m["method"], topology=m["topology"], patch_grid=m["patch_grid"],
                           attn_dim=cfg["midas"]["attn_dim"], temperature=cfg["midas"]["temperature"],
                           skip_none=cfg["supernet"]["skip_none"], impl=cfg["supernet"]["impl"],
                           channels_last=cfg["supernet"]["channels_last"])


def make_supernet(cfg: dict[str, Any], space: SearchSpace, num_classes: int, in_channels: int = 3) -> Supernet:
    sn = cfg["supernet"]
    return build_supernet(space, num_classes, weighting_config(cfg), sn["channels"], sn["layers"],
                          sn["cells_per_stage"], sn["stem_multiplier"], in_channels)


def genotype_json(genotype: Genotype) -> Any:
    return genotype.to_str() if isinstance(genotype, Nb201Arch) else genotype.to_dict()


def global_weights_json(space: SearchSpace, stats: WeightStats) -> dict[str, Any]:
    return {ct: {"ops": [list(o) for o in space.ops(ct)],
                 "weights": np.round(stats.abar[ct], 6).tolist(),
                 **({"pairs": [np.round(p, 6).tolist() for p in stats.pair_bar[ct]]} if ct in stats.pair_bar else {})}
            for ct in space.cell_types}


def weights_arrays(space: SearchSpace, stats: WeightStats, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {"labels": stats.samples["labels"].astype(np.int64),
                                     "edges": np.asarray(space.edges, dtype=np.int64)}
    for ct in space.cell_types:
        arrays[f"{ct}_weights"] = stats.samples[ct]
        arrays[f"{ct}_ops"] = np.asarray(space.ops(ct), dtype=str)
        arrays[f"{ct}_global"] = stats.abar[ct].astype(np.float32)
        if f"{ct}_pairs" in stats.samples:
            arrays[f"{ct}_pairs"] = stats.samples[f"{ct}_pairs"]
    if any(f"{ct}_pairs" in stats.samples for ct in space.cell_types):
        cols = [(node, space.incoming(node)[a], space.incoming(node)[b])
                for node in space.intermediate_nodes for a, b in pair_index(len(space.incoming(node)))]
        arrays["pair_columns"] = np.asarray(cols, dtype=np.int64)  # node, edge a, edge b
    for k, v in meta.items():
        arrays[k] = np.asarray(v)
    return arrays


def run_search(cfg: dict[str, Any], out: str | Path, fresh: bool = False) -> dict[str, Any]:
    """Run (or resume) one search and write its outputs to ``out``."""
    out = Path(out)
    device = configure(cfg)
    space = get_space(cfg["space"])
    s = cfg["search"]
    seed_everything(cfg["seed"])
    full = load_split(cfg, train=True)
    train_part, val_part = split_train_val(full, s["train_portion"])
    norm = Normalizer.fit(train_part.x)
    aug = cfg["data"]["augment"]
    train_loader = BatchLoader(train_part, s["batch_size"], norm, True, aug, seed=cfg["seed"], drop_last=False)
    val_loader = BatchLoader(val_part, s["batch_size"], norm, True, aug, seed=cfg["seed"] + 7919)
    eval_loader = BatchLoader(val_part, s["eval_batch_size"], norm, False)
    num_classes = int(max(full.y.max() + 1, len(full.class_names)))
    model = make_supernet(cfg, space, num_classes, full.x.shape[-1])
    searcher = BilevelSearcher(model, cfg, device)
    rule = default_rule(space, searcher.model.wcfg.topology)
    if s["memory_check"]:
        from midas.memory import check_search_memory

        check_search_memory(searcher, train_loader, device)

    ckpt_path = out / CHECKPOINT
    rows: list[dict[str, Any]] = []
    start, wall = 0, 0.0
    state = None if fresh else checkpoint.load_for_resume(ckpt_path, cfg, RESUME_FREE)
    if state is not None:
        searcher.load_state_dict(state["searcher"])
        rows, start, wall = state["rows"], state["epoch"], state["wall_time"]
        log.info("resuming %s from epoch %d of %d", out, start, s["epochs"])
    out.mkdir(parents=True, exist_ok=True)

    stats: WeightStats | None = None
    for epoch in range(start, s["epochs"]):
        t0 = time.perf_counter()
        seed_everything(epoch_seed(cfg["seed"], epoch))
        lr = searcher.w_opt.param_groups[0]["lr"]
        val_iter = itertools.chain.from_iterable(val_loader.epoch(epoch * 1000 + k) for k in itertools.count())
        agg = {"train_loss": 0.0, "train_acc": 0.0, "arch_loss": 0.0, "arch_acc": 0.0}
        steps = progress(enumerate(zip(train_loader.epoch(epoch), val_iter)), len(train_loader),
                         f"search {space.name}/{cfg['method']} epoch {epoch + 1}/{s['epochs']}", cfg["progress"])
        n = 0
        for step, (tb, vb) in steps:
            res = searcher.step(tb, vb, where=f"epoch {epoch + 1} step {step + 1}")
            for k in agg:
                agg[k] += res[k]
            n += 1
        searcher.scheduler.step()
        last = epoch == s["epochs"] - 1
        stats = searcher.evaluate(eval_loader, s["weights_sample_cap"] if last else 0)
        genotype = searcher.final_architecture(stats, rule)
        dt = time.perf_counter() - t0
        wall += dt
        row = {"epoch": epoch + 1, "lr": lr, **{k: v / max(n, 1) for k, v in agg.items()},
               "val_loss": stats.loss, "val_acc": stats.acc, "genotype": json.dumps(genotype_json(genotype)),
               "global_weights": json.dumps(global_weights_json(space, stats)),
               "epoch_time_s": round(dt, 3), "wall_time_s": round(wall, 3)}
        rows.append(row)
        log.info("epoch %d/%d train_acc %.4f val_acc %.4f genotype %s (%.1fs)", epoch + 1, s["epochs"],
                 row["train_acc"], row["val_acc"], genotype, dt)
        io.write_csv(out / "search_log.csv", rows)
        if not last:
            checkpoint.save(ckpt_path, {"epoch": epoch + 1, "rows": rows, "wall_time": wall,
                                        "searcher": searcher.state_dict(), "rng": checkpoint.rng_state(),
                                        "config": json.dumps(cfg)})
    if stats is None or not stats.samples:  # resumed after the last epoch's checkpoint: recompute
        stats = searcher.evaluate(eval_loader, s["weights_sample_cap"])
        io.write_csv(out / "search_log.csv", rows)  # a rerun may have had its outputs deleted
    genotype = searcher.final_architecture(stats, rule)
    meta = {"space": space.name, "method": cfg["method"], "seed": cfg["seed"], "dataset": cfg["dataset"],
            "patch_grid": searcher.model.wcfg.patch_grid, "topology": searcher.model.wcfg.topology}
    io.write_npz(out / "weights.npz", **weights_arrays(space, stats, meta))
    io.write_text(out / "config.yaml", config_mod.dump(cfg))
    record = {**meta, "genotype": genotype_json(genotype), "decoding": rule,
              "val_acc": stats.acc, "epochs": s["epochs"], "search_time_s": round(wall, 3),
              "global_weights": global_weights_json(space, stats)}
    io.write_json(out / "genotype.json", record)  # written last: its presence means "done"
    checkpoint.save(ckpt_path, {"epoch": s["epochs"], "rows": rows, "wall_time": wall,
                                "searcher": searcher.state_dict(), "rng": checkpoint.rng_state(),
                                "config": json.dumps(cfg)})
    return record
