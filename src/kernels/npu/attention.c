/* NPU flash attention (causal), forward and FlashAttention-2 backward, the
 * way Ascend's FlashAttentionScore kernels split the work: matrix products
 * on the cube core (AIC), the softmax on its two vector cores (AIV), and
 * every cube <-> vector hand-over through a per-block GM workspace with
 * cross-core flags.
 *
 * Math (per batch b and query head h, whose K and V are those of key/value
 * head h / (NH/NKV): grouped-query attention, or multi-head when NKV = NH;
 * S = Q K^T, scale = 1/sqrt(HD), causal: key > query is -inf; a key block
 * wholly before the queries (context parallelism's chunks) sees every key
 * and masks nothing; queries come from qkv, keys and values from the
 * call's kv). Forward, for
 * each query tile and key tile j up to the last visible one, with m, l, O running
 * per query:
 *     m' = max(m, scale rowmax S_j);  P = exp(scale S_j - m')
 *     alpha = exp(m - m');  l = l alpha + rowsum P;  O = O alpha + P V_j
 * then out = O / l and lse = m + ln l. Backward, with D = rowsum(dO * O):
 *     P = exp(scale S - lse);  dV += P^T dO;  dP = dO V^T
 *     dS = scale P * (dP - D);  dQ += dS K;  dK += dS^T Q
 *
 * Cast path. The cube multiplies fp16/bf16 only and MTE2 cannot convert,
 * so VECTOR launches first round the fp32 operands to bf16 copies in GM
 * (copy_in, vcast, copy_out): hs_npu_cast copies qkv as it is for the
 * forward; "attention_bwd_stage" writes head-major pair arrays
 * [B, NH, T, 2 HDp] of (q | dO) and [B, NKV, T, 2 HDp] of (k | v) rows for
 * the backward (HDp = ceil16(HD), the second half 16-aligned for load2d), so one nd2nz brings
 * a tile's two operands to L1. P and dS reach the cube as bf16 too; S, dP,
 * O, dQ, dK, dV accumulate in fp32 (L0C), and the softmax runs in fp32 on
 * the vector unit. Against the fp32 CPU kernel, with u = 2^-8 (bf16 unit
 * roundoff) and eps_r = 2.01 u scale max_c sum_d |q_rd k_cd| (how far
 * rounding q and k moves query r's scaled scores):
 *     |out - out_cpu| <= max|v| (2u + exp(2 eps_r) - 1),   |lse - lse_cpu| <= eps_r
 * and each gradient is within ((e^eps - 1) + 4.1u)(1 + e^eps - 1) of the
 * same sum taken over absolute values (tests/unit/test_npu_attention.c
 * derives and checks these bounds).
 *
 * Layout. Scores are made transposed, S^T = K Q^T [keys x queries], so the
 * statistics of a query are columns and every softmax step is an
 * elementwise vector op over whole rows of keys: row max and row sum are
 * halving trees, and a per-query value is broadcast down the rows by
 * doubling copies. O is accumulated transposed as well (O^T = V^T P^T,
 * [HD x queries]); out rows are written with one strided MTE3 copy per
 * query, spread over the next item's tiles. Each AIV owns QH of a tile's
 * queries (half on 910B-class chips; all 64 of a tile on a unified core).
 *
 * Forward tiling: BM = 128 queries x BN_F = 128 keys. Per key tile the AIC
 * loads K_j and V_j (nd2nz into L1 slots), computes S^T into L0C and
 * fixpipes it (fp32) to the workspace; the AIVs take their columns, mask
 * the diagonal tile, update m and l, write P^T as bf16; the AIC loads P^T,
 * computes O^T_j = V_j^T P^T and fixpipes it; the AIVs add it to their
 * O^T scaled by alpha (one vmla). The AIC runs S three tiles ahead of P V
 * and the AIVs run the softmax two tiles ahead of the O update, so the
 * P -> cube -> O round trip of a tile hides behind other tiles' work and
 * cube, fixpipe and vector overlap (GM slots, L1 tiles and the L0A/L0B
 * operand ring are multi-buffered and handed over by flags).
 * Backward tiling: BM = 128 queries x BN_B = 64 keys (so S^T, dP^T and two
 * accumulators fit the 128 KiB L0C) in two launches that recompute P and
 * dS per (query tile, key tile) pair: "attention_bwd_dkv" owns a key tile
 * of a key/value head and walks the query tiles of each query head of its
 * group in turn, accumulating dK and dV in L0C;
 * "attention_bwd_dq" owns a query tile and walks the key tiles,
 * accumulating dQ. Scores run four pairs ahead of the products, the AIVs
 * two. An "attention_bwd_stats" VECTOR launch first computes D and writes
 * (-lse, -scale D) per query, the rows the AIVs broadcast.
 *
 * Work items are (batch, head, owned tile), sorted costliest first and
 * dealt to the cube cores in a snake (forward and backward in alternate
 * rounds) so the causal triangle's long and short rows balance out.
 * Causal: key tiles entirely after a query tile are never visited.
 *
 * Determinism. Every output tile has one owner: out, lse and the dQ, dK,
 * dV tiles are written by exactly one block, in a fixed order. dqkv += is
 * the fixpipe's atomic-add mode, which here adds one value per element
 * (the tile's only contribution), so the result is the CPU's
 * dqkv + grad, independent of timing and of the number of cores.
 *
 * Workspace. One hs_npu_malloc per call (bf16 copies, per-block slots),
 * released when the call returns: the device API has no per-device state a
 * kernel could cache it in and be told when the device goes away (a cache
 * keyed by the hs_npu pointer could outlive hs_npu_free and hand a later
 * device's memory back), and like an aclnn workspace an allocation costs
 * no simulated time.
 */
#include "core/try.h"
#include "kernels/npu/npu_kernels.h"
#include "npu_sim/isa.h"

#include <math.h>

#define QH 64     /* queries per AIV; a tile has QH * (AIVs per AIC) */
#define BN_F 128  /* keys per forward tile */
#define BN_B 64   /* keys per backward tile */
#define HD_MAX 128
#define WS_ALIGN 512

/* AIC flag ids, FIXPIPE <-> CUBE (L0C accumulators). */
enum { EV_LS = 0, EV_LO = 1, EV_LDP = 1, EV_ACC = 2 };
/* Cross-core ids: on the AIC (+ AIV index) and on each AIV. Odd and even
 * never meet, so a unified core (AIC == AIV) can hold both. */
enum { XC_S_FREE = 0, XC_P_READY = 2, XC_O_FREE = 4 };
enum { XV_S_READY = 1, XV_P_FREE = 3, XV_O_READY = 5 };

#define P_MTE2 HS_PIPE_MTE2
#define P_MTE1 HS_PIPE_MTE1
#define P_CUBE HS_PIPE_CUBE
#define P_FIX HS_PIPE_FIXPIPE
#define P_VEC HS_PIPE_VECTOR
#define P_MTE3 HS_PIPE_MTE3

/* ------------------------------------------------------------------ shape */

typedef struct att_dims {
    int64_t B, T, NH, HD, C;
    int64_t NKV, KV, LD, rep; /* key/value heads, their columns NKV*HD, qkv's row C + 2KV, NH / NKV */
    int naiv;       /* AIVs per AIC: 2 on 910B-class chips, 1 on a unified core */
    int bm;         /* queries per tile: QH * naiv */
    int64_t qtiles; /* ceil(T / bm) */
    float scale;
    int causal;     /* 1: key > query masked; 0: every key visible */
} att_dims;

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int up16(int64_t v)
{
    return (int)((v + 15) / 16 * 16);
}

