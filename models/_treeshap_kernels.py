"""Numba kernels behind :mod:`models.treeshap` (the maths is documented there).

Every tree is flattened into per-*internal-node* records: a node's record also holds the data of the two
edges to its children, so the passes touch one contiguous record per internal node and never visit
leaves.  Local node ids: internal nodes ``0 .. n_int - 1`` in a parents-first order (root 0; see
FLAG_KIND below).  Leaves get no id: their value is in the parent's record, and what would be their
scratch goes to a dump slot.

Lanes
-----
The per-point work runs on 8-lane vectors (one AVX-512 register, two AVX2 ones), in one of two modes:

* ``MODE_BATCH``: the lanes are 8 rows.  The split decisions are vector compares over the 8 rows (a
  gather for categorical bitsets), every record is read once for 8 rows, and a tree with ``K``
  Gauss-Legendre points ``t_k`` takes ``J = K`` iterations per node with ``t = (t_k, ..., t_k)``.
  ``K = ceil(D / 2)`` is the fewest points that are exact for the tree's depth ``D`` (most distinct
  features on a root-leaf path), so no lane is wasted and shallow trees cost less.
* ``MODE_ROW``: the lanes are the quadrature points of one row, in ``J = ceil(K / 8)`` iterations of
  ``t = (t_0, ..., t_7)``, ``(t_8, ...)``, ..., padded with zero weights: one iteration per node whenever
  ``D <= 16``.  The row's decisions, one-fractions and path indicators are scalars, broadcast where the
  vectors need them.  This is the single-row (request) path, and a batch's for a row alone in its block.

One compiled kernel serves both: the mode selects the tables (point vectors, J, the ``iA`` vectors), the
bookkeeping (vectors or scalars) and how the lanes are read out at the end.

Per tree and for each iteration, with the quadrature weight folded into the root (``G_root = w``):

* top-down over internal nodes n (index order), for both children c (``o`` = 1 iff the lane's row goes
  to c, ``O'`` = merged one-fraction of c's feature above, 1 if the feature is new on the path)::

      M_c(t)  = O' * (P_c + t (o - P_c)) * iA'(t) + (1 - O') * pe_c       ratio of new / previous factor
      G_c     = G_n * M_c                                                 path product

  (``P_c`` merged cover product, ``P'``/``iA' = 1 / (P' + t (1 - P'))`` those of the previous edge on the
  same feature, ``P' = 1, iA' = 1`` when there is none; ``pe_c`` the edge's own cover ratio);
* bottom-up over internal nodes (reverse index order), recomputing ``M`` and::

      MR_c(t) = O' * iA'(t) * ((o - P_c) - (1 - P') * M_c(t))            = M_c * [(O-P)/F - (O'-P')/F']
      D_n     = M_l D_l + M_r D_r          (D_c = leaf value when c is a leaf)
      acc[feature_n] += sum over iterations of G_n * (MR_l D_l + MR_r D_r)

and finally ``phi_f = acc[f]`` per lane (batch) or summed over the lanes (row).  Nothing branches on the
row's data: the 0/1 quantities enter the arithmetic as 0.0/1.0 factors.  The raw margin is accumulated
on the way down: ``on_c = on_n * o_c`` marks the nodes on the row's path, ``raw += on_n (o_l v_l + o_r
v_r)``.

Scratch: G and D hold one plane per iteration (``js`` elements: a vector per internal node, then the
DUMP slot); a leaf child's G goes to DUMP and is never read, and D's DUMP vectors stay 0 so that a
child's D reads as ``D[slot] + v`` for leaves (value v) and internal children (v = 0) alike.

Arrays:

``ei`` int32, flat (n_internal_total * EI_WIDTH), one EI_WIDTH record per internal node:
    split feature, flags, categorical bitset offset in ``catw``, its word count, then per side (left,
    right): the child's scratch slot (its local id, or ``DUMP`` for a leaf), and for FLAG_PREV nodes the
    slot of the previous same-feature edge's child and that edge's ``iA`` slot in the tree's ``ia``
    blocks.  ``DUMP`` is the largest internal-node count of the model.
``ef`` float64, flat (n_internal_total * EF_WIDTH), one EF_WIDTH record per internal node:
    threshold, then per side: P, 1 - P', pe, leaf value (0.0 when the child is internal).
``trees`` int64 (n_trees, TR_WIDTH)
    first record, number of internal nodes (0: single-leaf tree, value in ``ef[first, EF_V_L]``), then
    per mode (TR_MODE + TR_MODE_WIDTH * mode): iterations per node J, offsets in ``tw`` of the J point
    vectors and of the J weight vectors, offset in ``ia`` of the tree's iA blocks (J vectors per slot).
``tw`` float64
    point and weight vectors (8 lanes each) of every (point count, mode) the model uses.
``ia`` float64
    per tree and mode, ``1 / (P' + t (1 - P'))`` for each previous-edge slot and iteration.
``catw`` int64
    categorical bitsets, 32 bits per word as LightGBM stores them (never empty).

Flags: bit 0 categorical split, bit 1 default_left, bits 2-3 missing type (0 None, 1 Zero, 2 NaN), bit 4
(FLAG_PREV) the node's feature already splits an ancestor, so both child edges repeat a feature of the
path, bits 5, 6 left / right child is a leaf (for the raw-margin walk).  Most nodes are not FLAG_PREV,
and for them ``O' = 1, P' = 1, iA' = 1``: ``M = P + t (o - P)``, ``MR = o - P``, a third of the general
arithmetic.  The construction orders each tree's nodes to keep runs of the same kind (categorical or
not, FLAG_PREV or not), so the kernels' per-kind branches are mostly predicted.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

# LightGBM's kZeroThreshold is the float literal 1e-35f widened to double.
KZERO = 1.0000000180025095e-35

LANES = 8

EI_FEAT = 0
EI_FLAGS = 1
EI_CATOFF = 2
EI_CATNW = 3
EI_SLOT_L = 4
EI_SLOT_R = 5
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

MODE_BATCH = 0
MODE_ROW = 1
TR_OFF = 0
TR_NINT = 1
TR_MODE = 2  # then per mode: J, point vectors, weight vectors, iA blocks
TR_J = 0
TR_TV = 1
TR_WV = 2
TR_IA = 3
TR_MODE_WIDTH = 4
TR_WIDTH = TR_MODE + 2 * TR_MODE_WIDTH

FLAG_CAT = 1
FLAG_DEFAULT_LEFT = 2
FLAG_PREV = 16  # the node's feature already splits an ancestor: both child edges repeat it
FLAG_LEAF_L = 32
FLAG_LEAF_R = 64
FLAG_KIND = FLAG_CAT | FLAG_PREV
MISSING_NONE = 0
MISSING_ZERO = 1
MISSING_NAN = 2

# Per-row feature codes: bit 0 "zero for missing_type Zero" (|v| <= kZeroThreshold or NaN), bit 1 NaN.
# A node's missing type (1 Zero, 2 NaN) is the mask of the code bits that send the row the default way.
CODE_ZERO = 1
CODE_NAN = 2

# Below this many rows, a block of a batch is explained row by row (MODE_ROW): a MODE_BATCH block costs
# the same whatever the number of its rows, about as much as two single rows (1.6 to 2.3 on the demo and
# reference models).
MIN_BATCH_ROWS = 2

# Helpers are inlined at numba level (separately jitted callees would not be inlined by LLVM); the
# parallel kernels reach them only through the plain jitted range functions, because numba's parfor pass
# cannot analyse inlined intrinsic code.
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


# ---------------------------------------------------------------- scalar split decisions


@_intrinsic
def _cat_left(typingctx, catw, c, off, nw):
    """1 iff category code c (-1: goes right) is in the categorical split whose bitset is the nw words
    catw[off : off + nw]: bit c % 32 of word c // 32, 0 past the last word (no data-dependent branch)."""
    sig = types.int64(catw, c, off, nw)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        c, off, nw = (
            context.cast(builder, v, t, types.int64)
            for v, t in zip(args[1:], signature.args[1:], strict=True)
        )
        w = builder.ashr(c, i64(5))
        ok = builder.and_(builder.icmp_signed(">=", c, i64(0)), builder.icmp_signed("<", w, nw))
        idx = builder.add(off, builder.select(ok, w, i64(0)))
        ptr, lty = _elem_ptr(context, builder, signature.args[0], args[0], types.int64, idx)
        bit = builder.and_(builder.lshr(builder.load(ptr, typ=lty), builder.and_(c, i64(31))), i64(1))
        return builder.select(ok, bit, i64(0))

    return sig, codegen


