#!/usr/bin/env python3
"""Precision alignment of hyperspeed against PyTorch (fp32, CPU).

Usage: test_torch_parity.py DUMP_PROGRAM

For each preset (gpt2-tiny, llama-tiny, llama-tiny-gqa: grouped-query
attention, and qwen2-tiny: grouped-query attention with a qkv bias) this
runs

    DUMP --model P --steps S --batch 4 --seq 32 --seed 1234 --lr 1e-3 --out DIR

which trains the preset with hyperspeed and writes into DIR:
  init.safetensors     every parameter by registry name (fp32), before training
  batches.safetensors  "tokens", "targets": int32 [steps, B, T]
  acts.safetensors     step-0 forward activations "embed", "h.{L}.out", "lnf",
                       "logits" [B, T, V]
  run.json             {"config": {...}, "optimizer": {"lr", "beta1", "beta2",
                       "eps", "weight_decay", "grad_clip"}, "decay": [names],
                       "losses": [per step, before its update],
                       "grad_norms": [per step, before clipping]}

and rebuilds the same model in PyTorch (hs_torch_ref) from init.safetensors:
  * every step-0 activation agrees: max|diff| <= 1e-5 * max(1, max|ref|);
  * S AdamW steps on the same batches (cross-entropy mean, global-norm
    clipping, decay only on the "decay" names, constant lr): every loss and
    every pre-clip gradient norm agrees within 1e-4 relative. S is 10, and
    3 for qwen2-tiny: its key bias has a gradient that is zero up to
    rounding in the slowly turning RoPE pairs (the softmax ignores a shift
    shared by all keys), which AdamW normalises into full-size updates of
    either sign, so any two implementations' trajectories part after a few
    steps (finite differences check that gradient in tests/unit/test_model.c).

Prints one line per compared quantity and a final "P passed, F failed"
(one per preset); exits non-zero on any failure. Exits 0 with "skipped:
torch missing" when torch cannot be imported.
"""

import json
import os
import subprocess
import sys
import tempfile

try:
    import torch
except ImportError:
    print("skipped: torch missing")
    sys.exit(0)

import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hs_torch_ref as ref  # noqa: E402

PRESETS = (("gpt2-tiny", 10), ("llama-tiny", 10), ("llama-tiny-gqa", 10), ("qwen2-tiny", 3))
BATCH, SEQ, SEED, LR = 4, 32, 1234, 1e-3
ACT_TOL = 1e-5   # absolute, scaled by max(1, max|ref|)
STEP_RTOL = 1e-4  # losses and gradient norms, relative
DUMP_TIMEOUT_S = 600


def run_dump(dump, preset, steps, out_dir):
    """Runs the C dump program; raises RuntimeError with its output on failure."""
    cmd = [dump, "--model", preset, "--steps", str(steps), "--batch", str(BATCH), "--seq", str(SEQ),
           "--seed", str(SEED), "--lr", str(LR), "--out", out_dir]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=DUMP_TIMEOUT_S)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}\n{r.stdout}{r.stderr}")


def rel_err(got, want):
    return abs(got - want) / max(abs(want), 1e-30)


def compare_activations(model, tokens, c_acts, n_layer):
    """Step-0 activations, worst |diff| per tensor. Returns failure messages."""
    failures = []
    ours = ref.activations(model, tokens)
    names = ["embed"] + [f"h.{i}.out" for i in range(n_layer)] + ["lnf", "logits"]
    for name in names:
        if name not in c_acts:
            failures.append(f"acts.safetensors lacks {name!r}")
            continue
        want = torch.from_numpy(c_acts[name]).float()
        got = ours[name]
        if tuple(want.shape) != tuple(got.shape):
            failures.append(f"{name}: C shape {list(want.shape)}, torch shape {list(got.shape)}")
            continue
        scale = max(1.0, want.abs().max().item())
        diff = (got - want).abs().max().item()
        ok = diff <= ACT_TOL * scale
        print(f"    act {name:<10} max|diff| {diff:.3e}  (tol {ACT_TOL * scale:.3e})  {'ok' if ok else 'FAIL'}")
        if not ok:
            failures.append(f"activation {name}: max|diff| {diff:.3e} > {ACT_TOL * scale:.3e}")
    return failures


