"""PyTorch reference of hyperspeed's two decoder-only architectures.

The modules mirror include/hyperspeed/model.h exactly: every parameter is
registered under the name hyperspeed's registry gives it ("wte",
"h.0.attn.qkv.w", "lm_head.w", ...), so `param_map(model)` is the mapping
from our names to torch tensors, and a weight file written by the C side
loads with `load_weights(model, arrays)` without any renaming. The math
follows include/hyperspeed/kernels.h op by op, in fp32:

  GPT-2 style: x = wte[tok] + wpe[t]; per block
      x += proj(attn(LayerNorm1(x))); x += mlp(LayerNorm2(x)),
      mlp(u) = proj(gelu_tanh(fc(u))); logits = LayerNorm_f(x) @ wte^T (tied).
  LLaMA style: x = wte[tok]; RMSNorm instead of LayerNorm, no biases (but
      the qkv bias when "qkv_bias" is 1, as Qwen2), RoPE ("rotate_half"
      pairing (i, i + HD/2), angle t * theta^(-2i/HD)) on q and k, SwiGLU MLP
      with fc rows [gate (F) ; up (F)], untied lm_head.w. Grouped-query
      attention: qkv rows are [q (NH heads) ; k (NKV heads) ; v (NKV heads)]
      and query head h reads key/value head h // (NH // NKV).

Attention is written out (q k^T / sqrt(HD), causal mask, softmax, @ v)
rather than calling F.scaled_dot_product_attention, which torch 1.13 lacks
(nor has it grouped-query attention: the key/value heads are repeated to
the query heads, repeat_interleave, before the product).

load_safetensors() is a dependency-free numpy reader of the safetensors
format (the file format hyperspeed's dumps and checkpoints use).
"""

import json
import math
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# safetensors dtype tag -> numpy dtype of the stored bytes. BF16 has no numpy
# dtype: it is read as uint16 and widened to float32 by load_safetensors.
_ST_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "BF16": np.uint16,
    "I64": np.int64,
    "I32": np.int32,
    "I8": np.int8,
    "U8": np.uint8,
}

CONFIG_KEYS = ("arch", "vocab_size", "max_seq", "n_layer", "n_head", "d_model", "d_ff", "norm_eps", "rope_theta")
# Keys a config may leave out (older dumps): their values then.
CONFIG_OPTIONAL = {"n_kv_head": None, "qkv_bias": 0}


def load_safetensors(path):
    """Reads a safetensors file into {name: numpy array} (little-endian).

    Layout: an 8-byte little-endian header length n, n bytes of JSON mapping
    each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
    (offsets relative to the end of the header), an optional "__metadata__"
    entry (skipped), then the data. BF16 tensors come back as float32 (exact
    widening); every other dtype keeps its own numpy dtype. Raises
    ValueError on a malformed or truncated file.
    """
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: {len(blob)} bytes, too short for a safetensors header")
    (hlen,) = struct.unpack("<Q", blob[:8])
    if 8 + hlen > len(blob):
        raise ValueError(f"{path}: header length {hlen} runs past the end of the file ({len(blob)} bytes)")
    header = json.loads(blob[8 : 8 + hlen].decode("utf-8"))
    data = memoryview(blob)[8 + hlen :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        tag = info["dtype"]
        if tag not in _ST_DTYPES:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {tag}")
        dt = np.dtype(_ST_DTYPES[tag]).newbyteorder("<")
        shape = tuple(int(s) for s in info["shape"])
        begin, end = (int(o) for o in info["data_offsets"])
        want = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        if not (0 <= begin <= end <= len(data)) or end - begin != want:
            raise ValueError(
                f"{path}: tensor {name!r} {tag}{list(shape)} needs {want} bytes, "
                f"data_offsets [{begin}, {end}) in a {len(data)}-byte data section"
            )
        arr = np.frombuffer(data[begin:end], dtype=dt).reshape(shape)
        if tag == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.astype(arr.dtype.newbyteorder("="), copy=True)
    return out


# --------------------------------------------------------------- layers


class _Norm(nn.Module):
    """LayerNorm (weight w, bias b; biased variance) or RMSNorm (weight w)."""

    def __init__(self, dim, eps, rms):
        super().__init__()
        self.eps = eps
        self.rms = rms
        self.w = nn.Parameter(torch.ones(dim))
        if not rms:
            self.b = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        if self.rms:
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.w
        return F.layer_norm(x, (x.shape[-1],), self.w, self.b, self.eps)


class _Linear(nn.Module):
    """y = x @ w^T (+ b), w of shape [out, in] as in hyperspeed's registry."""

    def __init__(self, n_in, n_out, bias):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(n_out, n_in))
        self.b = nn.Parameter(torch.zeros(n_out)) if bias else None

    def forward(self, x):
        return F.linear(x, self.w, self.b)