# ---------------------------------------------------------------- 8-lane vector code
# Numba gives LLVM no aliasing information about arrays and disables the SLP vectoriser, so short
# fixed-width loops over the lanes would stay scalar.  These intrinsics emit the per-node work directly
# as LLVM <8 x double> vector code.  Offsets are in elements from the start of each (C-contiguous)
# array; vectors are 8 consecutive elements.

_F64 = ir.DoubleType()
_I64 = ir.IntType(64)
_V8 = ir.VectorType(_F64, LANES)
_I32 = ir.IntType(32)
_CONTRACT = ("contract",)


class _Gen:
    """Codegen helpers for one intrinsic call: named arguments, vector loads/stores, arithmetic."""

    def __init__(self, context, builder, names, sig_args, llargs):
        self.context = context
        self.builder = builder
        self.args = {name: (ty, v) for name, ty, v in zip(names, sig_args, llargs, strict=True)}
        self.vec: dict[str, Any] = {}  # per-node vectors shared by the iterations (see _edge_setup)

    def i(self, name):
        """Integer argument as intp (int64)."""
        ty, v = self.args[name]
        return self.context.cast(self.builder, v, ty, types.intp)

    def c(self, value):
        """int64 constant."""
        return ir.Constant(_I64, value)

    def add_i(self, x, y):
        return self.builder.add(x, y)

    def mul_i(self, x, y):
        return self.builder.mul(x, y)

    def splat(self, x):
        """Scalar x broadcast to the 8 lanes."""
        v = self.builder.insert_element(ir.Constant(ir.VectorType(x.type, LANES), None), x, _I32(0))
        return self.builder.shuffle_vector(
            v, ir.Constant(v.type, None), ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES)
        )

    def f(self, name):
        """Float argument broadcast to the 8 lanes."""
        ty, v = self.args[name]
        return self.splat(self.context.cast(self.builder, v, ty, types.float64))

    def const(self, x):
        """float64 constant in the 8 lanes."""
        return ir.Constant(_V8, [x] * LANES)

    def ptr(self, name, ofs):
        """Pointer to the vector at element offset ofs of array argument ``name``."""
        arrty, arr = self.args[name]
        data = self.context.make_array(arrty)(self.context, self.builder, arr).data
        ety = self.context.get_value_type(arrty.dtype)
        p = self.builder.gep(data, [ofs], inbounds=True, source_etype=ety)
        return self.builder.bitcast(p, ir.VectorType(ety, LANES).as_pointer())

    def load(self, name, ofs):
        p = self.ptr(name, ofs)
        return self.builder.load(p, typ=p.type.pointee, align=8)

    def store(self, value, name, ofs):
        self.builder.store(value, self.ptr(name, ofs), align=8)

    def mul(self, x, y):
        return self.builder.fmul(x, y, flags=_CONTRACT)

    def add(self, x, y):
        return self.builder.fadd(x, y, flags=_CONTRACT)

    def sub(self, x, y):
        return self.builder.fsub(x, y, flags=_CONTRACT)


