"""Numba kernels behind :mod:`models.treeshap` (the maths is documented there).

Every tree is flattened into per-*internal-node* records: a node's record also holds the data of the two
edges to its children, so the per-row passes touch one contiguous record per internal node and never
visit leaves.  Local node ids: internal nodes ``0 .. n_int - 1`` in a parents-first order (root 0; see
FLAG_KIND below), then leaves.

Per row and tree, with the tree's ``KP`` Gauss-Legendre nodes ``t_k`` on [0, 1] (``KP`` a multiple of 8,
processed as 8-lane SIMD blocks):

* top-down over internal nodes n (index order), for both children c (``o`` = 1 iff the row goes to c,
  ``O'`` = merged one-fraction of c's feature above, 1 if the feature is new on the path)::

      M_c(t)  = O' * (P_c + t (o - P_c)) * iA'(t) + (1 - O') * pe_c       ratio of new / previous factor
      G_c     = G_n * M_c                                                 path product
      D_c     = leaf value of c (0.0 if c is internal)

  (``P_c`` merged cover product, ``P'``/``iA' = 1 / (P' + t (1 - P'))`` those of the previous edge on the
  same feature, ``P' = 1, iA' = 1`` when there is none; ``pe_c`` the edge's own cover ratio);
* bottom-up over internal nodes (reverse index order), recomputing ``M`` and::

      MR_c(t) = O' * iA'(t) * ((o - P_c) - (1 - P') * M_c(t))            = M_c * [(O-P)/F - (O'-P')/F']
      D_n     = M_l D_l + M_r D_r          (D_leaf = leaf value)
      acc[feature_n] += G_n * (MR_l D_l + MR_r D_r)

and finally ``phi_f = sum_k w_k acc[f, k]``.  Nothing branches on the row's data: the split decisions
use per-row precomputed feature codes, and the 0/1 quantities enter the arithmetic as 0.0/1.0 factors.

Arrays:

``ei`` int32, flat (n_internal_total * EI_WIDTH), one EI_WIDTH record per internal node:
    split feature, flags, categorical bitset offset in ``catw``, its word count, left child, right child,
    then per side (left, right): local id of the previous same-feature edge's child (the tree's node
    count ``nn`` -> none; scratch slot ``nn`` always holds one-fraction 1) and the offset in ``vec`` of
    that node's ``iA`` block (0 -> the all-ones block).
``ef`` float64, flat (n_internal_total * EF_WIDTH), one EF_WIDTH record per internal node:
    threshold, then per side: P, 1 - P', pe, leaf value (0.0 when the child is internal).
``vec`` float64
    ``vec[0:KP_MAX] = 1`` then ``iA`` blocks of nodes that are a "previous edge" for some later edge.
``trees`` int64 (n_trees, TR_WIDTH)
    first record, number of internal nodes (0: single-leaf tree, value in ``ef[first, EF_V_L]``), number
    of nodes, point-set class c (KP = 8 (c + 1)).
``quad_t``, ``quad_w`` float64 (n_classes, KP_MAX)
    Gauss-Legendre nodes / weights on [0, 1] of each point-set class (zero weight past KP).
``catw`` int64
    categorical bitsets, 32 bits per word as LightGBM stores them (never empty).

Flags: bit 0 categorical split, bit 1 default_left, bits 2-3 missing type (0 None, 1 Zero, 2 NaN), bit 4
(FLAG_PREV) the node's feature already splits an ancestor, so both child edges repeat a feature of the
path.  Most nodes do not, and for them ``O' = 1, P' = 1, iA' = 1``: ``M = P + t (o - P)``, ``MR = o - P``,
a third of the general arithmetic.  The construction orders each tree's nodes to keep runs of the same
kind (categorical or not, FLAG_PREV or not), so the kernels' per-kind branches are mostly predicted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

# LightGBM's kZeroThreshold is the float literal 1e-35f widened to double.
KZERO = 1.0000000180025095e-35

LANES = 8

EI_FEAT = 0
EI_FLAGS = 1
EI_CATOFF = 2
EI_CATNW = 3
EI_LEFT = 4
EI_RIGHT = 5
EI_PREV_L = 6
EI_PREV_R = 7
EI_IA_L = 8
EI_IA_R = 9
EI_WIDTH = 10

EF_THR = 0
EF_P_L = 1
EF_B_L = 2
EF_PE_L = 3
EF_V_L = 4
EF_P_R = 5
EF_B_R = 6
EF_PE_R = 7
EF_V_R = 8
EF_WIDTH = 9

TR_OFF = 0
TR_NINT = 1
TR_NN = 2
TR_CLS = 3
TR_WIDTH = 4

FLAG_CAT = 1
FLAG_DEFAULT_LEFT = 2
FLAG_PREV = 16  # the node's feature already splits an ancestor: both child edges repeat it
FLAG_KIND = FLAG_CAT | FLAG_PREV
MISSING_NONE = 0
MISSING_ZERO = 1
MISSING_NAN = 2

# Per-row feature codes: bit 0 "zero for missing_type Zero" (|v| <= kZeroThreshold or NaN), bit 1 NaN.
# A node's missing type (1 Zero, 2 NaN) is the mask of the code bits that send the row the default way.
CODE_ZERO = 1
CODE_NAN = 2

# Helpers are inlined at numba level (separately jitted callees would not be inlined by LLVM and pay
# reference counting on every array argument); the parallel kernels reach them only through the plain
# jitted range functions, because numba's parfor pass cannot analyse inlined intrinsic code.
# 'contract' lets LLVM fuse a*b+c into FMAs; no other fast-math flag is used (NaN tests must keep their
# IEEE meaning).
_INNER: dict[str, Any] = {"nogil": True, "error_model": "numpy", "fastmath": {"contract"}}
_OPTS: dict[str, Any] = {"cache": True, **_INNER}


def _intrinsic(fn: Callable[..., Any]) -> Any:
    """numba's ``intrinsic``, typed ``Any``: jitted code calls it without the typing context argument."""
    return intrinsic(fn)