static int64_t ws_round(int64_t bytes)
{
    return (bytes + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN;
}

/* ------------------------------------------------------- items and steps */

/* What a launch's work items own: a forward query tile, a backward key
 * tile (dK, dV) or a backward query tile (dQ). */
typedef enum att_kind { IT_FWD, IT_DKV, IT_DQ } att_kind;

/* One (query tile, key tile) pair of an item, in a block's order. */
typedef struct att_step {
    int64_t b, h, q0, k0;
    int64_t kvh; /* the key/value head query head h reads: h / rep */
    int nq, nk;
    int first, last; /* first / last pair of its item */
    int64_t item;    /* index of the item in the block: per-item buffers */
    int64_t g;       /* index of the pair in the block: per-pair buffers */
} att_step;

static int key_tile(att_kind k)
{
    return k == IT_FWD ? BN_F : BN_B;
}

/* Items are (batch, head, tile): query heads for the forward and dQ, key/value
 * heads for dK/dV. */
static int64_t item_heads(const att_dims *d, att_kind k) { return k == IT_DKV ? d->NKV : d->NH; }

static int64_t item_count(const att_dims *d, att_kind k)
{
    const int64_t tiles = k == IT_DKV ? (d->T + BN_B - 1) / BN_B : d->qtiles;
    return d->B * item_heads(d, k) * tiles;
}

/* Item index of the n-th item of block blk out of dim: items come
 * costliest first, and round n deals n*dim .. n*dim + dim - 1 forwards
 * when n is even and backwards when odd. */
static int64_t dealt(int64_t n, int blk, int dim)
{
    return n * dim + (n % 2 ? dim - 1 - blk : blk);
}

/* Walks the pairs of one block's items in order. */
typedef struct step_iter {
    const att_dims *d;
    att_kind kind;
    int blk, dim;
    int64_t n;          /* items taken */
    int64_t bh, tile;   /* current item: batch * heads + head (item_heads), owned tile */
    int64_t pos, count; /* pair position in the item, pairs in it */
    int64_t g;
} step_iter;

static step_iter iter_start(const att_dims *d, att_kind kind, int blk, int dim)
{
    return (step_iter){.d = d, .kind = kind, .blk = blk, .dim = dim};
}

/* The first query tile a dK/dV item of key tile `tile` visits: causal,
 * the one holding the tile's first key; else 0. */
static int64_t dkv_first_qtile(const att_dims *d, int64_t tile) { return d->causal ? tile * BN_B / d->bm : 0; }

/* Query tiles a dK/dV item visits per query head of its group: from
 * dkv_first_qtile to the end. */
static int64_t dkv_per_head(const att_dims *d, int64_t tile) { return d->qtiles - dkv_first_qtile(d, tile); }

/* Pairs of an item owning `tile`: forward and dQ walk key tiles 0 ..
 * the one holding the tile's last query (causal) or the last one; dK/dV
 * walks, for each query head of its key/value head's group in turn, its
 * query tiles (dkv_per_head). */
static int64_t pair_count(const att_dims *d, att_kind kind, int64_t tile)
{
    if (kind == IT_DKV)
        return d->rep * dkv_per_head(d, tile);
    const int64_t last_k = d->causal ? min64(d->T, (tile + 1) * d->bm) - 1 : d->T - 1;
    return last_k / key_tile(kind) + 1;
}

/* The next pair into *s; 0 when the block has no more. */
static int iter_next(step_iter *it, att_step *s)
{
    const att_dims *d = it->d;
    if (it->pos == it->count) {
        const int64_t idx = dealt(it->n, it->blk, it->dim), per = d->B * item_heads(d, it->kind);
        if (idx >= item_count(d, it->kind))
            return 0;
        it->n++;
        it->bh = idx % per;
        it->tile = it->kind == IT_DKV ? idx / per : d->qtiles - 1 - idx / per;
        it->pos = 0;
        it->count = pair_count(d, it->kind, it->tile);
    }
    const int bn = key_tile(it->kind);
    if (it->kind == IT_DKV) {
        const int64_t per = dkv_per_head(d, it->tile);
        s->b = it->bh / d->NKV;
        s->kvh = it->bh % d->NKV;
        s->h = s->kvh * d->rep + it->pos / per;
        s->k0 = it->tile * BN_B;
        s->q0 = (dkv_first_qtile(d, it->tile) + it->pos % per) * d->bm;
    } else {
        s->b = it->bh / d->NH;
        s->h = it->bh % d->NH;
        s->kvh = s->h / d->rep;
        s->q0 = it->tile * d->bm;
        s->k0 = it->pos * bn;
    }
    s->nq = (int)min64(d->bm, d->T - s->q0);
    s->nk = (int)min64(bn, d->T - s->k0);
    s->first = it->pos == 0;
    s->last = it->pos == it->count - 1;
    s->item = it->n - 1;
    s->g = it->g++;
    it->pos++;
    return 1;
}

/* Queries of step s that AIV v owns (0 for a ragged last tile's idle AIV). */
static int aiv_width(const att_step *s, int v)
{
    const int q = s->nq - v * QH;
    return q < 0 ? 0 : q > QH ? QH : q;
}

/* Column of part (0: q, 1: k, 2: v) of step s's heads in a qkv row. */
static int64_t qkv_col(const att_dims *d, const att_step *s, int part)
{
    return part == 0 ? s->h * d->HD : d->C + (part - 1) * d->KV + s->kvh * d->HD;
}

/* Token t0 of part (0: q, 1: k, 2: v) of step s's heads in a [B,T,C+2KV]
 * tensor (a bf16 copy of qkv or kv, dq or dkv); rows are d->LD apart. */
#define QKV_AT(d, base, s, part, t0) ((base) + ((s)->b * (d)->T + (t0)) * (d)->LD + qkv_col(d, s, part))

/* Slot g % n of block blk in a per-block workspace of n slots of `per` elements. */
#define WS_SLOT(base, per, n, blk, g) ((base) + ((int64_t)(blk) * (n) + (g) % (n)) * (per))

/* ------------------------------------------------------------- the cores */

typedef struct att_cores {
    hs_npu_core *aic, *aiv[2];
    int naiv, blk;
} att_cores;

static hs_status cores_of(hs_npu_kblock *blk, const att_dims *d, att_cores *k)
{
    k->aic = hs_npu_kblock_aic(blk);
    k->naiv = hs_npu_kblock_aiv_count(blk);
    k->blk = hs_npu_kblock_idx(blk);
    if (k->naiv != d->naiv)
        return hs_error(HS_ERR_INTERNAL, "attention: %d AIVs per block, planned for %d", k->naiv, d->naiv);
    for (int v = 0; v < k->naiv; v++)
        k->aiv[v] = hs_npu_kblock_aiv(blk, v);
    return HS_OK;
}

/* n sets (at a block's start) or waits (at its end) of flag (src, dst, id):
 * the credits of a buffer that starts free. */
static void credits(hs_npu_core *c, hs_npu_pipe src, hs_npu_pipe dst, int id, int n, int set)
{
    for (int i = 0; i < n; i++)
        (set ? hs_npu_set_flag : hs_npu_wait_flag)(c, src, dst, id);
}

/* The same for a cross-core flag from `from` (pipe fp) to `to` (pipe tp). */
static void cross_credits(hs_npu_core *from, hs_npu_pipe fp, hs_npu_core *to, hs_npu_pipe tp, int id, int n, int set)
{
    for (int i = 0; i < n; i++) {
        if (set)
            hs_npu_cross_set_flag(from, fp, to, id);
        else
            hs_npu_cross_wait_flag(to, tp, id);
    }
}

/* The AIC tells every AIV (flag id) that its `pipe` work so far is done. */
static void to_aivs(const att_cores *k, hs_npu_pipe pipe, int id)
{
    for (int v = 0; v < k->naiv; v++)
        hs_npu_cross_set_flag(k->aic, pipe, k->aiv[v], id);
}

/* The AIC's `pipe` waits for every AIV's flag id + v. */
static void from_aivs(const att_cores *k, hs_npu_pipe pipe, int id)
{
    for (int v = 0; v < k->naiv; v++)
        hs_npu_cross_wait_flag(k->aic, pipe, id + v);
}

/* ----------------------------------------------------------- cube helpers */

/* The L0A/L0B operand ring: two slots each, reused mmad after mmad
 * (CUBE -> MTE1 "slot free", MTE1 -> CUBE "loaded", ids 0 and 1). */
typedef struct aic_ring {
    hs_npu_core *c;
    hs_npu_local l0a[2], l0b[2];
    int64_t n;
} aic_ring;

static hs_status ring_init(hs_npu_core *c, aic_ring *r)
{
    r->c = c;
    r->n = 0;
    for (int s = 0; s < 2; s++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_L0A, HS_BF16, (int64_t)HD_MAX * BN_F, &r->l0a[s]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_L0B, HS_BF16, (int64_t)HD_MAX * BN_F, &r->l0b[s]));
    }
    return HS_OK;
}

static void ring_credits(aic_ring *r, int set)
{
    for (int s = 0; s < 2; s++)
        credits(r->c, P_CUBE, P_MTE1, s, 1, set);
}

/* An mmad operand in L1: an NZ matrix of `rows` rows (a multiple of 16),
 * its block at (row0, col0), transposed on the way when trans (the
 * hs_npu_load_l0a / hs_npu_load_l0b conventions). */
typedef struct l1_op {
    hs_npu_local l1;
    int rows, row0, col0, trans;
} l1_op;

/* acc (L0C) (+)= A[m x k] @ B[k x n], both loaded from L1 into the next
 * ring slot. The caller has waited for the L1 tiles and for acc to be free. */
static void cube_mm(aic_ring *r, hs_npu_local acc, l1_op a, l1_op b, int m, int k, int n, int accumulate)
{
    const int s = (int)(r->n++ % 2);
    hs_npu_wait_flag(r->c, P_CUBE, P_MTE1, s);
    hs_npu_load_l0a(r->l0a[s], a.l1, a.rows, a.row0, a.col0, m, k, a.trans);
    hs_npu_load_l0b(r->l0b[s], b.l1, b.rows, b.row0, b.col0, k, n, b.trans);
    hs_npu_set_flag(r->c, P_MTE1, P_CUBE, s);
    hs_npu_wait_flag(r->c, P_MTE1, P_CUBE, s);
    hs_npu_mmad(acc, r->l0a[s], r->l0b[s], m, k, n, accumulate);
    hs_npu_set_flag(r->c, P_CUBE, P_MTE1, s);
}

/* Loads the rows x cols bf16 tile at gm (row stride ld) into L1 buffer dst
 * after its "free" flag (MTE1 -> MTE2, id), and marks it loaded. */
static void l1_load(hs_npu_core *c, hs_npu_local dst, int id, const uint16_t *gm, int64_t ld, int rows, int cols)
{
    hs_npu_wait_flag(c, P_MTE1, P_MTE2, id);
    hs_npu_copy_nd2nz(dst, gm, ld, rows, cols);
    hs_npu_set_flag(c, P_MTE2, P_MTE1, id);
}

/* --------------------------------------------------------- vector helpers */

/* Folds rows x w values of buf to its row 0 with a binary op, in place: each
 * level combines rows [0, h) with rows [rows - h, rows), h = rows / 2. */
static void fold_rows(hs_npu_vop op, hs_npu_local buf, int rows, int w)
{
    while (rows > 1) {
        const int h = rows / 2;
        hs_npu_vbin(op, buf, buf, hs_npu_sub(buf, (int64_t)(rows - h) * w, (int64_t)h * w), (int64_t)h * w);
        rows -= h;
    }
}

/* Rows 1 .. rows - 1 of buf (w wide) := row 0, by doubling copies. */
static void bcast_rows(hs_npu_local buf, int rows, int w)
{
    for (int have = 1; have < rows; have *= 2) {
        const int n = have < rows - have ? have : rows - have;
        hs_npu_vunary(HS_V_COPY, hs_npu_sub(buf, (int64_t)have * w, (int64_t)n * w), buf, (int64_t)n * w);
    }
}

/* S^T[c][r] = -inf where key c comes after query r, for an nk x qa tile
 * whose key c and query r sit at c + shift and r of one axis:
 * r < c + shift. Rows c >= qa - shift are masked whole, in one op. */