def _vector_op(names: str, emit: Callable[[_Gen], None]) -> Any:
    """An intrinsic ``op(*args)`` (argument names in ``names``) whose code is ``emit(gen)``."""
    arg_names = names.split()

    def op(typingctx, *args):
        def codegen(context, builder, signature, llargs):
            emit(_Gen(context, builder, arg_names, signature.args, llargs))
            return context.get_dummy_value()

        return types.void(*args), codegen

    # numba folds call arguments by the Python signature: give it the named parameters.
    params = [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in ["ctx", *arg_names]
    ]
    op.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return _intrinsic(op)


def _emit_decide(g: _Gen) -> None:
    """dec[d_o:+8] = 1.0 where the lane's row goes left at a numerical split: the default side for the
    codes in ``special`` (the node's missing type), else ``x <= threshold``."""
    b = g.builder
    x_o = g.i("x_o")
    le = b.fcmp_ordered("<=", g.load("xz", x_o), g.f("thr"))
    code = g.load("code", x_o)
    special = b.icmp_unsigned("!=", b.and_(code, g.splat(g.i("special"))), ir.Constant(code.type, None))
    left = b.select(le, g.const(1.0), g.const(0.0))
    g.store(b.select(special, g.f("default_left"), left), "dec", g.i("d_o"))


_v_decide = _vector_op("xz code dec x_o d_o thr special default_left", _emit_decide)


def _emit_cat_decide(g: _Gen) -> None:
    """dec[d_o:+8] = 1.0 where the lane's category code is in a categorical split's set: _cat_left for
    the 8 lanes at once, with a gather."""
    b = g.builder
    vi = ir.VectorType(_I64, LANES)
    c = g.load("cat", g.i("x_o"))
    w = b.ashr(c, g.splat(g.c(5)))
    ok = b.and_(b.icmp_signed(">=", c, ir.Constant(vi, None)), b.icmp_signed("<", w, g.splat(g.i("nw"))))
    idx = b.add(g.splat(g.i("off")), b.select(ok, w, ir.Constant(vi, None)))
    arrty, arr = g.args["catw"]
    base = b.ptrtoint(g.context.make_array(arrty)(g.context, b, arr).data, _I64)
    pv = ir.VectorType(_I64.as_pointer(), LANES)
    ptrs = b.inttoptr(b.add(g.splat(base), b.shl(idx, g.splat(g.c(3)))), pv)
    mask = ir.VectorType(ir.IntType(1), LANES)
    gather = cgutils.get_or_insert_function(
        b.module, ir.FunctionType(vi, [pv, _I32, mask, vi]), "llvm.masked.gather.v8i64.v8p0"
    )
    word = b.call(gather, [ptrs, _I32(8), ir.Constant(mask, [1] * LANES), ir.Constant(vi, None)])
    bit = b.and_(b.lshr(word, b.and_(c, g.splat(g.c(31)))), g.splat(g.c(1)))
    left = b.and_(ok, b.icmp_unsigned("!=", bit, ir.Constant(vi, None)))
    g.store(b.select(left, g.const(1.0), g.const(0.0)), "dec", g.i("d_o"))


