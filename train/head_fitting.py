"""Fitting a head on cached features (fast mode).

Classification: AdamW on cross-entropy, early stopping on validation accuracy. Keypoints:
closed-form ridge regression. Adam struggles there: with thousands of inputs its
per-weight steps move the output by more than the whole 0..1 coordinate range, while ridge
solves the regression exactly, with the strength picked on the validation set.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Dict, List, Tuple

import numpy as np
import torch

from edge_app.tasks.spec import TaskSpec
from edge_app.tasks.train_config import TrainConfig
from edge_app.train import progress

History = Tuple[List[Dict[str, Any]], Dict[str, Any], int]


def fit_head_sgd(kind: Any, head: torch.nn.Module, x_tr: np.ndarray, y_tr: np.ndarray,
                 x_val: np.ndarray, y_val: np.ndarray, val_sizes: np.ndarray, cfg: TrainConfig,
                 task: TaskSpec, device: Any) -> History:
    """Mini-batch AdamW with a cosine schedule; keeps the best epoch on validation."""
    loss_fn = kind.loss_fn(y_tr, len(task.labels), cfg.label_smoothing, cfg.balance)
    head.to(device)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr or 3e-3, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs or 1)
    xt, yt = torch.from_numpy(x_tr).to(device), kind.batch_target(list(y_tr)).to(device)
    xv = torch.from_numpy(x_val).to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    history: List[Dict[str, Any]] = []
    best_state, best_score, best, best_epoch, stale = None, -math.inf, {}, 0, 0
    for epoch in range(1, (cfg.epochs or 1) + 1):
        head.train()
        total = 0.0
        for idx in torch.randperm(len(xt), generator=gen).split(cfg.batch_size):
            loss = loss_fn(head(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        head.eval()
        metrics: Dict[str, Any] = {}
        if len(xv):
            with torch.no_grad():
                metrics = kind.metrics(head(xv).float().cpu().numpy(), y_val, task, val_sizes)
        history.append({"epoch": epoch, "loss": total / len(xt), "val": metrics})
        progress.epoch(history[-1])
        score = kind.score(metrics) if metrics else -total
        if score > best_score + 1e-6:
            best_state, best_score, best, best_epoch, stale = (
                copy.deepcopy(head.state_dict()), score, metrics, epoch, 0)
        else:
            stale += 1
            if stale >= cfg.patience * 3:   # head epochs are cheap: be patient
                break
    if best_state is not None:
        head.load_state_dict(best_state)
    return history, best, best_epoch


def _linear(head: torch.nn.Module) -> torch.nn.Linear:
    layers = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
    if len(layers) != 1:
        raise ValueError("ridge needs a head with exactly one linear layer")
    return layers[0]


def ridge_solve(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """Weights (D+1, K) of ridge regression with a bias; rows of ``y`` with NaN are left out
    per column (missing points). The bias is not penalised (the data are centred first), so
    centred features fit as well as raw ones. Uses the N x N (dual) or D x D form, whichever
    is smaller."""
    x = x.astype(np.float64)
    w = np.zeros((x.shape[1] + 1, y.shape[1]))
    for cols in _column_groups(y):
        rows = ~np.isnan(y[:, cols[0]])
        a, t = x[rows], y[rows][:, cols]
        a_mean, t_mean = a.mean(axis=0), t.mean(axis=0)
        a, t = a - a_mean, t - t_mean
        n, d = a.shape
        if n <= d:
            k = a @ a.T
            k[np.diag_indices(n)] += lam
            coef = a.T @ np.linalg.solve(k, t)
        else:
            k = a.T @ a
            k[np.diag_indices(d)] += lam
            coef = np.linalg.solve(k, a.T @ t)
        w[:-1, cols] = coef
        w[-1, cols] = t_mean - a_mean @ coef
    return w


def _column_groups(y: np.ndarray) -> List[List[int]]:
    """Columns sharing the same missing rows are solved together."""
    groups: Dict[bytes, List[int]] = {}
    for c in range(y.shape[1]):
        groups.setdefault(np.isnan(y[:, c]).tobytes(), []).append(c)
    return list(groups.values())


def fit_head_ridge(kind: Any, head: torch.nn.Module, x_tr: np.ndarray, y_tr: np.ndarray,
                   x_val: np.ndarray, y_val: np.ndarray, val_sizes: np.ndarray,
                   cfg: TrainConfig, task: TaskSpec, device: Any) -> History:
    """Closed-form ridge, the strength chosen on validation; written into the head's Linear."""
    y = y_tr.reshape(len(y_tr), -1).astype(np.float64)
    scale = float(np.mean(np.sum(x_tr.astype(np.float64) ** 2, axis=1))) or 1.0
    history: List[Dict[str, Any]] = []
    best_w, best_score, best, best_step = None, -math.inf, {}, 0
    for step, factor in enumerate((1e-3, 1e-2, 1e-1, 1.0), start=1):
        w = ridge_solve(x_tr, y, factor * scale)
        train_err = float(np.sqrt(np.nanmean((np.hstack([x_tr, np.ones((len(x_tr), 1))]) @ w - y) ** 2)))
        metrics: Dict[str, Any] = {}
        if len(x_val):
            pred = np.hstack([x_val, np.ones((len(x_val), 1))]) @ w
            metrics = kind.metrics(pred, y_val, task, val_sizes)
        history.append({"epoch": step, "loss": train_err, "val": metrics, "ridge_lambda": factor * scale})
        progress.epoch(history[-1])
        score = kind.score(metrics) if metrics else -factor   # no validation: mild default
        if best_w is None or score > best_score:
            best_w, best_score, best, best_step = w, score, metrics, step
    linear = _linear(head)
    assert best_w is not None   # the loop runs at least once
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(best_w[:-1].T).float())
        linear.bias.copy_(torch.from_numpy(best_w[-1]).float())
    return history, best, best_step