static void causal_mask(hs_npu_local st, int nk, int qa, int64_t shift)
{
    const int64_t full = qa - shift < 0 ? 0 : qa - shift;
    for (int64_t c = shift < 1 ? 1 - shift : 0; c < min64(full, nk); c++)
        hs_npu_vdup(hs_npu_sub(st, c * qa, c + shift), -INFINITY, c + shift);
    if (full < nk)
        hs_npu_vdup(hs_npu_sub(st, full * qa, (nk - full) * qa), -INFINITY, (nk - full) * qa);
}

/* 1 when some key of step s lies after AIV v's first query (causal). */
static int needs_mask(const att_dims *d, const att_step *s, int v)
{
    return d->causal && s->k0 + s->nk - 1 > s->q0 + (int64_t)v * QH;
}

/* --------------------------------------------------------------- forward */

/* Pipeline depth: the AIC computes S^T this many key tiles ahead of P V,
 * the AIVs run the softmax FWD_LV tiles ahead of the O update, so the
 * P -> cube -> O round trip of a tile hides behind two softmaxes. */
#define FWD_LS 3
#define FWD_LV 2
#define FWD_KV (FWD_LS + 1) /* K/V tile slots in L1: tiles g .. g + FWD_LS are live */
#define FWD_ITEMS (FWD_LV + 1) /* items whose softmax state can be live on an AIV */

/* AIC flag ids, MTE1 <-> MTE2: K and V slot (0 .. 3), Q per item parity, P. */
enum { EV_KV = 0, EV_Q = FWD_KV, EV_P = FWD_KV + 2 };

typedef struct fwd_args {
    att_dims d;
    float *out, *lse;
    const uint16_t *qkvh, *kvh; /* bf16 copies of qkv (the queries) and kv (keys, values; qkvh for self-attention) */
    float *s, *o;         /* per block, 2 slots: S^T [BN_F x bm], O^T [HD x bm] */
    uint16_t *p;          /* per block, 2 slots: P^T [BN_F x bm] bf16 */
} fwd_args;

typedef struct fwd_aic {
    att_cores k;
    aic_ring r;
    hs_npu_local q[2], kt[FWD_KV], vt[FWD_KV], p, ls, lo;
} fwd_aic;

static hs_status fwd_aic_init(const att_dims *d, fwd_aic *x)
{
    hs_npu_core *c = x->k.aic;
    const int64_t kv = (int64_t)BN_F * up16(d->HD);
    HS_TRY(ring_init(c, &x->r));
    for (int s = 0; s < 2; s++)
        HS_TRY(hs_npu_alloc(c, HS_BUF_L1, HS_BF16, (int64_t)d->bm * up16(d->HD), &x->q[s]));
    for (int s = 0; s < FWD_KV; s++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_L1, HS_BF16, kv, &x->kt[s]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_L1, HS_BF16, kv, &x->vt[s]));
    }
    HS_TRY(hs_npu_alloc(c, HS_BUF_L1, HS_BF16, (int64_t)BN_F * d->bm, &x->p));
    HS_TRY(hs_npu_alloc(c, HS_BUF_L0C, HS_FP32, (int64_t)BN_F * d->bm, &x->ls));
    return hs_npu_alloc(c, HS_BUF_L0C, HS_FP32, (int64_t)up16(d->HD) * d->bm, &x->lo);
}

/* Sets or takes back the AIC's start-of-block credits. */
static void fwd_aic_credits(fwd_aic *x, int set)
{
    hs_npu_core *c = x->k.aic;
    ring_credits(&x->r, set);
    for (int id = 0; id <= EV_P; id++)
        credits(c, P_MTE1, P_MTE2, id, 1, set);
    credits(c, P_FIX, P_CUBE, EV_LS, 1, set);
    credits(c, P_FIX, P_CUBE, EV_LO, 1, set);
    for (int v = 0; v < x->k.naiv; v++) /* two P^T slots free for each AIV */
        cross_credits(c, P_MTE2, x->k.aiv[v], P_MTE3, XV_P_FREE, 2, set);
}

/* S^T_j = K_j Q^T into L0C, fixpiped (fp32) to the block's S slot. Loads
 * the item's Q on its first pair, and K_j and V_j (V for fwd_pv). */
static void fwd_score(fwd_aic *x, const fwd_args *a, const att_step *s)
{
    hs_npu_core *c = x->k.aic;
    const att_dims *d = &a->d;
    const int ks = (int)(s->g % FWD_KV), qs = (int)(s->item % 2), hd = (int)d->HD;
    const int64_t ld = d->LD;
    if (s->first)
        l1_load(c, x->q[qs], EV_Q + qs, QKV_AT(d, a->qkvh, s, 0, s->q0), ld, s->nq, hd);
    hs_npu_wait_flag(c, P_MTE1, P_MTE2, EV_KV + ks);
    hs_npu_copy_nd2nz(x->kt[ks], QKV_AT(d, a->kvh, s, 1, s->k0), ld, s->nk, hd);
    hs_npu_copy_nd2nz(x->vt[ks], QKV_AT(d, a->kvh, s, 2, s->k0), ld, s->nk, hd);
    hs_npu_set_flag(c, P_MTE2, P_MTE1, EV_KV + ks);
    if (s->first)
        hs_npu_wait_flag(c, P_MTE2, P_MTE1, EV_Q + qs);
    hs_npu_wait_flag(c, P_MTE2, P_MTE1, EV_KV + ks);
    hs_npu_wait_flag(c, P_FIX, P_CUBE, EV_LS);
    cube_mm(&x->r, x->ls, (l1_op){x->kt[ks], up16(s->nk), 0, 0, 0}, (l1_op){x->q[qs], up16(s->nq), 0, 0, 1}, s->nk,
            hd, s->nq, 0);
    if (s->last)
        hs_npu_set_flag(c, P_MTE1, P_MTE2, EV_Q + qs);
    hs_npu_set_flag(c, P_CUBE, P_FIX, EV_LS);
    hs_npu_wait_flag(c, P_CUBE, P_FIX, EV_LS);
    from_aivs(&x->k, P_FIX, XC_S_FREE);
    hs_npu_fixpipe(WS_SLOT(a->s, (int64_t)BN_F * d->bm, 2, x->k.blk, s->g), d->bm, HS_FP32, x->ls, s->nk, s->nq);
    hs_npu_set_flag(c, P_FIX, P_CUBE, EV_LS);
    to_aivs(&x->k, P_FIX, XV_S_READY);
}

/* O^T_j = V_j^T P^T once the AIVs have written P^T, fixpiped to the O slot. */
static void fwd_pv(fwd_aic *x, const fwd_args *a, const att_step *s)
{
    hs_npu_core *c = x->k.aic;
    const att_dims *d = &a->d;
    const int ks = (int)(s->g % FWD_KV), hd = (int)d->HD;
    from_aivs(&x->k, P_MTE2, XC_P_READY);
    l1_load(c, x->p, EV_P, WS_SLOT(a->p, (int64_t)BN_F * d->bm, 2, x->k.blk, s->g), d->bm, s->nk, s->nq);
    to_aivs(&x->k, P_MTE2, XV_P_FREE);
    hs_npu_wait_flag(c, P_MTE2, P_MTE1, EV_P);
    hs_npu_wait_flag(c, P_FIX, P_CUBE, EV_LO);
    cube_mm(&x->r, x->lo, (l1_op){x->vt[ks], up16(s->nk), 0, 0, 1}, (l1_op){x->p, up16(s->nk), 0, 0, 0}, hd, s->nk,
            s->nq, 0);
    hs_npu_set_flag(c, P_MTE1, P_MTE2, EV_KV + ks);
    hs_npu_set_flag(c, P_MTE1, P_MTE2, EV_P);
    hs_npu_set_flag(c, P_CUBE, P_FIX, EV_LO);
    hs_npu_wait_flag(c, P_CUBE, P_FIX, EV_LO);
    from_aivs(&x->k, P_FIX, XC_O_FREE);
    hs_npu_fixpipe(WS_SLOT(a->o, d->HD * d->bm, 2, x->k.blk, s->g), d->bm, HS_FP32, x->lo, hd, s->nq);
    hs_npu_set_flag(c, P_FIX, P_CUBE, EV_LO);
    to_aivs(&x->k, P_FIX, XV_O_READY);
}

/* One AIV's forward state: its columns of S^T and P, the running m and l
 * of each live item, alpha of each live tile, and a pool of three O^T
 * buffers: the item's accumulator, the next tile's load target (which
 * becomes the accumulator: target += acc * alpha), and an output being
 * written out. */
typedef struct fwd_aiv {
    hs_npu_core *c, *aic;
    int v, blk;
    hs_npu_local s, p, pb, pool[3], m[FWD_ITEMS], l[FWD_ITEMS], lse[FWD_ITEMS], alpha[FWD_ITEMS], t;
    int acc;     /* pool buffer of the current item's O^T, -1 between items */
    int out;     /* pool buffer of a finished item's out rows still being written, -1 none */
    int next;    /* where the round-robin search for a load target starts */
    int user[3]; /* pipe that last released each pool buffer (P_VEC, P_MTE3), -1: none yet */
    int out_r, out_n;  /* next query row of `out` to write, and how many */
    float *out_gm;     /* out row of its first query (head offset included) */
} fwd_aiv;

/* AIV flag ids. VECTOR -> MTE2: S^T input, then pool buffer i at 1 + i;
 * MTE3 -> MTE2: pool buffer i; MTE3 -> VECTOR: P^T staging, lse of item
 * slot k at 1 + k; VECTOR -> MTE3: P^T, output; MTE2 -> VECTOR: S^T, O^T. */
enum { EV_SIN = 0, EV_POOL = 1, EV_OIN = 1, EV_PB = 0, EV_LSE = 1, EV_OUT = 1 };

