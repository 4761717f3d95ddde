"""Exact path-dependent TreeSHAP for LightGBM binary models, much faster than ``pred_contrib``.

:class:`TreeShapExplainer` parses ``Booster.dump_model()`` once, flattens every tree into contiguous
arrays and computes, with numba kernels (``models/_treeshap_kernels.py``), the raw margin and the same
SHAP values as ``Booster.predict(X, pred_contrib=True)`` (the path-dependent / "tree_path_dependent"
values, weighted by the training counts LightGBM stores in the trees).

Algorithm (a Linear-TreeSHAP-style evaluation, Yu et al., NeurIPS 2022)
--------------------------------------------------------------------------
For one tree and one row, let a leaf l be reached by a path whose distinct features are ``F_l``.  For a
feature j on that path let ``P_j`` be the product of the cover ratios ``count(child) / count(parent)`` of
the path's edges that split on j, and ``O_j`` in {0, 1} be 1 iff the row follows every one of those edges
(LightGBM's "zero fraction" and "one fraction").  The value function of the path-dependent game is
``v(S) = sum_l value_l * prod_{j in S} O_j * prod_{j in F_l \\ S} P_j`` and its Shapley values are::

    phi_i = sum_{l : i in F_l} value_l * (O_i - P_i) * integral_0^1 prod_{j in F_l, j != i} F_j(t) dt,
    F_j(t) = P_j + t (O_j - P_j)

(the Shapley weight |S|! (d-|S|-1)! / d! is the Beta integral of t^|S| (1-t)^(d-|S|-1)).  The integrand is
a polynomial of degree <= D - 1 where D is the largest number of distinct features on a root-leaf path of
the tree, so a Gauss-Legendre rule with K >= D / 2 points integrates it exactly; we use K = 8, 16, 24...
(the smallest multiple of 8 that suffices: fixed 8-lane SIMD blocks, and 8 points already cover D <= 16).
Evaluating every polynomial at those K points, one pass down the tree forms the path products
``G_n(t_k)``, one pass up forms ``C_n(t_k) = sum of value_l * G_l(t_k) over the leaves below n``, and each
edge e on feature i adds ``sum_k w_k C_e(t_k) [(O_e - P_e) / F_e(t_k) - (O_e' - P_e') / F_e'(t_k)]`` where e'
is the previous edge on i above e (0 if none): summed over the edges on i of a path this telescopes to
``(O_i - P_i) / F_i`` with the merged factors, which is the formula above (quadrature is linear, so
exactness is kept).  The kernel carries ``C_e = G_parent * M_e * D_e`` with ``M_e = F_e / F_e'`` and
``D_e`` the subtree sum below e, so no division happens per row (``1 / F_e'`` is precomputed per node),
no branch depends on the row's values, and the K points are processed as 8-lane SIMD vectors; see
``models/_treeshap_kernels.py``.

Per row the cost is O(sum over trees of nodes * K) = O(T * L * D) -- against O(T * L * D^2) for classic
TreeSHAP -- and the precomputation is O(nodes * K) memory, polynomial in depth (D <= number of
features, so K <= 8 * ceil(n_features / 16) whatever the depth): deep trees simply use more points,
there is no exponential table, hence no depth cap and no fallback path.

Exactness: equal to ``pred_contrib`` to ~1e-14 on ordinary models.  On extreme paths (~40 distinct
features, covers shrinking to single rows) LightGBM's classic TreeSHAP itself loses precision (its
path unwinding divides by small fractions): against exact rational arithmetic it was off by up to
1e-8 where this implementation stayed within 1e-16 (see tests/models/test_treeshap.py).

Semantics reproduced from LightGBM (``tree.h``, ``c_api.cpp``):

* a dense row's values with ``|v| <= kZeroThreshold`` (``float(1e-35)``) are read as exactly 0.0;
* numerical split: NaN becomes 0.0 unless ``missing_type`` is NaN; with missing_type Zero a (near) zero
  and with missing_type NaN a NaN go to the ``default_left`` side; otherwise ``v <= threshold`` goes left;
* categorical split: NaN, values with ``int(v) < 0`` (i.e. v <= -1) and values outside int32 go right;
  otherwise ``int(v)`` (truncated) goes left iff it is in the split's category set (unseen -> right);
* single-leaf trees contribute their value to the margin and the base value only;
* ``average_output`` (random-forest mode): like LightGBM's ``raw_score=True`` and ``pred_contrib=True``,
  margins and contributions are the *sums* over trees; LightGBM divides by the number of trees only
  in ``predict()`` before the link function, so for such models the objective's margin is
  ``raw / n_trees`` (see :attr:`TreeShapExplainer.average_output`).

Linear trees and multiclass models are rejected with ``ValueError``.
"""