# ---------------------------------------------------------------- unchecked element access
# Plain numba indexing handles negative indices (wraparound) and multi-dimensional strides on every
# access; the hot loops index flat arrays with offsets that are valid by construction, so they use
# these two intrinsics, which compile to a single load / store.


def _elem_ptr(context, builder, arrty, arr, ity, i):
    data = context.make_array(arrty)(context, builder, arr).data
    idx = context.cast(builder, i, ity, types.intp)
    lty = context.get_value_type(arrty.dtype)
    return builder.gep(data, [idx], inbounds=True, source_etype=lty), lty


@_intrinsic
def _get(typingctx, arr, i):
    """arr[i] for a C-contiguous array and 0 <= i < arr.size (flat index, no checks)."""
    sig = arr.dtype(arr, i)

    def codegen(context, builder, signature, args):
        ptr, lty = _elem_ptr(context, builder, signature.args[0], args[0], signature.args[1], args[1])
        return builder.load(ptr, typ=lty)

    return sig, codegen


@_intrinsic
def _put(typingctx, arr, i, v):
    """arr[i] = v for a C-contiguous array and 0 <= i < arr.size (flat index, no checks)."""
    sig = types.void(arr, i, v)

    def codegen(context, builder, signature, args):
        arrty, ity, vty = signature.args
        ptr, _ = _elem_ptr(context, builder, arrty, args[0], ity, args[1])
        builder.store(context.cast(builder, args[2], vty, arrty.dtype), ptr)
        return context.get_dummy_value()

    return sig, codegen


# ---------------------------------------------------------------- split decisions


@njit(inline="always")
def _prepare_row(x, xz, code, cat):
    """Per-feature codes of one row, with LightGBM's reading of dense rows.

    xz: value with |v| <= kZeroThreshold -> 0.0 (LightGBM drops such entries) and NaN -> 0.0 (what a
    numerical split without missing_type NaN compares); code: CODE_* bits; cat: the category
    static_cast<int>(v) would give, or -1 for NaN, v <= -1 and values outside int32 (all go right).
    """
    for j in range(x.shape[0]):
        v = x[j]
        isnan = v != v
        z = 0.0 if (isnan or (v >= -KZERO and v <= KZERO)) else v
        xz[j] = z
        code[j] = (CODE_NAN if isnan else 0) | (CODE_ZERO if (isnan or z == 0.0) else 0)
        cat[j] = np.int64(v) if (v > -1.0 and v < 2147483648.0) else -1