_v_cat_decide = _vector_op("cat catw dec x_o d_o off nw", _emit_cat_decide)


def _fill(g: _Gen) -> None:
    """arr[o : o + 8] = v."""
    g.store(g.f("v"), "arr", g.i("o"))


_v_fill = _vector_op("arr o v", _fill)


def _copy(g: _Gen) -> None:
    """dst[d_o : d_o + 8] = src[s_o : s_o + 8]."""
    g.store(g.load("src", g.i("s_o")), "dst", g.i("d_o"))


_v_copy = _vector_op("dst d_o src s_o", _copy)


def _add_splat(g: _Gen) -> None:
    """arr[o : o + 8] += v."""
    o = g.i("o")
    g.store(g.add(g.load("arr", o), g.f("v")), "arr", o)


_v_add = _vector_op("arr o v", _add_splat)


def _ratios(g: _Gen, prev: bool, side: str, t, ia, with_mr: bool):
    """M (and MR if with_mr) of one child edge at points t (see the module notes); the FLAG_PREV form
    needs ``iA'``."""
    a = g.vec["a_" + side]
    m = g.add(g.f("P_" + side), g.mul(t, a))
    if not prev:
        return m, a
    op = g.vec["op_" + side]
    m = g.add(g.mul(op, g.mul(m, ia)), g.vec["qpe_" + side])
    if not with_mr:
        return m, None
    return m, g.mul(g.mul(op, ia), g.sub(a, g.mul(g.f("B_" + side), m)))


def _edge_setup(g: _Gen, prev: bool, lanes_are_rows: bool):
    """Per-node vectors shared by every iteration, per side: a = o - P and, for FLAG_PREV, O' and
    (1 - O') pe.  In MODE_BATCH they differ between lanes and come from dec (o) and ob (O'); in MODE_ROW
    the kernel computed them as scalars and they are broadcast."""
    if not lanes_are_rows:
        for name in ("a_l", "a_r", "op_l", "op_r", "qpe_l", "qpe_r") if prev else ("a_l", "a_r"):
            g.vec[name] = g.f(name)
        return
    o_l = g.load("dec", g.mul_i(g.i("n"), g.c(LANES)))
    o_r = g.sub(g.const(1.0), o_l)
    for side, o in (("l", o_l), ("r", o_r)):
        g.vec["a_" + side] = g.sub(o, g.f("P_" + side))
        if prev:
            op = g.load("ob", g.mul_i(g.i("p" + side), g.c(LANES)))
            g.vec["op_" + side] = op
            g.vec["qpe_" + side] = g.mul(g.sub(g.const(1.0), op), g.f("pe_" + side))


def _make_down(prev: bool, lanes_are_rows: bool) -> Any:
    """Top-down work of internal node n: for each iteration j ``G[j, c] = G[j, n] * M_c(t_j)`` for both
    children (G, D: one plane of ``js`` elements per iteration, a vector per node slot); in MODE_BATCH
    also the vector bookkeeping of the children's one-fractions and of the raw margin (MODE_ROW keeps
    it in scalars)."""

    def emit(g: _Gen) -> None:
        b = g.builder
        _edge_setup(g, prev, lanes_are_rows)
        n8 = g.mul_i(g.i("n"), g.c(LANES))
        sl8 = g.mul_i(g.i("sl"), g.c(LANES))
        sr8 = g.mul_i(g.i("sr"), g.c(LANES))
        if lanes_are_rows:
            o_l = g.load("dec", n8)
            o_r = g.sub(g.const(1.0), o_l)
            on = g.load("onp", n8)
            g.store(g.mul(on, o_l), "onp", sl8)
            g.store(g.mul(on, o_r), "onp", sr8)
            here = g.add(g.mul(o_l, g.f("v_l")), g.mul(o_r, g.f("v_r")))
            g.store(g.add(g.load("racc", g.c(0)), g.mul(on, here)), "racc", g.c(0))
            g.store(g.mul(g.vec["op_l"], o_l) if prev else o_l, "ob", sl8)
            g.store(g.mul(g.vec["op_r"], o_r) if prev else o_r, "ob", sr8)
        with cgutils.for_range(b, g.i("J")) as loop:
            j8 = g.mul_i(loop.index, g.c(LANES))
            plane = g.mul_i(loop.index, g.i("js"))
            t = g.load("tw", g.add_i(g.i("tv"), j8))
            g_n = g.load("G", g.add_i(plane, n8))
            for side, slot8 in (("l", sl8), ("r", sr8)):
                ia = g.load("ia", g.add_i(g.i("ia_" + side), j8)) if prev else None
                m, _ = _ratios(g, prev, side, t, ia, with_mr=False)
                g.store(g.mul(g_n, m), "G", g.add_i(plane, slot8))

    if lanes_are_rows:
        names = "G dec ob onp racc tw ia J js tv n sl sr pl pr ia_l ia_r P_l P_r pe_l pe_r v_l v_r"
        if not prev:
            names = "G dec ob onp racc tw J js tv n sl sr P_l P_r v_l v_r"
    else:
        names = "G tw ia J js tv n sl sr ia_l ia_r P_l P_r a_l a_r op_l op_r qpe_l qpe_r"
        if not prev:
            names = "G tw J js tv n sl sr P_l P_r a_l a_r"
    return _vector_op(names, emit)