static hs_status fwd_aiv_init(const att_dims *d, const att_cores *k, int v, fwd_aiv *y)
{
    hs_npu_core *c = k->aiv[v];
    *y = (fwd_aiv){.c = c, .aic = k->aic, .v = v, .blk = k->blk, .acc = -1, .out = -1, .user = {-1, -1, -1}};
    const int64_t tile = (int64_t)BN_F * QH; /* HD <= BN_F: p also holds HD rows */
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, tile, &y->s));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, tile, &y->p));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_BF16, tile, &y->pb));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, QH, &y->t));
    for (int i = 0; i < 3; i++)
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, d->HD * QH, &y->pool[i]));
    for (int i = 0; i < FWD_ITEMS; i++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, QH, &y->m[i]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, QH, &y->l[i]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, QH, &y->lse[i]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, QH, &y->alpha[i]));
    }
    return HS_OK;
}

/* Sets or takes back the AIV's credits; at the end also the release flag
 * each pool buffer was left with. */
static void fwd_aiv_credits(fwd_aiv *y, int set)
{
    credits(y->c, P_VEC, P_MTE2, EV_SIN, 1, set);
    credits(y->c, P_MTE3, P_VEC, EV_PB, 1, set);
    for (int i = 0; i < FWD_ITEMS; i++)
        credits(y->c, P_MTE3, P_VEC, EV_LSE + i, 1, set);
    cross_credits(y->c, P_MTE2, y->aic, P_FIX, XC_S_FREE + y->v, 2, set); /* two S^T slots */
    cross_credits(y->c, P_MTE2, y->aic, P_FIX, XC_O_FREE + y->v, 2, set); /* two O^T slots */
    for (int i = 0; !set && i < 3; i++)
        if (y->user[i] >= 0)
            hs_npu_wait_flag(y->c, (hs_npu_pipe)y->user[i], P_MTE2, y->user[i] == P_VEC ? EV_POOL + i : i);
}

/* The pool buffer for the next O^T tile (round robin over the one that is
 * neither the accumulator nor an output still being written); MTE2 first
 * waits for whoever released it last. */
static int pool_take(fwd_aiv *y)
{
    int i = y->next;
    while (i == y->acc || i == y->out)
        i = (i + 1) % 3;
    y->next = (i + 1) % 3;
    if (y->user[i] >= 0)
        hs_npu_wait_flag(y->c, (hs_npu_pipe)y->user[i], P_MTE2, y->user[i] == P_VEC ? EV_POOL + i : i);
    y->user[i] = -1;
    return i;
}

/* Pool buffer i is done with on pipe `by` (VECTOR or MTE3). */
static void pool_release(fwd_aiv *y, int i, hs_npu_pipe by)
{
    hs_npu_set_flag(y->c, by, P_MTE2, by == P_VEC ? EV_POOL + i : i);
    y->user[i] = by;
}

/* The online softmax of one key tile on the AIV's qa columns:
 * m' = max(m, scale colmax S^T), alpha = exp(m - m'), P^T = exp(scale S^T - m')
 * (written bf16 for the cube), l = l alpha + colsum P^T. An item's first
 * tile starts m and l. */
static void fwd_softmax(fwd_aiv *y, const fwd_args *a, const att_step *s)
{
    hs_npu_core *c = y->c;
    const att_dims *d = &a->d;
    const int qa = aiv_width(s, y->v), nk = s->nk, ia = (int)(s->g % FWD_ITEMS), k = (int)(s->item % FWD_ITEMS);
    const int64_t n = (int64_t)nk * qa, aoff = (int64_t)y->v * QH, slot = (int64_t)BN_F * d->bm;
    hs_npu_cross_wait_flag(c, P_MTE2, XV_S_READY);
    hs_npu_wait_flag(c, P_VEC, P_MTE2, EV_SIN);
    if (qa)
        hs_npu_copy_in(y->s, qa, WS_SLOT(a->s, slot, 2, y->blk, s->g) + aoff, d->bm, nk, qa);
    hs_npu_cross_set_flag(c, P_MTE2, y->aic, XC_S_FREE + y->v);
    hs_npu_set_flag(c, P_MTE2, P_VEC, EV_SIN);
    hs_npu_wait_flag(c, P_MTE2, P_VEC, EV_SIN);
    if (qa) {
        if (needs_mask(d, s, y->v))
            causal_mask(y->s, nk, qa, s->k0 - s->q0 - aoff);
        const int h0 = (nk + 1) / 2; /* first level from S^T into p; the odd middle row meets itself */
        const int64_t half = (int64_t)h0 * qa;
        hs_npu_vbin(HS_V_MAX, y->p, y->s, hs_npu_sub(y->s, (int64_t)(nk - h0) * qa, half), half);
        fold_rows(HS_V_MAX, y->p, h0, qa);
        if (s->first)
            hs_npu_vscalar(HS_V_MULS, y->m[k], y->p, d->scale, qa);
        else {
            hs_npu_vscalar(HS_V_MULS, y->t, y->p, d->scale, qa);
            hs_npu_vbin(HS_V_MAX, y->t, y->t, y->m[k], qa);
            hs_npu_vbin(HS_V_SUB, y->alpha[ia], y->m[k], y->t, qa);
            hs_npu_vunary(HS_V_EXP, y->alpha[ia], y->alpha[ia], qa);
            hs_npu_vunary(HS_V_COPY, y->m[k], y->t, qa);
        }
        hs_npu_vscalar(HS_V_MULS, y->p, y->m[k], -1.0f, qa);
        bcast_rows(y->p, nk, qa);
        hs_npu_vaxpy(y->p, y->s, d->scale, n);
    }
    hs_npu_set_flag(c, P_VEC, P_MTE2, EV_SIN);
    if (qa)
        hs_npu_vunary(HS_V_EXP, y->p, y->p, n);
    hs_npu_wait_flag(c, P_MTE3, P_VEC, EV_PB);
    if (qa)
        hs_npu_vcast(y->pb, y->p, n);
    hs_npu_set_flag(c, P_VEC, P_MTE3, EV_PB);
    hs_npu_wait_flag(c, P_VEC, P_MTE3, EV_PB);
    hs_npu_cross_wait_flag(c, P_MTE3, XV_P_FREE);
    if (qa)
        hs_npu_copy_out(WS_SLOT(a->p, slot, 2, y->blk, s->g) + aoff, d->bm, y->pb, qa, nk, qa);
    hs_npu_cross_set_flag(c, P_MTE3, y->aic, XC_P_READY + y->v);
    hs_npu_set_flag(c, P_MTE3, P_VEC, EV_PB);
    if (qa) {
        fold_rows(HS_V_ADD, y->p, nk, qa);
        if (s->first)
            hs_npu_vunary(HS_V_COPY, y->l[k], y->p, qa);
        else {
            hs_npu_vbin(HS_V_MUL, y->l[k], y->l[k], y->alpha[ia], qa);
            hs_npu_vbin(HS_V_ADD, y->l[k], y->l[k], y->p, qa);
        }
    }
}

/* Queries whose out rows one O update writes: one strided MTE3 copy per
 * query turns an O^T column into an out row, so a finished item's rows are
 * spread over the next tiles instead of holding up their P^T writes. */
#define OUT_ROWS_PER_TILE 8

/* Writes up to `max` more out rows of the finished item in pool buffer
 * y->out, releasing the buffer after the last one. */
static void out_rows(fwd_aiv *y, int64_t hd, int64_t ld, int max)
{
    if (y->out < 0)
        return;
    for (int k = 0; k < max && y->out_r < y->out_n; k++, y->out_r++)
        hs_npu_copy_out(y->out_gm + y->out_r * ld, 1, hs_npu_sub(y->pool[y->out], y->out_r, (hd - 1) * y->out_n + 1),
                        y->out_n, hd, 1);
    if (y->out_r == y->out_n) {
        pool_release(y, y->out, P_MTE3);
        y->out = -1;
    }
}

/* Last pair of an item: O^T /= l in pool buffer i, lse = m + ln l and
 * written; i becomes the output whose rows out_rows writes. */
static void fwd_finish(fwd_aiv *y, const fwd_args *a, const att_step *s, int qa, int i)
{
    hs_npu_core *c = y->c;
    const att_dims *d = &a->d;
    const int k = (int)(s->item % FWD_ITEMS);
    const int64_t q = s->q0 + (int64_t)y->v * QH;
    hs_npu_wait_flag(c, P_MTE3, P_VEC, EV_LSE + k);
    if (qa) {
        hs_npu_vunary(HS_V_RECIP, y->p, y->l[k], qa);
        bcast_rows(y->p, (int)d->HD, qa);
        hs_npu_vbin(HS_V_MUL, y->pool[i], y->pool[i], y->p, d->HD * qa);
        hs_npu_vunary(HS_V_LN, y->lse[k], y->l[k], qa);
        hs_npu_vbin(HS_V_ADD, y->lse[k], y->lse[k], y->m[k], qa);
    }
    hs_npu_set_flag(c, P_VEC, P_MTE3, EV_OUT);
    hs_npu_wait_flag(c, P_VEC, P_MTE3, EV_OUT);
    if (qa)
        hs_npu_copy_out(a->lse + (s->b * d->NH + s->h) * d->T + q, qa, y->lse[k], qa, 1, qa);
    hs_npu_set_flag(c, P_MTE3, P_VEC, EV_LSE + k);
    y->out = i;
    y->out_r = 0;
    y->out_n = qa;
    y->out_gm = a->out + (s->b * d->T + q) * d->C + s->h * d->HD;
}

/* O^T = O^T_j + O^T alpha (alpha broadcast down the HD rows): O^T_j is
 * loaded into a free pool buffer, which becomes the accumulator. */