@njit(inline="always")
def _goes_left(ei, ef, gi, gf, flags, xz, code, cat, catw):
    """LightGBM's Tree::Decision for the node whose records start at ei[gi], ef[gf] (1 -> left child),
    from the row codes of _prepare_row; each kind of split is computed without data-dependent branches."""
    f = _get(ei, gi + EI_FEAT)
    if flags & FLAG_CAT:
        c = _get(cat, f)
        w = c >> 5
        ok = np.int64(c >= 0) & np.int64(w < _get(ei, gi + EI_CATNW))
        word = _get(catw, _get(ei, gi + EI_CATOFF) + w * ok)
        return ok & ((word >> (c & 31)) & 1)
    special = np.int64((_get(code, f) & ((flags >> 2) & 3)) != 0)
    return (special & (flags >> 1) & 1) | ((1 - special) & np.int64(_get(xz, f) <= _get(ef, gf + EF_THR)))


# ---------------------------------------------------------------- 8-lane SIMD blocks
# Numba gives LLVM no aliasing information about arrays and disables the SLP vectoriser, so short
# fixed-width loops over the quadrature points would stay scalar.  These intrinsics emit the block
# operations directly as LLVM <8 x double> vector code (one AVX-512 op, or two AVX2 / four SSE ops).
# Offsets are in float64 elements from the start of each (C-contiguous) array.

_F64 = ir.DoubleType()
_V8 = ir.VectorType(_F64, LANES)
_I32 = ir.IntType(32)
_CONTRACT = ("contract",)


def _vptr(context, builder, arrty, arr, ofsty, ofs):
    data = context.make_array(arrty)(context, builder, arr).data
    ofs = context.cast(builder, ofs, ofsty, types.intp)
    return builder.bitcast(builder.gep(data, [ofs], inbounds=True, source_etype=_F64), _V8.as_pointer())


def _vload(builder, ptr):
    return builder.load(ptr, typ=_V8, align=8)


def _vstore(builder, value, ptr):
    builder.store(value, ptr, align=8)


def _splat(context, builder, xty, x):
    x = context.cast(builder, x, xty, types.float64)
    v = builder.insert_element(ir.Constant(_V8, None), x, ir.Constant(_I32, 0))
    return builder.shuffle_vector(
        v, ir.Constant(_V8, None), ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES)
    )


def _mul(builder, x, y):
    return builder.fmul(x, y, flags=_CONTRACT)


def _add(builder, x, y):
    return builder.fadd(x, y, flags=_CONTRACT)


def _sub(builder, x, y):
    return builder.fsub(x, y, flags=_CONTRACT)


def _ratio(builder, t, ia, op, P, a, qpe):
    """M = op ((P + t a) iA) + qpe."""
    return _add(builder, _mul(builder, op, _mul(builder, _add(builder, P, _mul(builder, t, a)), ia)), qpe)


@_intrinsic
def _v_down(typingctx, G, D, qt, vec, n_o, c_o, q_o, ia_o, op, P, a, qpe, v):
    """Top-down block for the edge n -> c:  G[c] = G[n] * (op ((P + t a) iA) + qpe);  D[c] = v (the
    leaf value, or 0.0 for an internal child, whose D the bottom-up pass overwrites)."""
    sig = types.void(G, D, qt, vec, n_o, c_o, q_o, ia_o, op, P, a, qpe, v)

    def codegen(context, builder, signature, args):
        ty = signature.args
        g_n = _vload(builder, _vptr(context, builder, ty[0], args[0], ty[4], args[4]))
        t = _vload(builder, _vptr(context, builder, ty[2], args[2], ty[6], args[6]))
        ia = _vload(builder, _vptr(context, builder, ty[3], args[3], ty[7], args[7]))
        op, P, a, qpe, v = (_splat(context, builder, ty[i], args[i]) for i in range(8, 13))
        m = _ratio(builder, t, ia, op, P, a, qpe)
        _vstore(builder, _mul(builder, g_n, m), _vptr(context, builder, ty[0], args[0], ty[5], args[5]))
        _vstore(builder, v, _vptr(context, builder, ty[1], args[1], ty[5], args[5]))
        return context.get_dummy_value()

    return sig, codegen