def _make_up(prev: bool, lanes_are_rows: bool) -> Any:
    """Bottom-up work of internal node n: for each iteration j, ``D[j, n] = M_l D_l + M_r D_r`` and
    ``G[j, n] (MR_l D_l + MR_r D_r)`` summed into acc[a_o : a_o + 8].  A child's D is read as
    ``D[j, slot] + v``: a leaf's slot is DUMP, whose D stays 0, and v is its value; an internal child
    has v = 0 (no select, which LLVM would turn into an unpredictable branch)."""

    def emit(g: _Gen) -> None:
        b = g.builder
        _edge_setup(g, prev, lanes_are_rows)
        n8 = g.mul_i(g.i("n"), g.c(LANES))
        sl8 = g.mul_i(g.i("sl"), g.c(LANES))
        sr8 = g.mul_i(g.i("sr"), g.c(LANES))
        total = cgutils.alloca_once_value(b, g.const(0.0))
        with cgutils.for_range(b, g.i("J")) as loop:
            j8 = g.mul_i(loop.index, g.c(LANES))
            plane = g.mul_i(loop.index, g.i("js"))
            t = g.load("tw", g.add_i(g.i("tv"), j8))
            parts = []
            for side, slot8 in (("l", sl8), ("r", sr8)):
                ia = g.load("ia", g.add_i(g.i("ia_" + side), j8)) if prev else None
                m, mr = _ratios(g, prev, side, t, ia, with_mr=True)
                d = g.add(g.load("D", g.add_i(plane, slot8)), g.f("v_" + side))
                parts.append((m, mr, d))
            (m_l, mr_l, d_l), (m_r, mr_r, d_r) = parts
            nj = g.add_i(plane, n8)
            g.store(g.add(g.mul(m_l, d_l), g.mul(m_r, d_r)), "D", nj)
            s = g.add(g.mul(mr_l, d_l), g.mul(mr_r, d_r))
            b.store(g.add(b.load(total), g.mul(g.load("G", nj), s)), total)
        a_o = g.i("a_o")
        g.store(g.add(g.load("acc", a_o), b.load(total)), "acc", a_o)

    if lanes_are_rows:
        names = "G D dec ob acc tw ia J js tv n sl sr pl pr ia_l ia_r a_o P_l P_r B_l B_r pe_l pe_r v_l v_r"
        if not prev:
            names = "G D dec acc tw J js tv n sl sr a_o P_l P_r v_l v_r"
    else:
        names = "G D acc tw ia J js tv n sl sr ia_l ia_r a_o P_l P_r B_l B_r v_l v_r "
        names += "a_l a_r op_l op_r qpe_l qpe_r"
        if not prev:
            names = "G D acc tw J js tv n sl sr a_o P_l P_r v_l v_r a_l a_r"
    return _vector_op(names, emit)


# MODE_BATCH (lanes are rows) and MODE_ROW (lanes are points, per-node quantities scalar); _new: the
# node's feature is new on the path.
_v_down_new = _make_down(prev=False, lanes_are_rows=True)
_v_down = _make_down(prev=True, lanes_are_rows=True)
_v_up_new = _make_up(prev=False, lanes_are_rows=True)
_v_up = _make_up(prev=True, lanes_are_rows=True)
_v_down_new_row = _make_down(prev=False, lanes_are_rows=False)
_v_down_row = _make_down(prev=True, lanes_are_rows=False)
_v_up_new_row = _make_up(prev=False, lanes_are_rows=False)
_v_up_row = _make_up(prev=True, lanes_are_rows=False)


# ---------------------------------------------------------------- per lanes / per rows
# NB: numba increments and decrements (atomically) the reference count of every array passed to an
# inlined jitted function, at each call; LLVM cannot always prune these, and in the per-node loops they
# would cost more than the arithmetic.  So the loops over trees and nodes are written out in _lanes and
# call intrinsics only, and the helpers taking arrays are called once per row or block.