def compare_training(model, run, tokens, targets):
    """Ten AdamW steps against the C run's losses and grad norms. Returns
    failure messages."""
    failures = []
    opt_cfg = run["optimizer"]
    params = ref.param_map(model)
    decay = set(run["decay"])
    unknown = sorted(decay - set(params))
    if unknown:
        return [f"run.json decay list names unknown parameters {unknown}"]
    groups = [
        {"params": [p for n, p in params.items() if n in decay], "weight_decay": opt_cfg["weight_decay"]},
        {"params": [p for n, p in params.items() if n not in decay], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=opt_cfg["lr"], betas=(opt_cfg["beta1"], opt_cfg["beta2"]),
                            eps=opt_cfg["eps"])
    # Clipping off (grad_clip <= 0) still reports the norm: an infinite
    # threshold gives a clip coefficient of 1.
    max_norm = opt_cfg["grad_clip"] if opt_cfg["grad_clip"] > 0 else float("inf")
    V = run["config"]["vocab_size"]
    plist = list(params.values())
    for s in range(len(run["losses"])):
        opt.zero_grad(set_to_none=True)
        logits = model(tokens[s])
        loss = F.cross_entropy(logits.view(-1, V), targets[s].reshape(-1).long(), ignore_index=-1)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(plist, max_norm).item()
        opt.step()
        lc, nc = run["losses"][s], run["grad_norms"][s]
        le, ne = rel_err(loss.item(), lc), rel_err(norm, nc)
        ok = le <= STEP_RTOL and ne <= STEP_RTOL
        print(f"    step {s}: loss torch {loss.item():.7f} C {lc:.7f} rel {le:.2e} | "
              f"grad norm torch {norm:.6f} C {nc:.6f} rel {ne:.2e}  {'ok' if ok else 'FAIL'}")
        if le > STEP_RTOL:
            failures.append(f"step {s} loss: torch {loss.item():.7g} vs C {lc:.7g} (rel {le:.2e})")
        if ne > STEP_RTOL:
            failures.append(f"step {s} grad norm: torch {norm:.7g} vs C {nc:.7g} (rel {ne:.2e})")
    return failures


def check_preset(dump, preset, steps):
    """Runs one preset for `steps` steps end to end. Returns failure messages (empty: pass)."""
    with tempfile.TemporaryDirectory(prefix=f"hs-parity-{preset}-") as tmp:
        run_dump(dump, preset, steps, tmp)
        with open(os.path.join(tmp, "run.json")) as f:
            run = json.load(f)
        init = ref.load_safetensors(os.path.join(tmp, "init.safetensors"))
        batches = ref.load_safetensors(os.path.join(tmp, "batches.safetensors"))
        c_acts = ref.load_safetensors(os.path.join(tmp, "acts.safetensors"))

    tokens = torch.from_numpy(batches["tokens"])
    targets = torch.from_numpy(batches["targets"])
    shape = (steps, BATCH, SEQ)
    if tuple(tokens.shape) != shape or tuple(targets.shape) != shape:
        return [f"batches: tokens {list(tokens.shape)}, targets {list(targets.shape)}, expected {list(shape)}"]
    if len(run["losses"]) != steps or len(run["grad_norms"]) != steps:
        return [f"run.json: {len(run['losses'])} losses, {len(run['grad_norms'])} grad norms, expected {steps}"]

    model = ref.HsModel(run["config"])
    ref.load_weights(model, init)
    print(f"  {preset}: {sum(p.numel() for p in model.parameters())} parameters, config {run['config']}")
    failures = compare_activations(model, tokens[0], c_acts, run["config"]["n_layer"])
    return failures + compare_training(model, run, tokens, targets)


def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} DUMP_PROGRAM", file=sys.stderr)
        return 2
    torch.set_num_threads(2)
    passed = failed = 0
    for preset, steps in PRESETS:
        print(f"[{preset}]")
        try:
            failures = check_preset(argv[1], preset, steps)
        except (OSError, RuntimeError, ValueError, KeyError, subprocess.TimeoutExpired) as e:
            failures = [f"{type(e).__name__}: {e}"]
        for msg in failures:
            print(f"  FAIL {preset}: {msg}")
        if failures:
            failed += 1
        else:
            passed += 1
            print(f"  PASS {preset}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