static void fwd_oupdate(fwd_aiv *y, const fwd_args *a, const att_step *s)
{
    hs_npu_core *c = y->c;
    const att_dims *d = &a->d;
    const int qa = aiv_width(s, y->v);
    hs_npu_cross_wait_flag(c, P_MTE2, XV_O_READY);
    const int i = pool_take(y);
    if (qa)
        hs_npu_copy_in(y->pool[i], qa, WS_SLOT(a->o, d->HD * d->bm, 2, y->blk, s->g) + (int64_t)y->v * QH, d->bm,
                       d->HD, qa);
    hs_npu_cross_set_flag(c, P_MTE2, y->aic, XC_O_FREE + y->v);
    hs_npu_set_flag(c, P_MTE2, P_VEC, EV_OIN);
    hs_npu_wait_flag(c, P_MTE2, P_VEC, EV_OIN);
    if (!s->first) {
        if (qa) {
            hs_npu_vunary(HS_V_COPY, y->p, y->alpha[s->g % FWD_ITEMS], qa);
            bcast_rows(y->p, (int)d->HD, qa);
            hs_npu_vmla(y->pool[i], y->pool[y->acc], y->p, d->HD * qa);
        }
        pool_release(y, y->acc, P_VEC);
    }
    y->acc = i;
    out_rows(y, d->HD, d->C, OUT_ROWS_PER_TILE);
    if (s->last) {
        out_rows(y, d->HD, d->C, QH); /* the previous output, if any, first */
        fwd_finish(y, a, s, qa, i);
        y->acc = -1;
    }
}

/* One cube core and its AIVs over the block's pairs g = 0 .. G - 1.
 * Program order, which is also the order data moves in: step g issues
 * P V (g), S (g + FWD_LS), softmax (g + FWD_LV) and the O update (g),
 * each only where its pair exists, from g = -FWD_LS on. */
static hs_status fwd_block(hs_npu_kblock *blk, void *arg)
{
    const fwd_args *a = arg;
    fwd_aic x;
    fwd_aiv y[2];
    HS_TRY(cores_of(blk, &a->d, &x.k));
    HS_TRY(fwd_aic_init(&a->d, &x));
    for (int v = 0; v < x.k.naiv; v++)
        HS_TRY(fwd_aiv_init(&a->d, &x.k, v, &y[v]));
    fwd_aic_credits(&x, 1);
    for (int v = 0; v < x.k.naiv; v++)
        fwd_aiv_credits(&y[v], 1);
    step_iter it = iter_start(&a->d, IT_FWD, x.k.blk, hs_npu_kblock_dim(blk));
    att_step w[FWD_KV]; /* pairs g .. g + FWD_LS */
    int64_t got = 0;
    for (int64_t g = -FWD_LS; got == g + FWD_LS || g < got; g++) {
        if (got == g + FWD_LS && iter_next(&it, &w[got % FWD_KV]))
            got++;
        if (g >= 0)
            fwd_pv(&x, a, &w[g % FWD_KV]);
        if (g + FWD_LS < got)
            fwd_score(&x, a, &w[(g + FWD_LS) % FWD_KV]);
        for (int v = 0; v < x.k.naiv; v++) {
            if (g + FWD_LV >= 0 && g + FWD_LV < got)
                fwd_softmax(&y[v], a, &w[(g + FWD_LV) % FWD_KV]);
            if (g >= 0)
                fwd_oupdate(&y[v], a, &w[g % FWD_KV]);
        }
    }
    for (int v = 0; v < x.k.naiv; v++)
        out_rows(&y[v], a->d.HD, a->d.C, QH);
    fwd_aic_credits(&x, 0);
    for (int v = 0; v < x.k.naiv; v++)
        fwd_aiv_credits(&y[v], 0);
    return hs_npu_core_status(x.k.aic);
}

/* -------------------------------------------------------------- backward */

/* The backward's bf16 operands: pair arrays [B, NH, T, 2 HDp] of (q | dO)
 * and [B, NKV, T, 2 HDp] of (k | v) rows, the second half starting at
 * HDp = ceil16(HD) so that load2d can address it; one nd2nz brings both
 * halves of a tile to L1. */
#define STAGE_ROWS 32

/* Element offset of token t0 of head h, batch b in a pair array of nh heads. */
static int64_t pair_row(const att_dims *d, int64_t nh, int64_t b, int64_t h, int64_t t0)
{
    return ((b * nh + h) * d->T + t0) * 2 * up16(d->HD);
}

typedef struct stage_args {
    att_dims d;
    const float *qkv, *kvsrc, *dout; /* queries from qkv, keys and values from kvsrc */
    uint16_t *qdo, *kv;
} stage_args;

/* Jobs (batch, head, STAGE_ROWS tokens, which pair) round-robin over the
 * AIVs, ping-ponged: the two fp32 halves are copied in side by side (the
 * padding columns stay zero), cast, and copied out as pair rows. Units
 * (batch, head, chunk) of the (q | dO) and (k | v) arrays alternate while
 * both last; the query heads' units beyond the key/value ones (GQA) come
 * after. */
static hs_status stage_block(hs_npu_kblock *blk, void *arg)
{
    const stage_args *a = arg;
    const att_dims *d = &a->d;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    const int64_t hdp = up16(d->HD), w = 2 * hdp, chunks = (d->T + STAGE_ROWS - 1) / STAGE_ROWS;
    hs_npu_local x[2], y[2];
    for (int s = 0; s < 2; s++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, STAGE_ROWS * w, &x[s]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_BF16, STAGE_ROWS * w, &y[s]));
        hs_npu_vdup(x[s], 0.0f, STAGE_ROWS * w);
        credits(c, P_VEC, P_MTE2, s, 1, 1);
        credits(c, P_MTE3, P_VEC, s, 1, 1);
    }
    const int64_t kv_units = d->B * d->NKV * chunks, jobs = d->B * d->NH * chunks + kv_units;
    int64_t k = 0;
    for (int64_t job = hs_npu_kblock_idx(blk); job < jobs; job += hs_npu_kblock_dim(blk), k++) {
        const int s = (int)(k % 2), kv = job < 2 * kv_units ? (int)(job % 2) : 0;
        const int64_t unit = job < 2 * kv_units ? job / 2 : job - kv_units, nh = kv ? d->NKV : d->NH;
        const int64_t b = unit / chunks / nh, h = unit / chunks % nh, t0 = unit % chunks * STAGE_ROWS;
        const int64_t r = min64(STAGE_ROWS, d->T - t0), row = (b * d->T + t0) * d->LD;
        const int64_t first = kv ? d->C + h * d->HD : h * d->HD; /* q, or k */
        hs_npu_wait_flag(c, P_VEC, P_MTE2, s);
        const float *src = kv ? a->kvsrc : a->qkv;
        hs_npu_copy_in(x[s], w, src + row + first, d->LD, r, d->HD);
        if (kv)
            hs_npu_copy_in(hs_npu_sub(x[s], hdp, (r - 1) * w + d->HD), w, src + row + first + d->KV, d->LD, r,
                           d->HD);
        else
            hs_npu_copy_in(hs_npu_sub(x[s], hdp, (r - 1) * w + d->HD), w,
                           a->dout + (b * d->T + t0) * d->C + h * d->HD, d->C, r, d->HD);
        hs_npu_set_flag(c, P_MTE2, P_VEC, s);
        hs_npu_wait_flag(c, P_MTE2, P_VEC, s);
        hs_npu_wait_flag(c, P_MTE3, P_VEC, s);
        hs_npu_vcast(y[s], x[s], r * w);
        hs_npu_set_flag(c, P_VEC, P_MTE2, s);
        hs_npu_set_flag(c, P_VEC, P_MTE3, s);
        hs_npu_wait_flag(c, P_VEC, P_MTE3, s);
        hs_npu_copy_out((kv ? a->kv : a->qdo) + pair_row(d, nh, b, h, t0), w, y[s], w, r, w);
        hs_npu_set_flag(c, P_MTE3, P_VEC, s);
    }
    for (int s = 0; s < 2; s++) {
        credits(c, P_VEC, P_MTE2, s, 1, 0);
        credits(c, P_MTE3, P_VEC, s, 1, 0);
    }
    return hs_npu_core_status(c);
}

typedef struct stats_args {
    att_dims d;
    const float *dout, *out, *lse;
    float *stats; /* [B*NH*qtiles][2][bm]: -lse, -scale D */
} stats_args;

/* Per (batch, head, query tile), one per AIV round-robin:
 * D = rowsum(dO * O) and stats = (-lse, -scale D). */
static hs_status stats_block(hs_npu_kblock *blk, void *arg)
{
    const stats_args *a = arg;
    const att_dims *d = &a->d;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    const int64_t tile = d->bm * d->HD;
    hs_npu_local x, o, lz, st;
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, tile, &x));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, tile, &o));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, d->bm, &lz));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, 2 * (int64_t)d->bm, &st));
    credits(c, P_VEC, P_MTE2, 0, 1, 1);
    credits(c, P_MTE3, P_VEC, 0, 1, 1);
    for (int64_t it = hs_npu_kblock_idx(blk); it < item_count(d, IT_FWD); it += hs_npu_kblock_dim(blk)) {
        const int64_t bh = it / d->qtiles, b = bh / d->NH, h = bh % d->NH, q0 = it % d->qtiles * d->bm;
        const int nq = (int)min64(d->bm, d->T - q0);
        const int64_t row = (b * d->T + q0) * d->C + h * d->HD, n = nq * d->HD;
        hs_npu_wait_flag(c, P_VEC, P_MTE2, 0);
        hs_npu_copy_in(x, d->HD, a->dout + row, d->C, nq, d->HD);
        hs_npu_copy_in(o, d->HD, a->out + row, d->C, nq, d->HD);
        hs_npu_copy_in(lz, nq, a->lse + bh * d->T + q0, nq, 1, nq);
        hs_npu_set_flag(c, P_MTE2, P_VEC, 0);
        hs_npu_wait_flag(c, P_MTE2, P_VEC, 0);
        hs_npu_wait_flag(c, P_MTE3, P_VEC, 0);
        hs_npu_vbin(HS_V_MUL, o, x, o, n);
        for (int r = 0; r < nq; r++)
            hs_npu_vreduce_sum(hs_npu_sub(st, d->bm + r, 1), hs_npu_sub(o, r * d->HD, d->HD), d->HD);
        hs_npu_vscalar(HS_V_MULS, hs_npu_sub(st, d->bm, nq), hs_npu_sub(st, d->bm, nq), -d->scale, nq);
        hs_npu_vscalar(HS_V_MULS, st, lz, -1.0f, nq);
        hs_npu_set_flag(c, P_VEC, P_MTE2, 0);
        hs_npu_set_flag(c, P_VEC, P_MTE3, 0);
        hs_npu_wait_flag(c, P_VEC, P_MTE3, 0);
        hs_npu_copy_out(a->stats + it * 2 * d->bm, d->bm, st, d->bm, 2, nq);
        hs_npu_set_flag(c, P_MTE3, P_VEC, 0);
    }
    credits(c, P_VEC, P_MTE2, 0, 1, 0);
    credits(c, P_MTE3, P_VEC, 0, 1, 0);
    return hs_npu_core_status(c);
}