@njit(inline="always")
def _prepare(X, r0, r1, xz, code, cat):
    """Per-feature codes of rows r0 .. r1 - 1 of X in lanes 0 .. 7 (feature f of lane i at f * 8 + i;
    the last row fills the spare lanes), with LightGBM's reading of dense rows.

    xz: value with |v| <= kZeroThreshold -> 0.0 (LightGBM drops such entries) and NaN -> 0.0 (what a
    numerical split without missing_type NaN compares); code: CODE_* bits; cat: the category
    static_cast<int>(v) would give, or -1 for NaN, v <= -1 and values outside int32 (all go right).
    """
    for lane in range(LANES):
        r = min(r0 + lane, r1 - 1)
        for j in range(X.shape[1]):
            v = X[r, j]
            isnan = v != v
            z = 0.0 if (isnan or (v >= -KZERO and v <= KZERO)) else v
            k = j * LANES + lane
            _put(xz, k, z)
            _put(code, k, (CODE_NAN if isnan else 0) | (CODE_ZERO if (isnan or z == 0.0) else 0))
            _put(cat, k, np.int64(v) if (v > -1.0 and v < 2147483648.0) else -1)


@njit(inline="always")
def _num_left(z, code, thr, flags):
    """LightGBM's decision at a numerical split for one row (1 -> left), from the row's codes (see
    _prepare) and the node's flags, without data-dependent branches."""
    special = np.int64((code & ((flags >> 2) & 3)) != 0)
    return (special & (flags >> 1) & 1) | ((1 - special) & np.int64(z <= thr))


@njit(inline="always")
def _lanes(mode, ei, ef, ia, tw, trees, catw, xz, code, cat, acc, racc, G, D, js, ob, onp, dec, sc_o, sc_on):
    """Every tree for the prepared lanes: each tree's shares into acc, its outputs into racc.

    MODE_ROW keeps the split decisions, one-fractions and path indicators of its one row in scalars
    (sc_o, sc_on, and dec, ob without lanes); MODE_BATCH in 8-lane vectors (dec, ob, onp)."""
    acc[:] = 0.0
    racc[:] = 0.0
    m0 = TR_MODE + TR_MODE_WIDTH * mode
    raw = 0.0
    for t in range(trees.shape[0]):
        off = trees[t, TR_OFF]
        n_int = trees[t, TR_NINT]
        if n_int == 0:  # single leaf: output only
            _v_add(racc, 0, _get(ef, off * EF_WIDTH + EF_V_L))
            continue
        J = trees[t, m0 + TR_J]
        tv = trees[t, m0 + TR_TV]
        ia0 = trees[t, m0 + TR_IA]
        ia_stride = J * LANES
        _v_fill(onp, 0, 1.0)
        _put(sc_on, 0, 1.0)
        for j in range(J):
            _v_copy(G, j * js, tw, trees[t, m0 + TR_WV] + j * LANES)  # G_root = weights
        for n in range(n_int):
            gi = (off + n) * EI_WIDTH
            gf = (off + n) * EF_WIDTH
            flags = np.int64(_get(ei, gi + EI_FLAGS))
            x_o = _get(ei, gi + EI_FEAT) * LANES
            sl = _get(ei, gi + EI_SLOT_L)
            sr = _get(ei, gi + EI_SLOT_R)
            P_l = _get(ef, gf + EF_P_L)
            P_r = _get(ef, gf + EF_P_R)
            v_l = _get(ef, gf + EF_V_L)
            v_r = _get(ef, gf + EF_V_R)
            if mode == MODE_ROW:
                if flags & FLAG_CAT:
                    left = _cat_left(catw, _get(cat, x_o), _get(ei, gi + EI_CATOFF), _get(ei, gi + EI_CATNW))
                else:
                    left = _num_left(_get(xz, x_o), _get(code, x_o), _get(ef, gf + EF_THR), flags)
                o_l = np.float64(left)
                o_r = 1.0 - o_l
                _put(sc_o, n, o_l)
                on = _get(sc_on, n)
                _put(sc_on, sl, on * o_l)
                _put(sc_on, sr, on * o_r)
                raw += on * (o_l * v_l + o_r * v_r)
                if flags & FLAG_PREV:
                    op_l = _get(ob, _get(ei, gi + EI_PREV_L))
                    op_r = _get(ob, _get(ei, gi + EI_PREV_R))
                    _put(ob, sl, op_l * o_l)
                    _put(ob, sr, op_r * o_r)
                    _v_down_row(
                        G, tw, ia, J, js, tv, n, sl, sr,
                        ia0 + _get(ei, gi + EI_IA_L) * ia_stride, ia0 + _get(ei, gi + EI_IA_R) * ia_stride,
                        P_l, P_r, o_l - P_l, o_r - P_r, op_l, op_r,
                        (1.0 - op_l) * _get(ef, gf + EF_PE_L), (1.0 - op_r) * _get(ef, gf + EF_PE_R),
                    )  # fmt: skip
                else:
                    _put(ob, sl, o_l)
                    _put(ob, sr, o_r)
                    _v_down_new_row(G, tw, J, js, tv, n, sl, sr, P_l, P_r, o_l - P_l, o_r - P_r)
                continue
            if flags & FLAG_CAT:
                _v_cat_decide(
                    cat, catw, dec, x_o, n * LANES, _get(ei, gi + EI_CATOFF), _get(ei, gi + EI_CATNW)
                )
            else:
                thr = _get(ef, gf + EF_THR)
                _v_decide(xz, code, dec, x_o, n * LANES, thr, (flags >> 2) & 3, (flags >> 1) & 1)
            if flags & FLAG_PREV:
                _v_down(
                    G, dec, ob, onp, racc, tw, ia, J, js, tv, n, sl, sr,
                    _get(ei, gi + EI_PREV_L), _get(ei, gi + EI_PREV_R),
                    ia0 + _get(ei, gi + EI_IA_L) * ia_stride, ia0 + _get(ei, gi + EI_IA_R) * ia_stride,
                    P_l, P_r, _get(ef, gf + EF_PE_L), _get(ef, gf + EF_PE_R), v_l, v_r,
                )  # fmt: skip
            else:
                _v_down_new(G, dec, ob, onp, racc, tw, J, js, tv, n, sl, sr, P_l, P_r, v_l, v_r)
        for n in range(n_int - 1, -1, -1):
            gi = (off + n) * EI_WIDTH
            gf = (off + n) * EF_WIDTH
            flags = np.int64(_get(ei, gi + EI_FLAGS))
            sl = _get(ei, gi + EI_SLOT_L)
            sr = _get(ei, gi + EI_SLOT_R)
            a_o = _get(ei, gi + EI_FEAT) * LANES
            P_l = _get(ef, gf + EF_P_L)
            P_r = _get(ef, gf + EF_P_R)
            v_l = _get(ef, gf + EF_V_L)
            v_r = _get(ef, gf + EF_V_R)
            if mode == MODE_ROW:
                o_l = _get(sc_o, n)
                o_r = 1.0 - o_l
                if flags & FLAG_PREV:
                    op_l = _get(ob, _get(ei, gi + EI_PREV_L))
                    op_r = _get(ob, _get(ei, gi + EI_PREV_R))
                    _v_up_row(
                        G, D, acc, tw, ia, J, js, tv, n, sl, sr,
                        ia0 + _get(ei, gi + EI_IA_L) * ia_stride, ia0 + _get(ei, gi + EI_IA_R) * ia_stride,
                        a_o, P_l, P_r, _get(ef, gf + EF_B_L), _get(ef, gf + EF_B_R), v_l, v_r,
                        o_l - P_l, o_r - P_r, op_l, op_r,
                        (1.0 - op_l) * _get(ef, gf + EF_PE_L), (1.0 - op_r) * _get(ef, gf + EF_PE_R),
                    )  # fmt: skip
                else:
                    _v_up_new_row(
                        G, D, acc, tw, J, js, tv, n, sl, sr, a_o, P_l, P_r, v_l, v_r, o_l - P_l, o_r - P_r
                    )
                continue
            if flags & FLAG_PREV:
                _v_up(
                    G, D, dec, ob, acc, tw, ia, J, js, tv, n, sl, sr,
                    _get(ei, gi + EI_PREV_L), _get(ei, gi + EI_PREV_R),
                    ia0 + _get(ei, gi + EI_IA_L) * ia_stride, ia0 + _get(ei, gi + EI_IA_R) * ia_stride,
                    a_o, P_l, P_r, _get(ef, gf + EF_B_L), _get(ef, gf + EF_B_R),
                    _get(ef, gf + EF_PE_L), _get(ef, gf + EF_PE_R), v_l, v_r,
                )  # fmt: skip
            else:
                _v_up_new(G, D, dec, acc, tw, J, js, tv, n, sl, sr, a_o, P_l, P_r, v_l, v_r)
    return raw