from __future__ import annotations

import collections
import functools
import math
import threading
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from models import _treeshap_kernels as _k

__all__ = ["TreeShapExplainer", "pred_contrib_reference"]

_MISSING_TYPES = {"None": _k.MISSING_NONE, "Zero": _k.MISSING_ZERO, "NaN": _k.MISSING_NAN}

# numba's parallel kernels must not be launched concurrently from several threads with some threading
# layers (workqueue); batch calls use every core anyway, so they are serialised.
_PARALLEL_LOCK = threading.Lock()


def _n_chunks(n_rows: int) -> int:
    """Work items for the parallel kernels: a few per thread, for load balance."""
    return min(n_rows, 8 * numba.get_num_threads())


def pred_contrib_reference(booster: Any, X: np.ndarray) -> np.ndarray:
    """LightGBM's own TreeSHAP, single-threaded: the reference (and fallback) for this module."""
    return np.asarray(booster.predict(X, pred_contrib=True, num_threads=1))


def _cat_bitset(threshold: Any) -> list[int]:
    cats = [int(c) for c in str(threshold).split("||") if c != ""]
    if not cats:
        return [0]
    if min(cats) < 0:
        raise ValueError(f"negative category in a categorical split: {threshold!r}")
    words = [0] * (max(cats) // 32 + 1)
    for c in cats:
        words[c // 32] |= 1 << (c % 32)
    return words


def _threshold(node: dict, exact: Callable[[], list[float]] | None) -> float:
    """A numerical split's threshold.  dump_model() clips thresholds to +-1e300 (LightGBM's AvoidInf), but
    LightGBM puts +inf thresholds on "every value left, NaN right" splits, and then v = +inf goes left:
    take the exact value from the model text when available, else read +-1e300 as +-inf."""
    thr = float(node["threshold"])
    if abs(thr) < 1e300:
        return thr
    if exact is not None and "split_index" in node:
        return exact()[int(node["split_index"])]
    return math.copysign(math.inf, thr)


def _model_string_thresholds(model_str: str) -> dict[int, list[float]]:
    """Per tree index, the split thresholds of LightGBM's model text (full precision, inf kept)."""
    out: dict[int, list[float]] = {}
    for block in model_str.split("\nTree=")[1:]:
        header, _, body = block.partition("\n")
        for line in body.splitlines():
            if line.startswith("threshold="):
                out[int(header)] = [float(v) for v in line[len("threshold=") :].split()]
                break
            if not line.strip():
                break
    return out


def _count(node: dict, key: str) -> float:
    if key not in node:
        raise ValueError(f"tree node without {key!r}: TreeSHAP needs the data counts of dump_model()")
    return float(node[key])


def _points(cls: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1] of point-set class cls (8 (cls + 1) points)."""
    x, w = np.polynomial.legendre.leggauss(_k.LANES * (cls + 1))
    return 0.5 * (x + 1.0), 0.5 * w


class _Tree:
    """One tree flattened into per-internal-node records (construction only)."""

    def __init__(
        self, info: dict, catw: list[int], exact_thresholds: Callable[[], list[float]] | None
    ) -> None:
        root = info["tree_structure"]
        # Pass 1: pre-order walk (explicit stack: leaf-wise trees can be deep).
        feat: list[int] = []
        flags: list[int] = []
        cat_off: list[int] = []
        cat_nw: list[int] = []
        thr: list[float] = []
        val: list[float] = []
        count: list[float] = []
        parent: list[int] = []
        kids: list[list[int]] = []
        leaf_index: list[int] = []
        stack: list[tuple[dict, int, int]] = [(root, -1, 0)]
        while stack:
            node, par, side = stack.pop()
            n = len(feat)
            parent.append(par)
            kids.append([-1, -1])
            if par >= 0:
                kids[par][side] = n
            if "split_feature" in node:
                decision = node.get("decision_type")
                if decision == "==":
                    words = _cat_bitset(node["threshold"])
                    f_flags = _k.FLAG_CAT
                    cat_off.append(len(catw))
                    cat_nw.append(len(words))
                    catw.extend(words)
                    thr.append(0.0)
                elif decision == "<=":
                    f_flags = 0
                    cat_off.append(0)
                    cat_nw.append(0)
                    thr.append(_threshold(node, exact_thresholds))
                else:
                    raise ValueError(f"unsupported decision_type {decision!r}")
                missing = node.get("missing_type", "None")
                if missing not in _MISSING_TYPES:
                    raise ValueError(f"unsupported missing_type {missing!r}")
                f_flags |= _MISSING_TYPES[missing] << 2
                if node.get("default_left", False):
                    f_flags |= _k.FLAG_DEFAULT_LEFT
                feat.append(int(node["split_feature"]))
                flags.append(f_flags)
                val.append(0.0)
                count.append(_count(node, "internal_count"))
                leaf_index.append(-1)
                stack.append((node["right_child"], n, 1))
                stack.append((node["left_child"], n, 0))
            else:
                if "leaf_coeff" in node or "leaf_const" in node:
                    raise ValueError("linear trees (linear_tree=True) are not supported")
                feat.append(-1)
                flags.append(0)
                cat_off.append(0)
                cat_nw.append(0)
                thr.append(0.0)
                val.append(float(node["leaf_value"]))
                count.append(_count(node, "leaf_count") if node is not root else 0.0)
                leaf_index.append(int(node.get("leaf_index", 0)))
        nn = len(feat)
        # Pass 2: edge data (pre-order: ancestors first).
        prev = [-1] * nn
        pedge = [1.0] * nn
        pm = [1.0] * nn
        distinct = [0] * nn
        for n in range(1, nn):
            p = parent[n]
            f = feat[p]
            pedge[n] = count[n] / count[p] if count[p] > 0 else 0.0
            a = p
            while a > 0 and feat[parent[a]] != f:
                a = parent[a]
            if a > 0:
                prev[n] = a
                pm[n] = pedge[n] * pm[a]
                distinct[n] = distinct[p]
            else:
                pm[n] = pedge[n]
                distinct[n] = distinct[p] + 1
        leaves = [n for n in range(nn) if feat[n] < 0]
        self.depth = max(distinct[n] for n in leaves)
        self.cls = max(0, -(-self.depth // (2 * _k.LANES)) - 1)
        if nn == 1:
            self.expected = val[0]
        else:
            total = count[0]
            e = 0.0
            for n in sorted(leaves, key=lambda m: leaf_index[m]):  # LightGBM's order and formula
                e += (count[n] / total) * val[n]
            self.expected = e
        # Pass 3: renumber (internal nodes first) and build the records.  The kernels take nodes in
        # index order top-down and in reverse bottom-up, so parents must precede children; within
        # that, the order keeps runs of one kind (categorical split or not, feature repeated from the
        # path or not: FLAG_KIND) so the kernels' per-kind branches are mostly predicted.
        for n in range(nn):
            if feat[n] >= 0 and prev[kids[n][0]] >= 0:  # then also prev[kids[n][1]] >= 0
                flags[n] |= _k.FLAG_PREV
        internal: list[int] = []
        if feat[0] >= 0:
            # Topological order (parents first) that stays on one kind as long as it can; FIFO queues
            # keep it close to breadth-first, so consecutive nodes are mostly independent.
            queues: dict[int, collections.deque[int]] = collections.defaultdict(collections.deque)
            queues[flags[0] & _k.FLAG_KIND].append(0)
            current = flags[0] & _k.FLAG_KIND
            while True:
                if not queues[current]:
                    waiting = [k for k, q in queues.items() if q]
                    if not waiting:
                        break
                    current = max(waiting, key=lambda k: len(queues[k]))
                m = queues[current].popleft()
                internal.append(m)
                for c in kids[m]:
                    if feat[c] >= 0:
                        queues[flags[c] & _k.FLAG_KIND].append(c)
        new_id = [0] * nn
        for i, n in enumerate(internal + leaves):
            new_id[n] = i
        self.nn = nn
        self.n_int = len(internal)
        self.used_features = {feat[n] for n in internal}
        n_rec = max(1, self.n_int)
        ei = np.zeros((n_rec, _k.EI_WIDTH), dtype=np.int32)
        ef = np.zeros((n_rec, _k.EF_WIDTH), dtype=np.float64)
        self.ia_nodes: list[tuple[int, float]] = []  # (old id, merged P) of nodes needing an iA block
        ia_slot: dict[int, int] = {}
        if self.n_int == 0:
            ef[0, _k.EF_V_L] = val[0]
        side_cols = (
            (_k.EI_PREV_L, _k.EI_IA_L, _k.EF_P_L, _k.EF_B_L, _k.EF_PE_L, _k.EF_V_L),
            (_k.EI_PREV_R, _k.EI_IA_R, _k.EF_P_R, _k.EF_B_R, _k.EF_PE_R, _k.EF_V_R),
        )
        self.ia_refs: list[tuple[int, int, int]] = []  # (record, column, slot) patched with vec offsets
        for i, n in enumerate(internal):
            ei[i, _k.EI_FEAT] = feat[n]
            ei[i, _k.EI_FLAGS] = flags[n]
            ei[i, _k.EI_CATOFF] = cat_off[n]
            ei[i, _k.EI_CATNW] = cat_nw[n]
            ei[i, _k.EI_LEFT] = new_id[kids[n][0]]
            ei[i, _k.EI_RIGHT] = new_id[kids[n][1]]
            ef[i, _k.EF_THR] = thr[n]
            for side, (c_prev, c_ia, c_p, c_b, c_pe, c_v) in enumerate(side_cols):
                c = kids[n][side]
                ef[i, c_p] = pm[c]
                ef[i, c_pe] = pedge[c]
                ef[i, c_v] = val[c]
                a = prev[c]
                if a < 0:
                    ei[i, c_prev] = nn  # sentinel slot: merged one-fraction 1
                    ef[i, c_b] = 0.0  # 1 - P' with P' = 1
                    ei[i, c_ia] = 0  # all-ones block
                else:
                    ei[i, c_prev] = new_id[a]
                    ef[i, c_b] = 1.0 - pm[a]
                    if a not in ia_slot:
                        ia_slot[a] = len(self.ia_nodes)
                        self.ia_nodes.append((a, pm[a]))
                    self.ia_refs.append((i, c_ia, ia_slot[a]))
        self.ei = ei
        self.ef = ef


class TreeShapExplainer:
    """Raw margin and exact SHAP values (``pred_contrib`` layout) of a single-output LightGBM model.

    Build once per model (``from_booster`` / ``from_model_dump``), call :meth:`warmup` at start-up (it
    compiles the kernels, or loads them from numba's on-disk cache), then:

    * :meth:`explain_row` -- one row, single-threaded, the request path: ``(margin, contributions)``;
    * :meth:`shap_values` / :meth:`explain` / :meth:`raw_score` -- batches, rows in parallel over numba's
      threads (``numba.set_num_threads``).

    Instances are immutable after construction and the kernels release the GIL and allocate their own
    scratch, so one instance can serve concurrent threads.

    Attributes: ``n_features``; ``expected_value`` (the base value, pred_contrib's last column);
    ``average_output`` (random-forest model: LightGBM's raw outputs are sums, see the module notes);
    ``n_trees``; ``max_distinct_depth`` (most distinct features on a root-leaf path);
    ``points_per_tree`` (quadrature points used per tree).
    """

    n_features: int
    expected_value: float

    def __init__(self, dump: dict, model_string: Callable[[], str] | None = None) -> None:
        n_class = int(dump.get("num_class", 1))
        per_iter = int(dump.get("num_tree_per_iteration", 1))
        if n_class != 1 or per_iter != 1:
            raise ValueError(
                f"multiclass models are not supported (num_class={n_class}, "
                f"num_tree_per_iteration={per_iter}); use pred_contrib_reference"
            )
        infos = dump.get("tree_info", [])
        if not infos:
            raise ValueError("model has no trees")
        self.n_features = int(dump["max_feature_idx"]) + 1
        self.feature_names = list(dump.get("feature_names", []))
        self.average_output = bool(dump.get("average_output", False))

        catw: list[int] = []
        exact: Callable[[], list[float]] | None = None
        by_tree: Callable[[], dict[int, list[float]]] | None = None
        if model_string is not None:
            by_tree = functools.cache(lambda: _model_string_thresholds(model_string()))
        trees = []
        for t, info in enumerate(infos):
            if by_tree is not None:
                index = int(info.get("tree_index", t))
                exact = functools.partial(lambda i: by_tree()[i], index)
            trees.append(_Tree(info, catw, exact))
        for tr in trees:
            if tr.used_features and not 0 <= min(tr.used_features) <= max(tr.used_features) < self.n_features:
                raise ValueError("split on a feature index outside [0, max_feature_idx]")
        n_cls = max(tr.cls for tr in trees) + 1
        kp_max = _k.LANES * n_cls
        quad_t = np.full((n_cls, kp_max), 0.5)
        quad_w = np.zeros((n_cls, kp_max))
        for c in range(n_cls):
            t_c, w_c = _points(c)
            quad_t[c, : t_c.size] = t_c
            quad_w[c, : w_c.size] = w_c

        n_rec = sum(tr.ei.shape[0] for tr in trees)
        ei = np.empty((n_rec, _k.EI_WIDTH), dtype=np.int32)
        ef = np.empty((n_rec, _k.EF_WIDTH), dtype=np.float64)
        tri = np.empty((len(trees), _k.TR_WIDTH), dtype=np.int64)
        blocks = [np.ones(kp_max)]
        voff = kp_max
        off = 0
        expected = 0.0
        for t, tr in enumerate(trees):
            kp = _k.LANES * (tr.cls + 1)
            t_c = quad_t[tr.cls, :kp]
            base = voff
            for _, pm in tr.ia_nodes:
                blocks.append(1.0 / (pm + t_c * (1.0 - pm)))
            voff += kp * len(tr.ia_nodes)
            for rec, col, slot in tr.ia_refs:
                tr.ei[rec, col] = base + kp * slot
            r = tr.ei.shape[0]
            ei[off : off + r] = tr.ei
            ef[off : off + r] = tr.ef
            tri[t] = (off, tr.n_int, tr.nn, tr.cls)
            expected += tr.expected
            off += r
        if voff >= 2**31:
            raise ValueError("model too large for 32-bit offsets")
        self.expected_value = float(expected)
        self._ei = ei.reshape(-1)  # flat records for the kernels
        self._ef = ef.reshape(-1)
        self._vec = np.concatenate(blocks)
        self._trees = tri
        self._quad_t = quad_t
        self._quad_w = quad_w
        self._catw = np.asarray(catw if catw else [0], dtype=np.int64)
        self._max_nn = int(tri[:, _k.TR_NN].max())
        self.n_trees = len(trees)
        # Most distinct features on any root-leaf path; sets the number of quadrature points.
        self.max_distinct_depth = max(tr.depth for tr in trees)
        self.n_points = kp_max

    @property
    def points_per_tree(self) -> np.ndarray:
        """Quadrature points used per tree (8 covers paths of up to 16 distinct features)."""
        return _k.LANES * (self._trees[:, _k.TR_CLS] + 1)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_booster(cls, booster: Any) -> TreeShapExplainer:
        """From a trained or loaded ``lightgbm.Booster`` (its ``dump_model()``, best iteration if set)."""
        params = getattr(booster, "params", None) or {}
        if str(params.get("linear_tree", "false")).lower() in ("true", "1"):
            raise ValueError("linear trees (linear_tree=True) are not supported")
        return cls(booster.dump_model(), model_string=booster.model_to_string)

    @classmethod
    def from_model_dump(cls, dump: dict) -> TreeShapExplainer:
        """From the dict of ``Booster.dump_model()`` (e.g. stored as JSON next to the model)."""
        return cls(dump)

    # ------------------------------------------------------------------ inputs
    def _matrix(self, X: npt.ArrayLike) -> np.ndarray:
        A = np.ascontiguousarray(X, dtype=np.float64)
        if A.ndim == 1:
            A = A.reshape(1, -1)
        if A.ndim != 2 or A.shape[1] != self.n_features:
            raise ValueError(f"expected shape (n, {self.n_features}), got {np.shape(X)}")
        return A

    # ------------------------------------------------------------------ API
    def raw_score(self, X: npt.ArrayLike) -> np.ndarray:
        """Raw margin per row, as ``booster.predict(X, raw_score=True)``."""
        A = self._matrix(X)
        out = np.empty(A.shape[0])
        with _PARALLEL_LOCK:
            _k.raw_batch_kernel(A, self._ei, self._ef, self._trees, self._catw, _n_chunks(A.shape[0]), out)
        return out

    def shap_values(self, X: npt.ArrayLike) -> np.ndarray:
        """(n, n_features + 1) contributions, last column = base value, as ``pred_contrib=True``."""
        return self.explain(X)[1]

    def explain(self, X: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Batch (raw margins (n,), contributions (n, n_features + 1)), rows in parallel."""
        A = self._matrix(X)
        n = A.shape[0]
        out = np.empty((n, self.n_features + 1))
        raw = np.empty(n)
        with _PARALLEL_LOCK:
            _k.shap_batch_kernel(
                A,
                self._ei,
                self._ef,
                self._vec,
                self._trees,
                self._quad_t,
                self._quad_w,
                self._catw,
                self.n_features,
                self.expected_value,
                self._max_nn,
                _n_chunks(n),
                out,
                raw,
            )
        return raw, out

    def explain_row(self, x: npt.ArrayLike) -> tuple[float, np.ndarray]:
        """One row (1-D float64), single-threaded: (raw margin, contributions with the base value last)."""
        if not (
            isinstance(x, np.ndarray) and x.dtype == np.float64 and x.ndim == 1 and x.flags.c_contiguous
        ):  # one compiled signature only: anything else would trigger a compilation on the request path
            x = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
        if x.shape[0] != self.n_features:
            raise ValueError(f"expected {self.n_features} features, got {x.shape[0]}")
        return _k.explain_row_kernel(
            x,
            self._ei,
            self._ef,
            self._vec,
            self._trees,
            self._quad_t,
            self._quad_w,
            self._catw,
            self.n_features,
            self.expected_value,
            self._max_nn,
        )

    def warmup(self) -> None:
        """Compile (or load from numba's cache) and run every kernel once, so no request pays for it."""
        x = np.zeros(self.n_features)
        self.explain_row(x)
        X = np.zeros((2, self.n_features))
        self.explain(X)
        self.raw_score(X)
