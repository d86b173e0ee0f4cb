#!/usr/bin/env python3
"""PyTorch peer of bench/train_step: one fp32 GPT-2 124M training step on CPU.

The model is tests/python/hs_torch_ref.py's GPT-2 (V 50257, maxT 1024,
12 layers, 12 heads, C 768, F 3072, GELU tanh, tied head), the same
architecture and parameter set hyperspeed's gpt2-124m preset trains. A step
is what a PyTorch user writes: forward, cross-entropy, backward,
clip_grad_norm_(1.0), AdamW step (betas 0.9/0.95, weight decay 0.1 on
matrices and embeddings), zero_grad(set_to_none=True).

Threads: torch.set_num_threads(N) drives torch's OpenMP kernels, but it does
not reach Debian's pthread OpenBLAS that torch's fp32 matmuls call, so the
same N is also given to OpenBLAS (openblas_set_num_threads through ctypes),
as OMP_NUM_THREADS would for a user.

AdamW: torch 1.13 takes foreach=True (multi-tensor) or False (per-tensor
loop); --foreach picks one. The default is the loop: on this project's CPU
machine (2 cores, AMD EPYC) one AdamW step over the 124M parameters took
about 205-237 ms with the loop against 249-275 ms with foreach (interleaved
trials), so the loop is the fair choice. The JSON's "torch_adamw_foreach"
says which ran.

OpenBLAS core: --blas-core NAME (bench_train_step passes the core its own
process runs) sets OPENBLAS_CORETYPE=NAME before torch is imported, since
OpenBLAS reads the variable only when it is loaded; both sides then run the
same sgemm kernels. Without it the environment decides, as for any program.

Prints one JSON line:
  {"torch_tok_s", "torch_ms_median", "torch_ms": [per measured step],
   "torch_threads", "torch_adamw_foreach", "batch", "seq",
   "cpu", "isa", "isa_native", "blas_core", "blas_core_requested",
   "openblas_coretype_env", "openblas_coretype_set_by"}
where the median is over the --steps measured steps after --warmup steps,
and the machine fields are those of bench/report.h: cpu (the brand string),
isa (torch's ATen CPU capability, lowercased: "avx2", "avx512", "default"),
isa_native (the CPU's level in hyperspeed's names, from its flags),
blas_core (the core OpenBLAS runs), blas_core_requested (--blas-core or
null), openblas_coretype_env (the value OpenBLAS was loaded with, or null)
and openblas_coretype_set_by ("user", "hyperspeed" for the restart of
bench_train_step, "bench_train_step" for --blas-core, or null).
"""

import argparse
import ctypes
import json
import os
import statistics
import sys
import time

torch = F = ref = None  # imported by load_torch(), after OPENBLAS_CORETYPE is settled

GPT2_124M = {"arch": "gpt2", "vocab_size": 50257, "max_seq": 1024, "n_layer": 12, "n_head": 12,
             "d_model": 768, "d_ff": 3072, "norm_eps": 1e-5, "rope_theta": 10000.0}


def loaded_openblas():
    """ctypes handle of the OpenBLAS this process has loaded (through torch's
    libblas), or None when none is mapped."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if "libopenblas" in os.path.basename(path):
                return ctypes.CDLL(path)
    return None


def cpu_facts():
    """(brand string, level in hyperspeed's names) from /proc/cpuinfo."""
    name, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and name == "unknown":
                    name = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    if {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= flags:
        level = "avx512"
    elif {"avx2", "fma", "f16c", "bmi2"} <= flags:
        level = "avx2"
    else:
        level = "baseline"
    return name, level


def torch_isa(torch):
    """torch's ATen CPU capability ("avx2", "avx512", "default")."""
    cfg = torch.__config__.show()
    key = "CPU capability usage:"
    return cfg.split(key, 1)[1].split()[0].lower() if key in cfg else "unknown"


def blas_core(openblas):
    """OpenBLAS's kernel core name ("SkylakeX", "Haswell", ...), or torch's
    BLAS_INFO build setting when no OpenBLAS is loaded."""
    if openblas is not None:
        openblas.openblas_get_corename.restype = ctypes.c_char_p
        return openblas.openblas_get_corename().decode()
    cfg = torch.__config__.show()
    info = cfg.split("BLAS_INFO=", 1)[1].split(",", 1)[0] if "BLAS_INFO=" in cfg else "unknown"
    return f"blas:{info}"


def load_torch():
    """Imports torch (which loads OpenBLAS: OPENBLAS_CORETYPE must be final
    by now) and the reference model, as module globals."""
    global torch, F, ref
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "python"))
    import hs_torch_ref as ref


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5, help="measured steps")
    ap.add_argument("--warmup", type=int, default=2, help="unmeasured steps before them")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--foreach", type=int, choices=(0, 1), default=0,
                    help="AdamW multi-tensor path (1) or per-tensor loop (0, faster here)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--blas-core", default=None,
                    help="OpenBLAS core to run (OPENBLAS_CORETYPE, set before torch loads OpenBLAS)")
    args = ap.parse_args()
    if min(args.batch, args.seq, args.steps, args.threads) < 1 or args.warmup < 0 or args.seq > GPT2_124M["max_seq"]:
        ap.error("batch, seq (<= 1024), steps and threads must be >= 1, warmup >= 0")

    env, marker = os.environ.get("OPENBLAS_CORETYPE"), os.environ.get("HS_BLAS_CORE_REEXEC")
    set_by = None if env is None else "hyperspeed" if env == marker else "user"
    if args.blas_core and env != args.blas_core:
        os.environ["OPENBLAS_CORETYPE"] = env = args.blas_core
        set_by = "bench_train_step"
    load_torch()

    torch.set_num_threads(args.threads)
    openblas = loaded_openblas()
    if openblas is not None:
        openblas.openblas_set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    model = ref.HsModel(GPT2_124M)
    params = ref.param_map(model)
    with torch.no_grad():
        for p in params.values():
            if p.dim() == 2:
                p.normal_(0.0, 0.02)
    groups = [
        {"params": [p for p in params.values() if p.dim() == 2], "weight_decay": 0.1},
        {"params": [p for p in params.values() if p.dim() != 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=3e-4, betas=(0.9, 0.95), eps=1e-8, foreach=bool(args.foreach))
    plist = list(params.values())
    V = GPT2_124M["vocab_size"]
    tokens = torch.randint(0, V, (args.batch, args.seq))
    targets = torch.randint(0, V, (args.batch, args.seq))

    def step():
        logits = model(tokens)
        loss = F.cross_entropy(logits.view(-1, V), targets.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(plist, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    ms = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        ms.append(1e3 * (time.perf_counter() - t0))
    med = statistics.median(ms)
    core = blas_core(openblas)
    if args.blas_core and core.lower() != args.blas_core.lower():
        print(f"train_step_torch: asked for OpenBLAS core {args.blas_core}, running {core}", file=sys.stderr)
    cpu, isa_native = cpu_facts()
    print(json.dumps({
        "torch_tok_s": round(args.batch * args.seq / (med / 1e3), 1),
        "torch_ms_median": round(med, 2),
        "torch_ms": [round(x, 2) for x in ms],
        "torch_threads": args.threads,
        "torch_adamw_foreach": bool(args.foreach),
        "batch": args.batch,
        "seq": args.seq,
        "cpu": cpu,
        "isa": torch_isa(torch),
        "isa_native": isa_native,
        "blas_core": core,
        "blas_core_requested": args.blas_core,
        "openblas_coretype_env": env,
        "openblas_coretype_set_by": set_by,
    }))


if __name__ == "__main__":
    main()