# ---------------------------------------------------------------- entry points


@njit(**_OPTS)
def _shap_rows(X, lo, hi, ei, ef, ia, tw, trees, catw, n_features, expected, max_nint, max_j, out, raw):
    """Rows lo .. hi - 1 of X, on the calling thread: blocks of 8 rows in MODE_BATCH, blocks of fewer
    than MIN_BATCH_ROWS rows row by row in MODE_ROW."""
    acc = np.empty(n_features * LANES)
    racc = np.empty(LANES)
    js = (max_nint + 1) * LANES  # G, D: per iteration, a vector per internal node and DUMP
    G = np.empty(max_j * js)
    D = np.zeros(max_j * js)  # D[j, DUMP] must stay 0 (see _make_up)
    ob = np.empty((max_nint + 1) * LANES)  # MODE_ROW: one value per slot
    onp = np.empty((max_nint + 1) * LANES)
    dec = np.empty(max(max_nint, 1) * LANES)
    sc_o = np.empty(max(max_nint, 1))
    sc_on = np.empty(max_nint + 1)
    xz = np.empty(n_features * LANES)
    code = np.empty(n_features * LANES, np.int64)
    cat = np.empty(n_features * LANES, np.int64)
    i = lo
    while i < hi:
        block_end = min(i - (i - lo) % LANES + LANES, hi)
        mode = MODE_BATCH if block_end - i >= MIN_BATCH_ROWS else MODE_ROW
        rows_end = block_end if mode == MODE_BATCH else i + 1
        _prepare(X, i, rows_end, xz, code, cat)
        raw_row = _lanes(
            mode, ei, ef, ia, tw, trees, catw, xz, code, cat, acc, racc, G, D, js, ob, onp, dec, sc_o, sc_on
        )
        for r in range(i, rows_end):
            lane = r - i
            raw[r] = racc[lane] + raw_row
            for f in range(n_features):
                if mode == MODE_BATCH:  # lanes = rows
                    out[r, f] = _get(acc, f * LANES + lane)
                else:  # lanes = quadrature points
                    s = 0.0
                    for k in range(LANES):
                        s += _get(acc, f * LANES + k)
                    out[r, f] = s
            out[r, n_features] = expected
        i = rows_end