@_intrinsic
def _v_down_new(typingctx, G, D, qt, n_o, c_o, q_o, P, a, v):
    """_v_down for an edge whose feature is new on the path:  G[c] = G[n] (P + t a);  D[c] = v."""
    sig = types.void(G, D, qt, n_o, c_o, q_o, P, a, v)

    def codegen(context, builder, signature, args):
        ty = signature.args
        g_n = _vload(builder, _vptr(context, builder, ty[0], args[0], ty[3], args[3]))
        t = _vload(builder, _vptr(context, builder, ty[2], args[2], ty[5], args[5]))
        P, a, v = (_splat(context, builder, ty[i], args[i]) for i in range(6, 9))
        m = _add(builder, P, _mul(builder, t, a))
        _vstore(builder, _mul(builder, g_n, m), _vptr(context, builder, ty[0], args[0], ty[4], args[4]))
        _vstore(builder, v, _vptr(context, builder, ty[1], args[1], ty[4], args[4]))
        return context.get_dummy_value()

    return sig, codegen


def _make_v_up(prev: bool):
    """Bottom-up block for internal node n with children l, r:
    D[n] = M_l D[l] + M_r D[r];  acc[a_o] += G[n] (MR_l D[l] + MR_r D[r]),
    specialised on whether the child edges repeat a feature of the path (else M = P + t a, MR = a)."""

    @_intrinsic
    def v_up(
        typingctx, G, D, acc, qt, vec, n_o, q_o, a_o, l_o, r_o, ia_l, ia_r,
        op_l, P_l, a_l, b_l, qpe_l, op_r, P_r, a_r, b_r, qpe_r,
    ):  # fmt: skip
        sig = types.void(
            G, D, acc, qt, vec, n_o, q_o, a_o, l_o, r_o, ia_l, ia_r,
            op_l, P_l, a_l, b_l, qpe_l, op_r, P_r, a_r, b_r, qpe_r,
        )  # fmt: skip

        def codegen(context, builder, signature, args):
            ty = signature.args

            def vp(i_arr, i_ofs):
                return _vptr(context, builder, ty[i_arr], args[i_arr], ty[i_ofs], args[i_ofs])

            def sp(i):
                return _splat(context, builder, ty[i], args[i])

            t = _vload(builder, vp(3, 6))
            p_acc = vp(2, 7)
            out = []
            for i_ofs, i_ia, base in ((8, 10, 12), (9, 11, 17)):
                P, a = sp(base + 1), sp(base + 2)
                if prev:
                    ia = _vload(builder, vp(4, i_ia))
                    op, b, qpe = sp(base), sp(base + 3), sp(base + 4)
                    m = _ratio(builder, t, ia, op, P, a, qpe)
                    mr = _mul(builder, _mul(builder, op, ia), _sub(builder, a, _mul(builder, b, m)))
                else:
                    m = _add(builder, P, _mul(builder, t, a))
                    mr = a
                out.append((m, mr, _vload(builder, vp(1, i_ofs))))
            (m_l, mr_l, d_l), (m_r, mr_r, d_r) = out
            d_n = _add(builder, _mul(builder, m_l, d_l), _mul(builder, m_r, d_r))
            s = _add(builder, _mul(builder, mr_l, d_l), _mul(builder, mr_r, d_r))
            g_n = _vload(builder, vp(0, 5))
            _vstore(builder, d_n, vp(1, 5))
            _vstore(builder, _add(builder, _vload(builder, p_acc), _mul(builder, g_n, s)), p_acc)
            return context.get_dummy_value()

        return sig, codegen

    return v_up