/* Pipeline depth: the AIC computes the scores BWD_LS pairs ahead of the
 * products, the AIVs work BWD_LV pairs ahead of them. */
#define BWD_LS 4
#define BWD_LV 2
#define BWD_PT (BWD_LS + 1)          /* pair tile slots in L1: pairs g .. g + BWD_LS */
#define BWD_NS (BWD_LS - BWD_LV + 1) /* S^T / dP^T workspace slots */
#define BWD_NP (BWD_LV + 1)          /* P^T | dS^T workspace slots */

/* AIC flag ids, MTE1 <-> MTE2: item tiles per item parity, pair tiles per
 * slot, the P^T | dS^T tile (loaded and consumed at once: one buffer). */
enum { EV_IT = 0, EV_PT = 2, EV_PD = 2 + BWD_PT };

typedef struct bwd_args {
    att_dims d;
    att_kind kind; /* IT_DKV or IT_DQ */
    float *dq, *dkv;          /* the queries' gradient into dq's q columns, the keys' and values' into dkv's */
    const uint16_t *qdo, *kv; /* pair arrays */
    const float *stats;
    float *s, *dp; /* per block, 2 slots: S^T, dP^T [BN_B x bm] fp32 */
    uint16_t *pd;  /* per block, 2 slots: [BN_B x 2 bm] bf16, P^T | dS^T */
} bwd_args;

/* The AIC of a backward block. Item tiles stay for the whole item (dK/dV:
 * K_j | V_j; dQ: Q_i | dO_i), pair tiles change per pair (the other pair). */
typedef struct bwd_aic {
    att_cores k;
    aic_ring r;
    hs_npu_local it[2], pt[BWD_PT], pd, ls, ldp, acc[2];
} bwd_aic;

static hs_status bwd_aic_init(const att_dims *d, att_kind kind, bwd_aic *x)
{
    hs_npu_core *c = x->k.aic;
    const int64_t tile = (int64_t)d->bm * 2 * up16(d->HD), acc = (kind == IT_DKV ? BN_B : d->bm) * (int64_t)up16(d->HD);
    HS_TRY(ring_init(c, &x->r));
    for (int s = 0; s < 2; s++)
        HS_TRY(hs_npu_alloc(c, HS_BUF_L1, HS_BF16, tile, &x->it[s]));
    HS_TRY(hs_npu_alloc(c, HS_BUF_L1, HS_BF16, (int64_t)BN_B * 2 * d->bm, &x->pd));
    for (int s = 0; s < BWD_PT; s++)
        HS_TRY(hs_npu_alloc(c, HS_BUF_L1, HS_BF16, tile, &x->pt[s]));
    HS_TRY(hs_npu_alloc(c, HS_BUF_L0C, HS_FP32, (int64_t)BN_B * d->bm, &x->ls));
    HS_TRY(hs_npu_alloc(c, HS_BUF_L0C, HS_FP32, (int64_t)BN_B * d->bm, &x->ldp));
    for (int i = 0; i < (kind == IT_DKV ? 2 : 1); i++)
        HS_TRY(hs_npu_alloc(c, HS_BUF_L0C, HS_FP32, acc, &x->acc[i]));
    return HS_OK;
}

static void bwd_aic_credits(bwd_aic *x, int set)
{
    hs_npu_core *c = x->k.aic;
    ring_credits(&x->r, set);
    for (int id = 0; id <= EV_PD; id++)
        credits(c, P_MTE1, P_MTE2, id, 1, set);
    credits(c, P_FIX, P_CUBE, EV_LS, 1, set);
    credits(c, P_FIX, P_CUBE, EV_LDP, 1, set);
    credits(c, P_FIX, P_CUBE, EV_ACC, 1, set);
    for (int v = 0; v < x->k.naiv; v++)
        cross_credits(c, P_MTE2, x->k.aiv[v], P_MTE3, XV_P_FREE, BWD_NP, set);
}

/* Loads the (q | dO) rows of step s's query tile, or its (k | v) rows of
 * the key tile, into L1 tile dst (flag id). */
static void load_pair(bwd_aic *x, const bwd_args *a, const att_step *s, hs_npu_local dst, int id, int qdo)
{
    const att_dims *d = &a->d;
    const int w = 2 * up16(d->HD);
    if (qdo)
        l1_load(x->k.aic, dst, id, a->qdo + pair_row(d, d->NH, s->b, s->h, s->q0), w, s->nq, w);
    else
        l1_load(x->k.aic, dst, id, a->kv + pair_row(d, d->NKV, s->b, s->kvh, s->k0), w, s->nk, w);
    hs_npu_wait_flag(x->k.aic, P_MTE2, P_MTE1, id);
}

/* S^T = K Q^T and dP^T = V dO^T into L0C, fixpiped to the block's slots. */
static void bwd_score(bwd_aic *x, const bwd_args *a, const att_step *s)
{
    hs_npu_core *c = x->k.aic;
    const att_dims *d = &a->d;
    const int dkv = a->kind == IT_DKV, ps = (int)(s->g % BWD_PT), is = (int)(s->item % 2), hd = (int)d->HD;
    const int hdp = up16(hd), kr = up16(s->nk), qr = up16(s->nq);
    const int64_t slot = (int64_t)BN_B * d->bm;
    if (s->first)
        load_pair(x, a, s, x->it[is], EV_IT + is, !dkv);
    load_pair(x, a, s, x->pt[ps], EV_PT + ps, dkv);
    const hs_npu_local kv = dkv ? x->it[is] : x->pt[ps], qdo = dkv ? x->pt[ps] : x->it[is];
    hs_npu_wait_flag(c, P_FIX, P_CUBE, EV_LS);
    cube_mm(&x->r, x->ls, (l1_op){kv, kr, 0, 0, 0}, (l1_op){qdo, qr, 0, 0, 1}, s->nk, hd, s->nq, 0);
    hs_npu_set_flag(c, P_CUBE, P_FIX, EV_LS);
    hs_npu_wait_flag(c, P_FIX, P_CUBE, EV_LDP);
    cube_mm(&x->r, x->ldp, (l1_op){kv, kr, 0, hdp, 0}, (l1_op){qdo, qr, 0, hdp, 1}, s->nk, hd, s->nq, 0);
    hs_npu_set_flag(c, P_CUBE, P_FIX, EV_LDP);
    if (s->last) /* the item tiles take part in the scores only */
        hs_npu_set_flag(c, P_MTE1, P_MTE2, EV_IT + is);
    from_aivs(&x->k, P_FIX, XC_S_FREE);
    hs_npu_wait_flag(c, P_CUBE, P_FIX, EV_LS); /* each accumulator is handed back as soon as it is out */
    hs_npu_fixpipe(WS_SLOT(a->s, slot, BWD_NS, x->k.blk, s->g), d->bm, HS_FP32, x->ls, s->nk, s->nq);
    hs_npu_set_flag(c, P_FIX, P_CUBE, EV_LS);
    hs_npu_wait_flag(c, P_CUBE, P_FIX, EV_LDP);
    hs_npu_fixpipe(WS_SLOT(a->dp, slot, BWD_NS, x->k.blk, s->g), d->bm, HS_FP32, x->ldp, s->nk, s->nq);
    hs_npu_set_flag(c, P_FIX, P_CUBE, EV_LDP);
    to_aivs(&x->k, P_FIX, XV_S_READY);
}

/* dV += P^T dO and dK += dS^T Q (key-tile owner), or dQ += dS K (query-tile
 * owner), accumulated in L0C over the item; its last pair adds the tile to
 * dqkv (fixpipe atomic add: the tile's one and only contribution). */