def rope_tables(T, head_dim, theta):
    """cos, sin [T, HD/2] for angle t * theta^(-2i/HD), computed in float64
    and rounded once to float32."""
    i = torch.arange(head_dim // 2, dtype=torch.float64)
    inv_freq = theta ** (-2.0 * i / head_dim)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, cos, sin):
    """Rotates x [B, NH, T, HD] pairwise over (i, i + HD/2) ("rotate_half")."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


class _Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg["d_model"]
        bias = cfg["arch"] == "gpt2"
        self.n_head = cfg["n_head"]
        self.n_kv_head = cfg.get("n_kv_head") or cfg["n_head"]
        self.rope_theta = cfg["rope_theta"] if cfg["arch"] == "llama" else None
        KV = self.n_kv_head * (C // self.n_head)
        self.qkv = _Linear(C, C + 2 * KV, bias or bool(cfg.get("qkv_bias", 0)))
        self.proj = _Linear(C, C, bias)

    def forward(self, x):
        B, T, C = x.shape
        NH, NKV = self.n_head, self.n_kv_head
        HD = C // NH
        # qkv per token is [q | k | v]: NH query heads, then NKV key and NKV value heads.
        q, k, v = self.qkv(x).split([C, NKV * HD, NKV * HD], dim=-1)
        q = q.view(B, T, NH, HD).transpose(1, 2)
        k = k.view(B, T, NKV, HD).transpose(1, 2)
        v = v.view(B, T, NKV, HD).transpose(1, 2)
        if self.rope_theta is not None:
            cos, sin = rope_tables(T, HD, self.rope_theta)
            q = apply_rope(q, cos, sin)
            k = apply_rope(k, cos, sin)
        if NKV != NH:  # each key/value head serves NH // NKV consecutive query heads
            k = k.repeat_interleave(NH // NKV, dim=1)
            v = v.repeat_interleave(NH // NKV, dim=1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(HD))
        future = torch.ones(T, T, dtype=torch.bool).triu(1)
        att = att.masked_fill(future, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.proj(y)


class _MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, Fd = cfg["d_model"], cfg["d_ff"]
        self.swiglu = cfg["arch"] == "llama"
        if self.swiglu:
            self.fc = _Linear(C, 2 * Fd, False)  # rows [gate ; up]
            self.proj = _Linear(Fd, C, False)
        else:
            self.fc = _Linear(C, Fd, True)
            self.proj = _Linear(Fd, C, True)

    def forward(self, x):
        h = self.fc(x)
        if self.swiglu:
            gate, up = h.chunk(2, dim=-1)
            h = F.silu(gate) * up
        else:
            h = F.gelu(h, approximate="tanh")
        return self.proj(h)


class _Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        rms = cfg["arch"] == "llama"
        self.ln1 = _Norm(cfg["d_model"], cfg["norm_eps"], rms)
        self.attn = _Attention(cfg)
        self.ln2 = _Norm(cfg["d_model"], cfg["norm_eps"], rms)
        self.mlp = _MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class HsModel(nn.Module):
    """A hyperspeed model (GPT-2 or LLaMA style) from a config dict with the
    keys of CONFIG_KEYS. Parameters start at zero / norm weights one; load
    real values with load_weights."""

    def __init__(self, cfg):
        super().__init__()
        missing = [k for k in CONFIG_KEYS if k not in cfg]
        if missing:
            raise ValueError(f"model config lacks {missing}")
        if cfg["arch"] not in ("gpt2", "llama"):
            raise ValueError(f"unknown arch {cfg['arch']!r}: expected 'gpt2' or 'llama'")
        if cfg["d_model"] % cfg["n_head"] != 0:
            raise ValueError(f"n_head={cfg['n_head']} does not divide d_model={cfg['d_model']}")
        cfg = {**CONFIG_OPTIONAL, **cfg}
        if cfg["n_kv_head"] and cfg["n_head"] % cfg["n_kv_head"] != 0:
            raise ValueError(f"n_kv_head={cfg['n_kv_head']} does not divide n_head={cfg['n_head']}")
        self.cfg = dict(cfg)
        V, C = cfg["vocab_size"], cfg["d_model"]
        self.gpt2 = cfg["arch"] == "gpt2"
        self.wte = nn.Parameter(torch.zeros(V, C))
        if self.gpt2:
            self.wpe = nn.Parameter(torch.zeros(cfg["max_seq"], C))
        self.h = nn.ModuleList(_Block(cfg) for _ in range(cfg["n_layer"]))
        self.lnf = _Norm(C, cfg["norm_eps"], not self.gpt2)
        if not self.gpt2:
            self.lm_head = nn.Module()
            self.lm_head.w = nn.Parameter(torch.zeros(V, C))

    def forward(self, tokens, acts=None):
        """Logits [B, T, V] for int tokens [B, T]. When `acts` is a dict it
        receives "embed", "h.{L}.out", "lnf" and "logits" (detached)."""
        T = tokens.shape[1]
        x = F.embedding(tokens.long(), self.wte)
        if self.gpt2:
            x = x + self.wpe[:T]
        if acts is not None:
            acts["embed"] = x.detach()
        for i, block in enumerate(self.h):
            x = block(x)
            if acts is not None:
                acts[f"h.{i}.out"] = x.detach()
        x = self.lnf(x)
        logits = F.linear(x, self.wte if self.gpt2 else self.lm_head.w)
        if acts is not None:
            acts["lnf"] = x.detach()
            acts["logits"] = logits.detach()
        return logits


def param_map(model):
    """{hyperspeed registry name: torch Parameter}, e.g. "h.0.mlp.fc.w"."""
    return dict(model.named_parameters())


def load_weights(model, arrays):
    """Copies {name: array} (every parameter by registry name, nothing else)
    into the model as float32. Raises ValueError naming missing, unexpected
    or mis-shaped tensors."""
    params = param_map(model)
    missing = sorted(set(params) - set(arrays))
    extra = sorted(set(arrays) - set(params))
    if missing or extra:
        raise ValueError(f"weights do not match the model: missing {missing}, unexpected {extra}")
    with torch.no_grad():
        for name, p in params.items():
            a = arrays[name]
            if tuple(a.shape) != tuple(p.shape):
                raise ValueError(f"{name}: file shape {list(a.shape)}, model shape {list(p.shape)}")
            p.copy_(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)))


def activations(model, tokens):
    """Step-0 style forward without gradients: {"embed", "h.L.out", "lnf",
    "logits"} as float32 tensors."""
    acts = {}
    with torch.no_grad():
        model(tokens, acts)
    return acts