_v_up_new = _make_v_up(prev=False)
_v_up = _make_v_up(prev=True)


@_intrinsic
def _v_fill(typingctx, arr, o, v):
    """arr[o : o + 8] = v."""
    sig = types.void(arr, o, v)

    def codegen(context, builder, signature, args):
        ty = signature.args
        value = _splat(context, builder, ty[2], args[2])
        _vstore(builder, value, _vptr(context, builder, ty[0], args[0], ty[1], args[1]))
        return context.get_dummy_value()

    return sig, codegen


# ---------------------------------------------------------------- per tree / per row


@njit(inline="always")
def _down_block(
    k0, nw, lw, rw, q0, flags, gi, gf, ei, ef, vec, quad_t, G, D, ol, orr, op_l, op_r, P_l, P_r, v_l, v_r
):
    """Top-down blocks k0 .. k0 + 7 of both children of a node."""
    a_l = ol - P_l
    a_r = orr - P_r
    if flags & FLAG_PREV:
        qpe_l = (1.0 - op_l) * _get(ef, gf + EF_PE_L)
        qpe_r = (1.0 - op_r) * _get(ef, gf + EF_PE_R)
        ia_l = _get(ei, gi + EI_IA_L) + k0
        ia_r = _get(ei, gi + EI_IA_R) + k0
        _v_down(G, D, quad_t, vec, nw + k0, lw + k0, q0 + k0, ia_l, op_l, P_l, a_l, qpe_l, v_l)
        _v_down(G, D, quad_t, vec, nw + k0, rw + k0, q0 + k0, ia_r, op_r, P_r, a_r, qpe_r, v_r)
    else:
        _v_down_new(G, D, quad_t, nw + k0, lw + k0, q0 + k0, P_l, a_l, v_l)
        _v_down_new(G, D, quad_t, nw + k0, rw + k0, q0 + k0, P_r, a_r, v_r)


@njit(inline="always")
def _up_block(k0, nw, lw, rw, q0, a0, flags, gi, gf, ei, ef, vec, quad_t, acc, G, D, ob, ol, orr):
    """Bottom-up blocks k0 .. k0 + 7 of a node."""
    P_l = _get(ef, gf + EF_P_L)
    P_r = _get(ef, gf + EF_P_R)
    a_l = ol - P_l
    a_r = orr - P_r
    if flags & FLAG_PREV:
        op_l = _get(ob, _get(ei, gi + EI_PREV_L))
        op_r = _get(ob, _get(ei, gi + EI_PREV_R))
        b_l = _get(ef, gf + EF_B_L)
        b_r = _get(ef, gf + EF_B_R)
        qpe_l = (1.0 - op_l) * _get(ef, gf + EF_PE_L)
        qpe_r = (1.0 - op_r) * _get(ef, gf + EF_PE_R)
        ia_l = _get(ei, gi + EI_IA_L) + k0
        ia_r = _get(ei, gi + EI_IA_R) + k0
        _v_up(
            G, D, acc, quad_t, vec, nw + k0, q0 + k0, a0 + k0, lw + k0, rw + k0, ia_l, ia_r,
            op_l, P_l, a_l, b_l, qpe_l, op_r, P_r, a_r, b_r, qpe_r,
        )  # fmt: skip
    else:
        _v_up_new(
            G, D, acc, quad_t, vec, nw + k0, q0 + k0, a0 + k0, lw + k0, rw + k0, 0, 0,
            1.0, P_l, a_l, 0.0, 0.0, 1.0, P_r, a_r, 0.0, 0.0,
        )  # fmt: skip