static void bwd_product(bwd_aic *x, const bwd_args *a, const att_step *s)
{
    hs_npu_core *c = x->k.aic;
    const att_dims *d = &a->d;
    const int dkv = a->kind == IT_DKV, ts = (int)(s->g % BWD_PT), hd = (int)d->HD, accum = !s->first;
    const uint16_t *pw = WS_SLOT(a->pd, (int64_t)BN_B * 2 * d->bm, BWD_NP, x->k.blk, s->g);
    from_aivs(&x->k, P_MTE2, XC_P_READY);
    if (dkv) /* P^T in columns [0, nq), dS^T in [bm, bm + nq) */
        l1_load(c, x->pd, EV_PD, pw, 2 * d->bm, s->nk, d->bm + s->nq);
    else
        l1_load(c, x->pd, EV_PD, pw + d->bm, 2 * d->bm, s->nk, s->nq);
    to_aivs(&x->k, P_MTE2, XV_P_FREE);
    hs_npu_wait_flag(c, P_MTE2, P_MTE1, EV_PD);
    if (s->first)
        hs_npu_wait_flag(c, P_FIX, P_CUBE, EV_ACC);
    const int kr = up16(s->nk), qr = up16(s->nq);
    if (dkv) {
        cube_mm(&x->r, x->acc[1], (l1_op){x->pd, kr, 0, 0, 0}, (l1_op){x->pt[ts], qr, 0, up16(hd), 0}, s->nk, s->nq,
                hd, accum);
        cube_mm(&x->r, x->acc[0], (l1_op){x->pd, kr, 0, d->bm, 0}, (l1_op){x->pt[ts], qr, 0, 0, 0}, s->nk, s->nq, hd,
                accum);
    } else
        cube_mm(&x->r, x->acc[0], (l1_op){x->pd, kr, 0, 0, 1}, (l1_op){x->pt[ts], kr, 0, 0, 0}, s->nq, s->nk, hd,
                accum);
    hs_npu_set_flag(c, P_MTE1, P_MTE2, EV_PD);
    hs_npu_set_flag(c, P_MTE1, P_MTE2, EV_PT + ts);
    if (!s->last)
        return;
    hs_npu_set_flag(c, P_CUBE, P_FIX, EV_ACC);
    hs_npu_wait_flag(c, P_CUBE, P_FIX, EV_ACC);
    hs_npu_set_atomic_add(c, 1);
    if (dkv) {
        hs_npu_fixpipe(QKV_AT(d, a->dkv, s, 1, s->k0), d->LD, HS_FP32, x->acc[0], s->nk, hd);
        hs_npu_fixpipe(QKV_AT(d, a->dkv, s, 2, s->k0), d->LD, HS_FP32, x->acc[1], s->nk, hd);
    } else
        hs_npu_fixpipe(QKV_AT(d, a->dq, s, 0, s->q0), d->LD, HS_FP32, x->acc[0], s->nq, hd);
    hs_npu_set_atomic_add(c, 0);
    hs_npu_set_flag(c, P_FIX, P_CUBE, EV_ACC);
}

/* One AIV's backward buffers: inputs double-buffered (S^T, dP^T, stats),
 * P and dS in fp32, their bf16 copies for the cube. */
typedef struct bwd_aiv {
    hs_npu_core *c, *aic;
    int v, blk;
    hs_npu_local s[2], dp[2], st[2], p, ds, out;
} bwd_aiv;

static hs_status bwd_aiv_init(const att_cores *k, int v, bwd_aiv *y)
{
    hs_npu_core *c = k->aiv[v];
    *y = (bwd_aiv){.c = c, .aic = k->aic, .v = v, .blk = k->blk};
    const int64_t tile = (int64_t)BN_B * QH;
    for (int i = 0; i < 2; i++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, tile, &y->s[i]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, tile, &y->dp[i]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, 2 * QH, &y->st[i]));
    }
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, tile, &y->p));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, tile, &y->ds));
    return hs_npu_alloc(c, HS_BUF_UB, HS_BF16, 2 * tile, &y->out);
}

static void bwd_aiv_credits(bwd_aiv *y, int set)
{
    for (int i = 0; i < 2; i++)
        credits(y->c, P_VEC, P_MTE2, EV_SIN + i, 1, set);
    credits(y->c, P_MTE3, P_VEC, EV_PB, 1, set);
    cross_credits(y->c, P_MTE2, y->aic, P_FIX, XC_S_FREE + y->v, BWD_NS, set);
}

/* P^T = exp(scale S^T - lse) and dS^T = P^T (scale dP^T - scale D) on the
 * AIV's columns, written bf16 for the cube (P^T for the dK/dV owner only). */
static void bwd_vec(bwd_aiv *y, const bwd_args *a, const att_step *s)
{
    hs_npu_core *c = y->c;
    const att_dims *d = &a->d;
    const int qa = aiv_width(s, y->v), nk = s->nk, ps = (int)(s->g % 2), dkv = a->kind == IT_DKV;
    const int64_t n = (int64_t)nk * qa, aoff = (int64_t)y->v * QH, slot = (int64_t)BN_B * d->bm;
    const int64_t half = (int64_t)BN_B * QH;
    hs_npu_cross_wait_flag(c, P_MTE2, XV_S_READY);
    hs_npu_wait_flag(c, P_VEC, P_MTE2, EV_SIN + ps);
    if (qa) {
        const float *stats = a->stats + ((s->b * d->NH + s->h) * d->qtiles + s->q0 / d->bm) * 2 * d->bm + aoff;
        hs_npu_copy_in(y->s[ps], qa, WS_SLOT(a->s, slot, BWD_NS, y->blk, s->g) + aoff, d->bm, nk, qa);
        hs_npu_copy_in(y->dp[ps], qa, WS_SLOT(a->dp, slot, BWD_NS, y->blk, s->g) + aoff, d->bm, nk, qa);
        hs_npu_copy_in(y->st[ps], qa, stats, d->bm, 2, qa);
    }
    hs_npu_cross_set_flag(c, P_MTE2, y->aic, XC_S_FREE + y->v);
    hs_npu_set_flag(c, P_MTE2, P_VEC, EV_SIN + ps);
    hs_npu_wait_flag(c, P_MTE2, P_VEC, EV_SIN + ps);
    if (qa) {
        if (needs_mask(d, s, y->v))
            causal_mask(y->s[ps], nk, qa, s->k0 - s->q0 - aoff);
        hs_npu_vunary(HS_V_COPY, y->p, y->st[ps], qa);
        bcast_rows(y->p, nk, qa);
        hs_npu_vaxpy(y->p, y->s[ps], d->scale, n);
        hs_npu_vunary(HS_V_EXP, y->p, y->p, n);
        hs_npu_vunary(HS_V_COPY, y->ds, hs_npu_sub(y->st[ps], qa, qa), qa);
        bcast_rows(y->ds, nk, qa);
        hs_npu_vaxpy(y->ds, y->dp[ps], d->scale, n);
    }
    hs_npu_set_flag(c, P_VEC, P_MTE2, EV_SIN + ps);
    if (qa)
        hs_npu_vbin(HS_V_MUL, y->ds, y->ds, y->p, n);
    hs_npu_wait_flag(c, P_MTE3, P_VEC, EV_PB);
    if (qa) {
        if (dkv)
            hs_npu_vcast(y->out, y->p, n);
        hs_npu_vcast(hs_npu_sub(y->out, half, half), y->ds, n);
    }
    hs_npu_set_flag(c, P_VEC, P_MTE3, EV_PB);
    hs_npu_wait_flag(c, P_VEC, P_MTE3, EV_PB);
    hs_npu_cross_wait_flag(c, P_MTE3, XV_P_FREE);
    uint16_t *pw = WS_SLOT(a->pd, 2 * slot, BWD_NP, y->blk, s->g) + aoff;
    if (qa) {
        if (dkv)
            hs_npu_copy_out(pw, 2 * d->bm, y->out, qa, nk, qa);
        hs_npu_copy_out(pw + d->bm, 2 * d->bm, hs_npu_sub(y->out, half, half), qa, nk, qa);
    }
    hs_npu_cross_set_flag(c, P_MTE3, y->aic, XC_P_READY + y->v);
    hs_npu_set_flag(c, P_MTE3, P_VEC, EV_PB);
}

/* One cube core and its AIVs over the block's pairs g = 0 .. G - 1, in
 * program order: step g issues the products (g), the scores (g + BWD_LS)
 * and the AIVs' P and dS (g + BWD_LV), each where its pair exists, from
 * g = -BWD_LS on. */
static hs_status bwd_block(hs_npu_kblock *blk, void *arg)
{
    const bwd_args *a = arg;
    bwd_aic x;
    bwd_aiv y[2];
    HS_TRY(cores_of(blk, &a->d, &x.k));
    HS_TRY(bwd_aic_init(&a->d, a->kind, &x));
    for (int v = 0; v < x.k.naiv; v++)
        HS_TRY(bwd_aiv_init(&x.k, v, &y[v]));
    bwd_aic_credits(&x, 1);
    for (int v = 0; v < x.k.naiv; v++)
        bwd_aiv_credits(&y[v], 1);
    step_iter it = iter_start(&a->d, a->kind, x.k.blk, hs_npu_kblock_dim(blk));
    att_step w[BWD_PT]; /* pairs g .. g + BWD_LS */
    int64_t got = 0;
    for (int64_t g = -BWD_LS; got == g + BWD_LS || g < got; g++) {
        if (got == g + BWD_LS && iter_next(&it, &w[got % BWD_PT]))
            got++;
        if (g >= 0)
            bwd_product(&x, a, &w[g % BWD_PT]);
        if (g + BWD_LS < got)
            bwd_score(&x, a, &w[(g + BWD_LS) % BWD_PT]);
        for (int v = 0; v < x.k.naiv && g + BWD_LV >= 0 && g + BWD_LV < got; v++)
            bwd_vec(&y[v], a, &w[(g + BWD_LV) % BWD_PT]);
    }
    bwd_aic_credits(&x, 0);
    for (int v = 0; v < x.k.naiv; v++)
        bwd_aiv_credits(&y[v], 0);
    return hs_npu_core_status(x.k.aic);
}

/* ------------------------------------------------------------ host side */

/* The tiling of a B x T x (NH, NKV) x HD problem on dev's NPU. Errors:
 * HS_ERR_INVALID_ARGUMENT (HD > HD_MAX, sizes beyond the tile loops' int
 * range). */
static hs_status att_setup(hs_npu *npu, const char *op, const hs_attention_call *c, att_dims *d)
{
    const int64_t B = c->B, T = c->T, NH = c->NH, NKV = c->NKV, HD = c->HD;
    if (HD > HD_MAX)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: head size %lld; the NPU kernel takes up to %d", op,
                        (long long)HD, HD_MAX);
    if (T > INT32_MAX || (NH + 2 * NKV) * HD > INT32_MAX)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: T=%lld, C=%lld beyond the kernel's 32-bit tile loops", op,
                        (long long)T, (long long)(NH * HD));
    const hs_npu_spec *sp = hs_npu_spec_of(npu);
    const int per = sp->vector_cores ? sp->vector_cores / sp->cube_cores : 1; /* as the launch lays out blocks */
    *d = (att_dims){.B = B, .T = T, .NH = NH, .HD = HD, .C = NH * HD, .naiv = per < 1 ? 1 : per > 2 ? 2 : per};
    d->NKV = NKV;
    d->KV = NKV * HD;
    d->LD = (NH + 2 * NKV) * HD;
    d->rep = NH / NKV;
    d->bm = QH * d->naiv;
    d->qtiles = (T + d->bm - 1) / d->bm;
    d->scale = 1.0f / sqrtf((float)HD);
    d->causal = c->causal;
    return HS_OK;
}

