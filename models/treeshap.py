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
the tree, so a Gauss-Legendre rule with K >= D / 2 points integrates it exactly; each tree uses the
fewest, ``K = ceil(D / 2)`` (4 points for the usual D <= 8).  Evaluating every polynomial at those K
points, one pass down the tree forms the path products ``G_n(t_k)``, one pass up forms ``C_n(t_k) = sum of
value_l * G_l(t_k) over the leaves below n``, and each edge e on feature i adds ``sum_k w_k C_e(t_k) [(O_e
- P_e) / F_e(t_k) - (O_e' - P_e') / F_e'(t_k)]`` where e' is the previous edge on i above e (0 if none):
summed over the edges on i of a path this telescopes to ``(O_i - P_i) / F_i`` with the merged factors,
which is the formula above (quadrature is linear, so exactness is kept).  The kernel carries ``C_e =
G_parent * M_e * D_e`` with ``M_e = F_e / F_e'`` and ``D_e`` the subtree sum below e, so no division
happens per row (``1 / F_e'`` is precomputed per node) and no branch depends on the row's values.

The kernels (``models/_treeshap_kernels.py``) run this on 8-lane SIMD vectors in two ways: a batch puts
8 *rows* in the lanes, so every split decision is one vector compare, every node record is read once
for 8 rows and a tree costs K vector iterations per node (no lane is wasted whatever K is); one row
(``explain_row``, and a batch's last row when it is alone in its block) puts the K *points* in the lanes,
one iteration per node while K <= 8 (D <= 16).

Per row the cost is O(sum over trees of nodes * K) = O(T * L * D) -- against O(T * L * D^2) for classic
TreeSHAP -- and the precomputation is O(nodes * K) memory, polynomial in depth (D <= number of
features): deep trees simply use more points, there is no exponential table, hence no depth cap and no
fallback path.

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
import os
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


#: Rows below which a batch is explained on the calling thread. Launching numba's threads costs more
#: than it saves on a few rows, and in a service the other requests already keep every core busy.
PARALLEL_MIN_ROWS = 64


def _n_chunks(n_rows: int) -> int:
    """Work items for the parallel kernels: a few per thread, for load balance."""
    return min(n_rows, 8 * numba.get_num_threads())


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _in_parallel(n_rows: int) -> bool:
    """Whether a batch goes to the parallel kernels: a large one, where the process may use more than
    one CPU. A service worker bound to one CPU (service.affinity) never does: its kernel threads
    would only take turns on that CPU."""
    return n_rows >= PARALLEL_MIN_ROWS and _usable_cpus() > 1


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


def _points(k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k Gauss-Legendre nodes and weights on [0, 1]."""
    x, w = np.polynomial.legendre.leggauss(k)
    return 0.5 * (x + 1.0), 0.5 * w


@functools.cache
def _lane_vectors(k: int, mode: int) -> tuple[np.ndarray, np.ndarray]:
    """(J, 8) point and weight vectors of a k-point rule in a kernel mode: MODE_BATCH broadcasts each
    point to the 8 lanes (J = k), MODE_ROW packs 8 points per vector (J = ceil(k / 8)), padded with the
    harmless point 0.5 of weight 0."""
    t, w = _points(k)
    if mode == _k.MODE_BATCH:
        return np.repeat(t[:, None], _k.LANES, axis=1), np.repeat(w[:, None], _k.LANES, axis=1)
    pad = -k % _k.LANES
    t = np.concatenate([t, np.full(pad, 0.5)])
    w = np.concatenate([w, np.zeros(pad)])
    return t.reshape(-1, _k.LANES), w.reshape(-1, _k.LANES)


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
        # The integrands have degree <= depth - 1: k points are exact up to degree 2k - 1.
        self.k = -(-self.depth // 2)
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
            if feat[n] >= 0:
                if prev[kids[n][0]] >= 0:  # then also prev[kids[n][1]] >= 0
                    flags[n] |= _k.FLAG_PREV
                for side, leaf_flag in enumerate((_k.FLAG_LEAF_L, _k.FLAG_LEAF_R)):
                    if feat[kids[n][side]] < 0:
                        flags[n] |= leaf_flag
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
        new_id = {n: i for i, n in enumerate(internal)}
        self.n_int = len(internal)
        self.used_features = {feat[n] for n in internal}
        n_rec = max(1, self.n_int)
        ei = np.zeros((n_rec, _k.EI_WIDTH), dtype=np.int32)
        ef = np.zeros((n_rec, _k.EF_WIDTH), dtype=np.float64)
        self.ia_p: list[float] = []  # merged P' of each iA slot (nodes that are a previous edge)
        ia_slot: dict[int, int] = {}
        if self.n_int == 0:
            ef[0, _k.EF_V_L] = val[0]
        side_cols = (
            (_k.EI_SLOT_L, _k.EI_PREV_L, _k.EI_IA_L, _k.EF_P_L, _k.EF_B_L, _k.EF_PE_L, _k.EF_V_L),
            (_k.EI_SLOT_R, _k.EI_PREV_R, _k.EI_IA_R, _k.EF_P_R, _k.EF_B_R, _k.EF_PE_R, _k.EF_V_R),
        )
        # Slot -1 (a leaf child) becomes DUMP in the explainer, which knows the model's largest tree.  The
        # previous-edge fields are read for FLAG_PREV nodes only, whose two sides both have one.
        for i, n in enumerate(internal):
            ei[i, _k.EI_FEAT] = feat[n]
            ei[i, _k.EI_FLAGS] = flags[n]
            ei[i, _k.EI_CATOFF] = cat_off[n]
            ei[i, _k.EI_CATNW] = cat_nw[n]
            ef[i, _k.EF_THR] = thr[n]
            for side, (c_slot, c_prev, c_ia, c_p, c_b, c_pe, c_v) in enumerate(side_cols):
                c = kids[n][side]
                ei[i, c_slot] = new_id.get(c, -1)
                ef[i, c_p] = pm[c]
                ef[i, c_pe] = pedge[c]
                ef[i, c_v] = val[c]
                a = prev[c]
                if a < 0:
                    ef[i, c_b] = 0.0  # 1 - P' with P' = 1
                else:
                    ei[i, c_prev] = new_id[a]
                    ef[i, c_b] = 1.0 - pm[a]
                    if a not in ia_slot:
                        ia_slot[a] = len(self.ia_p)
                        self.ia_p.append(pm[a])
                    ei[i, c_ia] = ia_slot[a]
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
        max_nint = max(tr.n_int for tr in trees)
        dump_slot = max_nint  # see the kernels' module notes
        # The point and weight vectors of each (point count, mode) in use, and per tree and mode the iA
        # vectors 1 / (P' + t (1 - P')) of the tree's previous-edge slots at the mode's point vectors.
        tw: list[np.ndarray] = [np.zeros(_k.LANES)]  # (never empty)
        tw_off: dict[tuple[int, int], tuple[int, int, int]] = {}  # (k, mode) -> (J, points, weights)
        # One iA table per mode (then the two end to end): a row reads only its mode's, compactly.
        ia: tuple[list[np.ndarray], list[np.ndarray]] = ([np.zeros(_k.LANES)], [])
        ia_size = [_k.LANES, 0]
        tw_size = _k.LANES
        n_rec = sum(tr.ei.shape[0] for tr in trees)
        ei = np.empty((n_rec, _k.EI_WIDTH), dtype=np.int32)
        ef = np.empty((n_rec, _k.EF_WIDTH), dtype=np.float64)
        tri = np.zeros((len(trees), _k.TR_WIDTH), dtype=np.int64)
        off = 0
        expected = 0.0
        for t, tr in enumerate(trees):
            r = tr.ei.shape[0]
            tri[t, _k.TR_OFF] = off
            tri[t, _k.TR_NINT] = tr.n_int
            for mode in (_k.MODE_BATCH, _k.MODE_ROW) if tr.n_int else ():
                t_vec, w_vec = _lane_vectors(tr.k, mode)
                if (tr.k, mode) not in tw_off:
                    tw_off[tr.k, mode] = (t_vec.shape[0], tw_size, tw_size + t_vec.size)
                    tw += [t_vec.ravel(), w_vec.ravel()]
                    tw_size += 2 * t_vec.size
                m0 = _k.TR_MODE + _k.TR_MODE_WIDTH * mode
                tri[t, m0 + _k.TR_J], tri[t, m0 + _k.TR_TV], tri[t, m0 + _k.TR_WV] = tw_off[tr.k, mode]
                tri[t, m0 + _k.TR_IA] = ia_size[mode]
                p = np.array(tr.ia_p)[:, None, None]
                ia[mode].append((1.0 / (p + t_vec * (1.0 - p))).ravel())  # slot-major: J vectors a slot
                ia_size[mode] += ia[mode][-1].size
            rec = tr.ei
            for col in (_k.EI_SLOT_L, _k.EI_SLOT_R):
                rec[:, col] = np.where(rec[:, col] < 0, dump_slot, rec[:, col])
            ei[off : off + r] = rec
            ef[off : off + r] = tr.ef
            expected += tr.expected
            off += r
        self.expected_value = float(expected)
        self._ei = ei.reshape(-1)  # flat records for the kernels
        self._ef = ef.reshape(-1)
        tri[:, _k.TR_MODE + _k.TR_MODE_WIDTH * _k.MODE_ROW + _k.TR_IA] += ia_size[_k.MODE_BATCH]
        self._ia = np.concatenate(ia[_k.MODE_BATCH] + ia[_k.MODE_ROW])
        self._tw = np.concatenate(tw)
        self._trees = tri
        self._catw = np.asarray(catw if catw else [0], dtype=np.int64)
        self._max_nint = max_nint
        self._max_j = max(1, int(tri[:, _k.TR_MODE + _k.TR_J].max()))  # MODE_BATCH has the most
        # The model as every SHAP kernel takes it, between the rows and the outputs.
        self._model = (
            self._ei,
            self._ef,
            self._ia,
            self._tw,
            self._trees,
            self._catw,
            self.n_features,
            self.expected_value,
            self._max_nint,
            self._max_j,
        )
        self.n_trees = len(trees)
        # Most distinct features on any root-leaf path; sets the number of quadrature points.
        self.max_distinct_depth = max(tr.depth for tr in trees)
        self._points_per_tree = np.array([tr.k for tr in trees])

    @property
    def points_per_tree(self) -> np.ndarray:
        """Gauss-Legendre points used per tree: ceil(D / 2) for a tree whose root-leaf paths have at most
        D distinct features (0 for a single-leaf tree)."""
        return self._points_per_tree.copy()

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
        n = A.shape[0]
        out = np.empty(n)
        if not _in_parallel(n):
            _k._raw_rows(A, np.int64(0), np.int64(n), self._ei, self._ef, self._trees, self._catw, out)
            return out
        with _PARALLEL_LOCK:
            _k.raw_batch_kernel(A, self._ei, self._ef, self._trees, self._catw, _n_chunks(n), out)
        return out

    def shap_values(self, X: npt.ArrayLike) -> np.ndarray:
        """(n, n_features + 1) contributions, last column = base value, as ``pred_contrib=True``."""
        return self.explain(X)[1]

    def explain(self, X: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Batch (raw margins (n,), contributions (n, n_features + 1)); large batches' rows in parallel."""
        A = self._matrix(X)
        n = A.shape[0]
        out = np.empty((n, self.n_features + 1))
        raw = np.empty(n)
        if not _in_parallel(n):
            _k._shap_rows(A, np.int64(0), np.int64(n), *self._model, out, raw)
            return raw, out
        with _PARALLEL_LOCK:
            _k.shap_batch_kernel(A, *self._model, _n_chunks(n), out, raw)
        return raw, out

    def explain_row(self, x: npt.ArrayLike) -> tuple[float, np.ndarray]:
        """One row (1-D float64), single-threaded: (raw margin, contributions with the base value last)."""
        if not (
            isinstance(x, np.ndarray) and x.dtype == np.float64 and x.ndim == 1 and x.flags.c_contiguous
        ):  # one compiled signature only: anything else would trigger a compilation on the request path
            x = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
        if x.shape[0] != self.n_features:
            raise ValueError(f"expected {self.n_features} features, got {x.shape[0]}")
        return _k.explain_row_kernel(x, *self._model)

    def warmup(self) -> None:
        """Compile (or load from numba's cache) and run every kernel once, so no request pays for it."""
        x = np.zeros(self.n_features)
        self.explain_row(x)
        for rows in (2, PARALLEL_MIN_ROWS):  # the calling thread's kernels and the parallel ones
            X = np.zeros((rows, self.n_features))
            self.explain(X)
            self.raw_score(X)