@njit(inline="always")
def _tree(t, ei, ef, vec, trees, quad_t, catw, xz, code, cat, acc, W, G, D, ob, onp, dec):
    """Accumulate tree t's per-point shares into acc; return the tree's output for the row."""
    off = trees[t, TR_OFF]
    n_int = trees[t, TR_NINT]
    if n_int == 0:
        return _get(ef, off * EF_WIDTH + EF_V_L)
    nn = trees[t, TR_NN]
    cls = trees[t, TR_CLS]
    KP = LANES * (cls + 1)
    q0 = cls * W
    abase = cls * (acc.shape[0] // quad_t.shape[0])
    out = 0.0
    _put(ob, nn, 1.0)  # "no previous edge on this feature": merged one-fraction 1
    _put(onp, 0, 1.0)
    for k0 in range(0, KP, LANES):
        _v_fill(G, k0, 1.0)
    for n in range(n_int):
        gi = (off + n) * EI_WIDTH
        gf = (off + n) * EF_WIDTH
        flags = np.int64(_get(ei, gi + EI_FLAGS))
        ol = np.float64(_goes_left(ei, ef, gi, gf, flags, xz, code, cat, catw))
        orr = 1.0 - ol
        _put(dec, n, ol)
        left = _get(ei, gi + EI_LEFT)
        right = _get(ei, gi + EI_RIGHT)
        on = _get(onp, n)
        _put(onp, left, on * ol)
        _put(onp, right, on * orr)
        op_l = _get(ob, _get(ei, gi + EI_PREV_L))
        op_r = _get(ob, _get(ei, gi + EI_PREV_R))
        _put(ob, left, op_l * ol)
        _put(ob, right, op_r * orr)
        P_l = _get(ef, gf + EF_P_L)
        P_r = _get(ef, gf + EF_P_R)
        v_l = _get(ef, gf + EF_V_L)
        v_r = _get(ef, gf + EF_V_R)
        out += on * (ol * v_l + orr * v_r)
        nw = n * W
        lw = left * W
        rw = right * W
        _down_block(
            0, nw, lw, rw, q0, flags, gi, gf, ei, ef, vec, quad_t, G, D,
            ol, orr, op_l, op_r, P_l, P_r, v_l, v_r,
        )  # fmt: skip
        for k0 in range(LANES, KP, LANES):  # deep trees only: more quadrature points
            _down_block(
                k0, nw, lw, rw, q0, flags, gi, gf, ei, ef, vec, quad_t, G, D,
                ol, orr, op_l, op_r, P_l, P_r, v_l, v_r,
            )  # fmt: skip
    for n in range(n_int - 1, -1, -1):
        gi = (off + n) * EI_WIDTH
        gf = (off + n) * EF_WIDTH
        flags = np.int64(_get(ei, gi + EI_FLAGS))
        ol = _get(dec, n)
        orr = 1.0 - ol
        nw = n * W
        lw = _get(ei, gi + EI_LEFT) * W
        rw = _get(ei, gi + EI_RIGHT) * W
        a0 = abase + _get(ei, gi + EI_FEAT) * W
        _up_block(0, nw, lw, rw, q0, a0, flags, gi, gf, ei, ef, vec, quad_t, acc, G, D, ob, ol, orr)
        for k0 in range(LANES, KP, LANES):
            _up_block(k0, nw, lw, rw, q0, a0, flags, gi, gf, ei, ef, vec, quad_t, acc, G, D, ob, ol, orr)
    return out


@njit(inline="always")
def _row(x, ei, ef, vec, trees, quad_t, quad_w, catw, n_features, expected, phi, scr):
    """Raw margin of row x; its contributions (base value last) into phi."""
    acc, G, D, ob, onp, dec, xz, code, cat = scr
    _prepare_row(x, xz, code, cat)
    W = quad_t.shape[1]
    acc[:] = 0.0
    raw = 0.0
    for t in range(trees.shape[0]):
        raw += _tree(t, ei, ef, vec, trees, quad_t, catw, xz, code, cat, acc, W, G, D, ob, onp, dec)
    n_cls = quad_t.shape[0]
    for f in range(n_features):
        s = 0.0
        for c in range(n_cls):
            b = (c * n_features + f) * W
            for k in range(W):
                s += quad_w[c, k] * acc[b + k]
        phi[f] = s
    phi[n_features] = expected
    return raw


@njit(inline="always")
def _scratch(n_classes, n_features, max_nn, kp_max):
    acc = np.empty(n_classes * n_features * kp_max)
    G = np.empty((max_nn + 1) * kp_max)
    D = np.empty((max_nn + 1) * kp_max)
    ob = np.empty(max_nn + 1)
    onp = np.empty(max_nn + 1)
    dec = np.empty(max_nn + 1)
    xz = np.empty(n_features)
    code = np.empty(n_features, np.int64)
    cat = np.empty(n_features, np.int64)
    return acc, G, D, ob, onp, dec, xz, code, cat


# ---------------------------------------------------------------- entry points


@njit(**_OPTS)
def _shap_rows(X, lo, hi, ei, ef, vec, trees, quad_t, quad_w, catw, n_features, expected, max_nn, out, raw):
    """Rows lo .. hi - 1 of X, on the calling thread."""
    scr = _scratch(quad_t.shape[0], n_features, max_nn, quad_t.shape[1])
    for i in range(lo, hi):
        raw[i] = _row(X[i], ei, ef, vec, trees, quad_t, quad_w, catw, n_features, expected, out[i], scr)


@njit(**_OPTS)
def explain_row_kernel(x, ei, ef, vec, trees, quad_t, quad_w, catw, n_features, expected, max_nn):
    """One row: returns (raw margin, contributions with the base value last).  It shares the compiled
    _shap_rows with the batch kernel (one heavy compilation instead of two)."""
    out = np.empty((1, n_features + 1))
    raw = np.empty(1)
    X = x.reshape((1, x.shape[0]))
    lo, hi = np.int64(0), np.int64(1)  # not literals: same compiled signature as the batch kernel's
    _shap_rows(
        X, lo, hi, ei, ef, vec, trees, quad_t, quad_w, catw, n_features, expected, max_nn, out, raw
    )  # fmt: skip
    return raw[0], out[0]


@njit(parallel=True, **_OPTS)
def shap_batch_kernel(
    X, ei, ef, vec, trees, quad_t, quad_w, catw, n_features, expected, max_nn, n_chunks, out, raw
):
    """Rows in parallel chunks; fills out (n, n_features + 1) and raw (n,)."""
    n = X.shape[0]
    for c in prange(n_chunks):
        _shap_rows(
            X, c * n // n_chunks, (c + 1) * n // n_chunks, ei, ef, vec, trees, quad_t, quad_w, catw,
            n_features, expected, max_nn, out, raw,
        )  # fmt: skip


@njit(inline="always")
def _row_raw(ei, ef, trees, catw, xz, code, cat):
    s = 0.0
    for t in range(trees.shape[0]):
        off = trees[t, TR_OFF]
        n_int = trees[t, TR_NINT]
        if n_int == 0:
            s += _get(ef, off * EF_WIDTH + EF_V_L)
            continue
        n = 0
        while True:
            gi = (off + n) * EI_WIDTH
            gf = (off + n) * EF_WIDTH
            if _goes_left(ei, ef, gi, gf, np.int64(_get(ei, gi + EI_FLAGS)), xz, code, cat, catw):
                n = _get(ei, gi + EI_LEFT)
                if n >= n_int:
                    s += _get(ef, gf + EF_V_L)
                    break
            else:
                n = _get(ei, gi + EI_RIGHT)
                if n >= n_int:
                    s += _get(ef, gf + EF_V_R)
                    break
    return s


@njit(**_OPTS)
def _raw_rows(X, lo, hi, ei, ef, trees, catw, out):
    nf = X.shape[1]
    xz = np.empty(nf)
    code = np.empty(nf, np.int64)
    cat = np.empty(nf, np.int64)
    for i in range(lo, hi):
        _prepare_row(X[i], xz, code, cat)
        out[i] = _row_raw(ei, ef, trees, catw, xz, code, cat)


@njit(parallel=True, **_OPTS)
def raw_batch_kernel(X, ei, ef, trees, catw, n_chunks, out):
    n = X.shape[0]
    for c in prange(n_chunks):
        _raw_rows(X, c * n // n_chunks, (c + 1) * n // n_chunks, ei, ef, trees, catw, out)