@njit(**_OPTS)
def explain_row_kernel(x, ei, ef, ia, tw, trees, catw, n_features, expected, max_nint, max_j):
    """One row: returns (raw margin, contributions with the base value last).  It shares the compiled
    _shap_rows with the batch kernel (one heavy compilation instead of two)."""
    out = np.empty((1, n_features + 1))
    raw = np.empty(1)
    X = x.reshape((1, x.shape[0]))
    lo, hi = np.int64(0), np.int64(1)  # not literals: same compiled signature as the batch kernel's
    _shap_rows(X, lo, hi, ei, ef, ia, tw, trees, catw, n_features, expected, max_nint, max_j, out, raw)
    return raw[0], out[0]


@njit(parallel=True, **_OPTS)
def shap_batch_kernel(
    X, ei, ef, ia, tw, trees, catw, n_features, expected, max_nint, max_j, n_chunks, out, raw
):
    """Rows in parallel chunks (whole blocks of 8 rows); fills out (n, n_features + 1) and raw (n,)."""
    n = X.shape[0]
    n_blocks = (n + LANES - 1) // LANES
    for c in prange(n_chunks):
        lo = min(n, c * n_blocks // n_chunks * LANES)
        hi = min(n, (c + 1) * n_blocks // n_chunks * LANES)
        _shap_rows(
            X, lo, hi, ei, ef, ia, tw, trees, catw, n_features, expected, max_nint, max_j, out, raw
        )  # fmt: skip


@njit(**_OPTS)
def _raw_rows(X, lo, hi, ei, ef, trees, catw, out):
    """Raw margins of rows lo .. hi - 1: each row walks each tree to its leaf, a block of 8 rows tree by
    tree (the tree's records stay in cache for the 8 walks)."""
    nf = X.shape[1]
    xz = np.empty(nf * LANES)
    code = np.empty(nf * LANES, np.int64)
    cat = np.empty(nf * LANES, np.int64)
    for r0 in range(lo, hi, LANES):
        r1 = min(r0 + LANES, hi)
        _prepare(X, r0, r1, xz, code, cat)
        out[r0:r1] = 0.0
        for t in range(trees.shape[0]):
            off = trees[t, TR_OFF]
            if trees[t, TR_NINT] == 0:
                out[r0:r1] += _get(ef, off * EF_WIDTH + EF_V_L)
                continue
            for r in range(r0, r1):
                n = 0
                while True:
                    gi = (off + n) * EI_WIDTH
                    gf = (off + n) * EF_WIDTH
                    flags = np.int64(_get(ei, gi + EI_FLAGS))
                    x_o = _get(ei, gi + EI_FEAT) * LANES + r - r0
                    if flags & FLAG_CAT:
                        left = _cat_left(
                            catw, _get(cat, x_o), _get(ei, gi + EI_CATOFF), _get(ei, gi + EI_CATNW)
                        )
                    else:
                        left = _num_left(_get(xz, x_o), _get(code, x_o), _get(ef, gf + EF_THR), flags)
                    if left:
                        if flags & FLAG_LEAF_L:
                            out[r] += _get(ef, gf + EF_V_L)
                            break
                        n = _get(ei, gi + EI_SLOT_L)
                    else:
                        if flags & FLAG_LEAF_R:
                            out[r] += _get(ef, gf + EF_V_R)
                            break
                        n = _get(ei, gi + EI_SLOT_R)


@njit(parallel=True, **_OPTS)
def raw_batch_kernel(X, ei, ef, trees, catw, n_chunks, out):
    n = X.shape[0]
    n_blocks = (n + LANES - 1) // LANES
    for c in prange(n_chunks):
        lo = min(n, c * n_blocks // n_chunks * LANES)
        hi = min(n, (c + 1) * n_blocks // n_chunks * LANES)
        _raw_rows(X, lo, hi, ei, ef, trees, catw, out)