/* Cube blocks for n items. */
static int cube_blocks(hs_npu *npu, int64_t n)
{
    return (int)min64(n, hs_npu_max_blocks(npu, HS_NPU_LAUNCH_CUBE));
}

/* Carves consecutive 512-byte-aligned pieces out of one allocation; with
 * base 0 it only adds up the size. */
typedef struct carve {
    uintptr_t base;
    int64_t bytes;
} carve;

static void *take(carve *c, int64_t bytes)
{
    const uintptr_t p = c->base + (uintptr_t)c->bytes;
    c->bytes += ws_round(bytes);
    return (void *)p;
}

/* Allocates the size *c added up and restarts the carving over it. */
static hs_status carve_alloc(hs_npu *npu, carve *c)
{
    void *base;
    HS_TRY(hs_npu_malloc(npu, (size_t)c->bytes, &base));
    *c = (carve){(uintptr_t)base, 0};
    return HS_OK;
}

/* The forward's workspace over w: the 16-bit q|k|v (and k|v of another
 * block), then per slot (two per cube block) a score tile in fp32 and
 * bf16 and an output tile. */
static void fwd_carve(carve *w, fwd_args *a, int own_kv, int dim)
{
    const att_dims *d = &a->d;
    const int64_t n = d->B * d->T * d->LD, slots = 2 * (int64_t)dim, score = (int64_t)BN_F * d->bm;
    a->qkvh = take(w, 2 * n);
    a->kvh = own_kv ? take(w, 2 * n) : a->qkvh;
    a->s = take(w, 4 * slots * score);
    a->p = take(w, 2 * slots * score);
    a->o = take(w, 4 * slots * d->HD * d->bm);
}

/* The backward's workspace over w: the staged q|dout and k|v pairs, the
 * forward's row statistics, and per cube block its score, dP and P|dS
 * slots. */
static void bwd_carve(carve *w, bwd_args *a, stage_args *ga, stats_args *sa, int64_t blocks)
{
    const att_dims *d = &a->d;
    const int64_t score = (int64_t)BN_B * d->bm;
    const int64_t pairs = d->B * d->NH * d->T * 2 * up16(d->HD), kv_pairs = d->B * d->NKV * d->T * 2 * up16(d->HD);
    a->qdo = ga->qdo = take(w, 2 * pairs);
    a->kv = ga->kv = take(w, 2 * kv_pairs);
    a->stats = sa->stats = take(w, 4 * item_count(d, IT_FWD) * 2 * d->bm);
    a->s = take(w, 4 * BWD_NS * blocks * score);
    a->dp = take(w, 4 * BWD_NS * blocks * score);
    a->pd = take(w, 2 * BWD_NP * blocks * 2 * score);
}

hs_status hs_npu_attention_workspace(hs_npu *npu, const hs_attention_call *c, int64_t *fwd, int64_t *bwd)
{
    fwd_args fa = {0};
    bwd_args ba = {0};
    stage_args ga = {0};
    stats_args sa = {0};
    HS_TRY(att_setup(npu, "attention_fwd", c, &fa.d));
    ba.d = fa.d;
    carve w = {0, 0};
    fwd_carve(&w, &fa, c->kv != c->qkv, cube_blocks(npu, item_count(&fa.d, IT_FWD)));
    *fwd = w.bytes;
    const int n_dkv = cube_blocks(npu, item_count(&ba.d, IT_DKV)), n_dq = cube_blocks(npu, item_count(&ba.d, IT_DQ));
    w = (carve){0, 0};
    bwd_carve(&w, &ba, &ga, &sa, n_dkv > n_dq ? n_dkv : n_dq);
    *bwd = w.bytes;
    return HS_OK;
}

hs_status hs_npu_attention_forward(const hs_device *dev, float *out, float *lse, const hs_attention_call *c)
{
    static const char op[] = "attention_fwd";
    fwd_args a = {.out = out, .lse = lse};
    hs_npu *npu = dev->npu;
    HS_TRY(att_setup(npu, op, c, &a.d));
    const int64_t B = c->B, T = c->T, NH = c->NH, NKV = c->NKV, HD = c->HD, own_kv = c->kv != c->qkv;
    const int dim = cube_blocks(npu, item_count(&a.d, IT_FWD));
    const int64_t n = B * T * a.d.LD, slots = 2 * (int64_t)dim, score = (int64_t)BN_F * a.d.bm;
    carve w = {0, 0}; /* sizes first, then the same carving over the allocation */
    fwd_carve(&w, &a, own_kv, dim);
    HS_TRY(carve_alloc(npu, &w));
    fwd_carve(&w, &a, own_kv, dim);
    uint16_t *qkvh = (uint16_t *)a.qkvh, *kvh = (uint16_t *)a.kvh; /* the carving's, written by the casts */
    const hs_npu_operand ops[] = {{out, 4 * B * T * a.d.C},  {lse, 4 * B * NH * T},        {a.qkvh, 2 * n},
                                  {a.kvh, 2 * n},            {a.s, 4 * slots * score},     {a.p, 2 * slots * score},
                                  {a.o, 4 * slots * HD * a.d.bm}};
    const int64_t dims[] = {B, T, NH, NKV, HD, c->causal};
    hs_npu_key key;
    HS_NPU_KEY_OF(&key, ops, dims);
    key.independent = 1;
    hs_status st = hs_npu_cast(dev, qkvh, HS_BF16, c->qkv, HS_FP32, n);
    if (st == HS_OK && own_kv)
        st = hs_npu_cast(dev, kvh, HS_BF16, c->kv, HS_FP32, n);
    if (st == HS_OK)
        st = hs_npu_launch_cached(npu, dev->stream, op, HS_NPU_LAUNCH_CUBE, dim, fwd_block, &a, &key);
    hs_npu_free_mem(npu, (void *)w.base);
    return st;
}

hs_status hs_npu_attention_backward(const hs_device *dev, float *dq, float *dkv, const float *dout, const float *out,
                                    const float *lse, const hs_attention_call *c)
{
    static const char op[] = "attention_bwd";
    bwd_args a = {.dq = dq, .dkv = dkv};
    hs_npu *npu = dev->npu;
    HS_TRY(att_setup(npu, op, c, &a.d));
    const int64_t B = c->B, T = c->T, NH = c->NH, NKV = c->NKV, HD = c->HD;
    const int n_dkv = cube_blocks(npu, item_count(&a.d, IT_DKV)), n_dq = cube_blocks(npu, item_count(&a.d, IT_DQ));
    const int64_t blocks = n_dkv > n_dq ? n_dkv : n_dq, score = (int64_t)BN_B * a.d.bm;
    stats_args sa = {.d = a.d, .dout = dout, .out = out, .lse = lse};
    stage_args ga = {.d = a.d, .qkv = c->qkv, .kvsrc = c->kv, .dout = dout};
    const int64_t pairs = B * NH * T * 2 * up16(HD), kv_pairs = B * NKV * T * 2 * up16(HD);
    carve w = {0, 0};
    bwd_carve(&w, &a, &ga, &sa, blocks);
    HS_TRY(carve_alloc(npu, &w));
    bwd_carve(&w, &a, &ga, &sa, blocks);
    const int vmax = hs_npu_max_blocks(npu, HS_NPU_LAUNCH_VECTOR);
    const int64_t jobs = B * (NH + NKV) * ((T + STAGE_ROWS - 1) / STAGE_ROWS);
    /* one key for the four launches: their names tell them apart */
    const int64_t act = 4 * B * T * a.d.C, qkv_bytes = 4 * B * T * a.d.LD;
    const hs_npu_operand ops[] = {{dq, qkv_bytes},
                                  {dkv, qkv_bytes},
                                  {dout, act},
                                  {c->qkv, qkv_bytes},
                                  {c->kv, qkv_bytes},
                                  {out, act},
                                  {lse, 4 * B * NH * T},
                                  {a.qdo, 2 * pairs},
                                  {a.kv, 2 * kv_pairs},
                                  {a.stats, 4 * item_count(&a.d, IT_FWD) * 2 * a.d.bm},
                                  {a.s, 4 * BWD_NS * blocks * score},
                                  {a.dp, 4 * BWD_NS * blocks * score},
                                  {a.pd, 2 * BWD_NP * blocks * 2 * score}};
    const int64_t dims[] = {B, T, NH, NKV, HD, c->causal};
    hs_npu_key key;
    HS_NPU_KEY_OF(&key, ops, dims);
    key.independent = 1;
    hs_npu_stream *s = dev->stream;
    hs_status st = hs_npu_launch_cached(npu, s, "attention_bwd_stage", HS_NPU_LAUNCH_VECTOR, (int)min64(jobs, vmax),
                                        stage_block, &ga, &key);
    if (st == HS_OK)
        st = hs_npu_launch_cached(npu, s, "attention_bwd_stats", HS_NPU_LAUNCH_VECTOR,
                                  (int)min64(item_count(&a.d, IT_FWD), vmax), stats_block, &sa, &key);
    a.kind = IT_DKV;
    if (st == HS_OK)
        st = hs_npu_launch_cached(npu, s, "attention_bwd_dkv", HS_NPU_LAUNCH_CUBE, n_dkv, bwd_block, &a, &key);
    a.kind = IT_DQ;
    if (st == HS_OK)
        st = hs_npu_launch_cached(npu, s, "attention_bwd_dq", HS_NPU_LAUNCH_CUBE, n_dq, bwd_block, &a, &key);
    hs_npu_free_mem(npu, (void *)w.base);
    return st;
}
