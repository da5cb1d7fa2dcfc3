"""The chain model: a serial chain of rotational joints with limits, validated on construction.

A joint's world frame is ``parent_frame @ rest @ R(angles)`` where ``R`` is the joint's Euler
rotation in its own order (see :mod:`.rotations`). This is exactly how Blender composes a pose
bone (``parent_pose @ parent_rest^-1 @ rest @ basis``), and a URDF revolute joint is a joint with
one free axis. The tip is ``tip_offset`` in the last joint's frame; the chain's base frame is
``base`` (any invertible affine, e.g. an armature's world matrix with non-uniform scale).

Angles are radians. A chain has ``n`` joints with three Euler angles each, of which ``m`` are free
(the solver's variables, ordered base to tip, X before Y before Z within a joint). Locked axes keep
their ``fixed`` value.

A joint may also stretch (:mod:`.stretch`): its length factor is one more variable. The solver's
variables are then the free angles followed by the length factors (base to tip); ``n_dofs`` counts
both, ``n_angles`` the angles. A chain without stretching joints has only angles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from .errors import ChainDefinitionError
from .rotations import EULER_ORDERS, order_indices
from .stretch import STRETCH_LIMITS, stretch_weight
from .types import AnyArray, FloatArray

_AXES = "XYZ"
_MEMO_SIZE = 8  # entries per name kept by Chain.memo
_MISSING = object()  # Chain.memo: no entry (None may be a remembered value)
T = TypeVar("T")


def _vector3(value: ArrayLike, what: str) -> FloatArray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (3,):
        raise ChainDefinitionError(f"{what} must have 3 values (x, y, z), got shape {arr.shape}")
    return arr


@dataclass(frozen=True)
class Joint:
    """One joint: a rest transform relative to its parent and up to three rotational DOFs.

    Attributes:
        name: Used in error messages (a bone or URDF joint name).
        rest: ``(4, 4)`` rigid transform from the parent joint's frame (or the chain base for the
            first joint) to this joint's frame at zero angles. Must be a rotation plus translation.
        order: Euler order of the joint's rotation, one of ``EULER_ORDERS``.
        free: Per axis (x, y, z): True if the solver may move that angle.
        lower: Per axis lower limit in radians (``-inf`` for none). May exclude zero.
        upper: Per axis upper limit in radians (``+inf`` for none). May exclude zero.
        fixed: Per axis value used for locked axes, in radians.
        stretch: The bone's IK Stretch, 0..1: above 0 the joint gets a length factor (see
            :mod:`.stretch`); 0 (default) it only turns.
    """

    name: str
    rest: FloatArray = field(default_factory=lambda: np.eye(4))
    order: str = "XYZ"
    free: tuple[bool, bool, bool] = (True, True, True)
    lower: FloatArray = field(default_factory=lambda: np.full(3, -np.inf))
    upper: FloatArray = field(default_factory=lambda: np.full(3, np.inf))
    fixed: FloatArray = field(default_factory=lambda: np.zeros(3))
    stretch: float = 0.0

    def __post_init__(self) -> None:
        where = f"joint {self.name!r}"
        stretch = float(self.stretch)
        if not 0.0 <= stretch <= 1.0:  # also refuses NaN
            raise ChainDefinitionError(f"{where}: stretch must be within 0..1, got {self.stretch!r}")
        object.__setattr__(self, "stretch", stretch)
        rest = np.asarray(self.rest, dtype=np.float64)
        if rest.shape != (4, 4) or not np.all(np.isfinite(rest)):
            raise ChainDefinitionError(f"{where}: rest must be a finite 4x4 matrix, got shape {rest.shape}")
        rot = rest[:3, :3]
        if not np.allclose(rot.T @ rot, np.eye(3), atol=1e-6) or np.linalg.det(rot) < 0:
            raise ChainDefinitionError(f"{where}: rest must be a rigid transform (rotation + translation), "
                                       "without scale, shear or mirroring")
        if not np.allclose(rest[3], (0, 0, 0, 1)):
            raise ChainDefinitionError(f"{where}: rest's last row must be (0, 0, 0, 1)")
        if self.order not in EULER_ORDERS:
            raise ChainDefinitionError(f"{where}: order {self.order!r} is not one of {', '.join(EULER_ORDERS)}")
        free = tuple(bool(f) for f in self.free)
        if len(free) != 3:
            raise ChainDefinitionError(f"{where}: free must have 3 flags (x, y, z)")
        lower = _vector3(self.lower, f"{where}: lower")
        upper = _vector3(self.upper, f"{where}: upper")
        fixed = _vector3(self.fixed, f"{where}: fixed")
        for i, axis in enumerate(_AXES):
            if np.isnan(lower[i]) or np.isnan(upper[i]) or not np.isfinite(fixed[i]):
                raise ChainDefinitionError(f"{where}: axis {axis} has a NaN limit or a non-finite fixed value")
            if free[i] and lower[i] > upper[i]:
                raise ChainDefinitionError(
                    f"{where}: axis {axis} lower limit {lower[i]:.6g} > upper limit {upper[i]:.6g}")
        object.__setattr__(self, "rest", rest)
        object.__setattr__(self, "free", free)
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        object.__setattr__(self, "fixed", fixed)


@dataclass(frozen=True)
class Chain:
    """A validated serial chain plus the index arrays the solvers use.

    Attributes:
        joints: The joints, base first.
        tip_offset: ``(3,)`` tip position in the last joint's frame (a bone's ``(0, length, 0)``).
        base: ``(4, 4)`` affine from chain space to world (invertible; may scale non-uniformly).
    """

    joints: tuple[Joint, ...]
    tip_offset: FloatArray = field(default_factory=lambda: np.zeros(3))
    base: FloatArray = field(default_factory=lambda: np.eye(4))

    # Derived arrays (filled in __post_init__), documented for readers of the solver code:
    #   rest (n,4,4); orders (n,3) axis indices in application order; position_in_order (n,3)
    #   where each axis sits in that order (0 = applied first); free_joint / free_axis (m,);
    #   lower / upper (m,); fixed (n,3) angles for locked axes; base_inverse (4,4).
    # The FK plan skips rotations that are always identity (a locked axis fixed at zero):
    #   factor_joint / factor_axis (P,) the (joint, axis) rotations FK must build; slot_factor
    #   (n, S) which factor a joint applies in its s-th slot (application order; P = identity
    #   padding); free_slot (m,) the slot of each free angle; rest_rotates (n,) rest has a rotation.
    # Stretch (none for most chains): stretch_joint (k,) the joints with a length factor, base first
    #   (variables m_a .. m_a + k - 1 after the m_a free angles); stretch_end (k,) where each factor's
    #   segment ends: the next stretching joint, or n for the tip; dof_joint (m_a + k,) the joint of
    #   every variable. lower/upper hold the factors' limits after the angles'.
    rest: FloatArray = field(init=False, repr=False)
    orders: AnyArray = field(init=False, repr=False)
    position_in_order: AnyArray = field(init=False, repr=False)
    free_joint: AnyArray = field(init=False, repr=False)
    free_axis: AnyArray = field(init=False, repr=False)
    factor_joint: AnyArray = field(init=False, repr=False)
    factor_axis: AnyArray = field(init=False, repr=False)
    slot_factor: AnyArray = field(init=False, repr=False)
    free_slot: AnyArray = field(init=False, repr=False)
    rest_rotates: AnyArray = field(init=False, repr=False)
    stretch_joint: AnyArray = field(init=False, repr=False)
    stretch_end: AnyArray = field(init=False, repr=False)
    dof_joint: AnyArray = field(init=False, repr=False)
    lower: FloatArray = field(init=False, repr=False)
    upper: FloatArray = field(init=False, repr=False)
    fixed: FloatArray = field(init=False, repr=False)
    base_inverse: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        joints = tuple(self.joints)
        if not joints:
            raise ChainDefinitionError("a chain needs at least one joint (got an empty chain)")
        for joint in joints:
            if not isinstance(joint, Joint):
                raise ChainDefinitionError(f"chain joints must be Joint instances, got {type(joint).__name__}")
        names = [j.name for j in joints]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ChainDefinitionError(f"joint names must be unique; repeated: {', '.join(map(repr, duplicates))}")
        tip = _vector3(self.tip_offset, "tip_offset")
        base = np.asarray(self.base, dtype=np.float64)
        if base.shape != (4, 4) or not np.all(np.isfinite(base)):
            raise ChainDefinitionError(f"base must be a finite 4x4 matrix, got shape {base.shape}")
        if not np.all(np.isfinite(tip)):
            raise ChainDefinitionError("tip_offset must be finite")
        if abs(np.linalg.det(base[:3, :3])) < 1e-12:
            raise ChainDefinitionError("base is singular (zero scale on some axis)")

        free_joint, free_axis = [], []
        for j, joint in enumerate(joints):
            for axis in range(3):
                if joint.free[axis]:
                    free_joint.append(j)
                    free_axis.append(axis)
        if not free_joint:
            raise ChainDefinitionError(
                f"every rotation axis of every joint is locked ({', '.join(map(repr, names))}): nothing to solve")
        lengths = [np.linalg.norm(j.rest[:3, 3]) for j in joints[1:]] + [np.linalg.norm(tip)]
        if sum(lengths) <= 1e-12:
            raise ChainDefinitionError("the chain has zero length: every joint and the tip sit at the base")

        orders = np.array([order_indices(j.order) for j in joints], dtype=np.intp)
        position = np.empty_like(orders)
        for j in range(len(joints)):
            position[j, orders[j]] = np.arange(3)
        set_ = object.__setattr__
        set_(self, "joints", joints)
        set_(self, "tip_offset", tip)
        set_(self, "base", base)
        set_(self, "rest", np.stack([j.rest for j in joints]))
        set_(self, "orders", orders)
        set_(self, "position_in_order", position)
        set_(self, "free_joint", np.array(free_joint, dtype=np.intp))
        set_(self, "free_axis", np.array(free_axis, dtype=np.intp))
        stretching = [j for j, joint in enumerate(joints) if joint.stretch > 0]
        ends = [*stretching[1:], len(joints)]
        low, high = STRETCH_LIMITS
        set_(self, "stretch_joint", np.array(stretching, dtype=np.intp))
        set_(self, "stretch_end", np.array(ends[:len(stretching)], dtype=np.intp))
        set_(self, "dof_joint", np.array([*free_joint, *stretching], dtype=np.intp))
        set_(self, "lower", np.array([*(joints[j].lower[a] for j, a in zip(free_joint, free_axis, strict=False)),
                                      *(low for _ in stretching)], dtype=np.float64))
        set_(self, "upper", np.array([*(joints[j].upper[a] for j, a in zip(free_joint, free_axis, strict=False)),
                                      *(high for _ in stretching)], dtype=np.float64))
        set_(self, "fixed", np.stack([j.fixed for j in joints]))
        set_(self, "base_inverse", np.linalg.inv(base))
        self._plan_factors(joints, orders)

    def _plan_factors(self, joints: tuple[Joint, ...], orders: AnyArray) -> None:
        factor_joint: list[int] = []
        factor_axis: list[int] = []
        per_joint: list[list[int]] = []
        slot_of: dict[tuple[int, int], int] = {}
        for j, joint in enumerate(joints):
            slots: list[int] = []
            for axis in orders[j]:  # application order
                if joint.free[axis] or joint.fixed[axis] != 0.0:
                    slot_of[(j, int(axis))] = len(slots)
                    slots.append(len(factor_joint))
                    factor_joint.append(j)
                    factor_axis.append(int(axis))
            per_joint.append(slots)
        width = max(1, max(len(slots) for slots in per_joint))
        identity = len(factor_joint)
        slot_factor = np.full((len(joints), width), identity, dtype=np.intp)
        for j, slots in enumerate(per_joint):
            slot_factor[j, : len(slots)] = slots
        set_ = object.__setattr__
        set_(self, "factor_joint", np.array(factor_joint, dtype=np.intp))
        set_(self, "factor_axis", np.array(factor_axis, dtype=np.intp))
        set_(self, "slot_factor", slot_factor)
        free_pairs = zip(self.free_joint, self.free_axis, strict=True)
        set_(self, "free_slot", np.array([slot_of[(int(j), int(a))] for j, a in free_pairs], dtype=np.intp))
        set_(self, "rest_rotates", ~np.all(np.isclose(self.rest[:, :3, :3], np.eye(3), atol=0, rtol=0), axis=(1, 2)))

    # ----------------------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        rest: ArrayLike,
        *,
        orders: Sequence[str] | str = "XYZ",
        free: ArrayLike | None = None,
        lower: ArrayLike | None = None,
        upper: ArrayLike | None = None,
        fixed: ArrayLike | None = None,
        tip_offset: ArrayLike = (0.0, 0.0, 0.0),
        base: ArrayLike | None = None,
        names: Sequence[str] | None = None,
        stretch: ArrayLike | None = None,
    ) -> Chain:
        """Build a chain from stacked arrays.

        Args:
            rest: ``(n, 4, 4)`` rest transforms, each relative to its parent joint.
            orders: One Euler order for all joints, or one per joint.
            free: ``(n, 3)`` booleans; default all free.
            lower: ``(n, 3)`` lower limits in radians; default unlimited.
            upper: ``(n, 3)`` upper limits in radians; default unlimited.
            fixed: ``(n, 3)`` values of locked axes in radians; default zero.
            tip_offset: ``(3,)`` tip in the last joint's frame.
            base: ``(4, 4)`` chain-to-world affine; default identity.
            names: Joint names; default ``joint0``, ``joint1``...
            stretch: ``(n,)`` each joint's IK Stretch 0..1 (see :mod:`.stretch`); default none.
        """
        rest_arr = np.asarray(rest, dtype=np.float64)
        if rest_arr.ndim != 3 or rest_arr.shape[1:] != (4, 4):
            raise ChainDefinitionError(f"rest must have shape (n, 4, 4), got {rest_arr.shape}")
        n = rest_arr.shape[0]

        def per_joint(value: ArrayLike | None, default: float | bool, what: str) -> AnyArray:
            if value is None:
                return np.full((n, 3), default)
            arr = np.asarray(value)
            if arr.shape != (n, 3):
                raise ChainDefinitionError(f"{what} must have shape ({n}, 3), got {arr.shape}")
            return arr

        order_list = [orders] * n if isinstance(orders, str) else list(orders)
        if len(order_list) != n:
            raise ChainDefinitionError(f"orders must name {n} Euler orders, got {len(order_list)}")
        name_list = list(names) if names is not None else [f"joint{i}" for i in range(n)]
        if len(name_list) != n:
            raise ChainDefinitionError(f"names must have {n} entries, got {len(name_list)}")
        free_arr = per_joint(free, True, "free").astype(bool)
        lower_arr = per_joint(lower, -np.inf, "lower")
        upper_arr = per_joint(upper, np.inf, "upper")
        fixed_arr = per_joint(fixed, 0.0, "fixed")
        stretch_arr = np.zeros(n) if stretch is None else np.asarray(stretch, dtype=np.float64)
        if stretch_arr.shape != (n,):
            raise ChainDefinitionError(f"stretch must have shape ({n},), got {stretch_arr.shape}")
        joints = tuple(
            Joint(name_list[i], rest_arr[i], order_list[i],
                  (bool(free_arr[i, 0]), bool(free_arr[i, 1]), bool(free_arr[i, 2])),
                  lower_arr[i], upper_arr[i], fixed_arr[i], float(stretch_arr[i]))
            for i in range(n)
        )
        return cls(joints, np.asarray(tip_offset, dtype=np.float64),
                   np.eye(4) if base is None else np.asarray(base, dtype=np.float64))

    # ----------------------------------------------------------------------------------------
    @property
    def n_joints(self) -> int:
        """Number of joints ``n``."""
        return len(self.joints)

    @property
    def n_dofs(self) -> int:
        """Number of the solver's variables ``m``: the free angles, then the length factors."""
        return int(self.free_joint.shape[0] + self.stretch_joint.shape[0])

    @property
    def n_angles(self) -> int:
        """Number of free angles (``n_dofs`` without the length factors)."""
        return int(self.free_joint.shape[0])

    @property
    def n_stretch(self) -> int:
        """Number of stretching joints (length factors among the variables)."""
        return int(self.stretch_joint.shape[0])

    @property
    def names(self) -> tuple[str, ...]:
        """Joint names, base first."""
        return tuple(j.name for j in self.joints)

    # Derived geometry below is cached on first use (cached_property writes the instance __dict__
    # directly, which a frozen dataclass allows); every solve asks for it.
    @cached_property
    def parents(self) -> AnyArray:
        """``(n,)`` each joint's parent joint, the one before (``-1`` for the first): a chain is the
        :class:`.tree.Tree` whose joints hang one from the next, and FK is the trees'
        (:func:`.fk.forward_joints`)."""
        out = np.arange(-1, self.n_joints - 1, dtype=np.intp)
        out.flags.writeable = False
        return out

    @cached_property
    def length(self) -> float:
        """Sum of link lengths (joint-to-joint distances plus the tip offset), in chain units."""
        links = np.linalg.norm(self.rest[1:, :3, 3], axis=-1).sum()
        return float(links + np.linalg.norm(self.tip_offset))

    @cached_property
    def world_length(self) -> float:
        """:attr:`length` in world units: times the base's mean scale (never below 1e-12)."""
        scale = float(np.cbrt(abs(np.linalg.det(self.base[:3, :3]))))
        return max(self.length * scale, 1e-12)

    @cached_property
    def reach_sphere(self) -> tuple[FloatArray, float]:
        """``(centre (3,), radius)`` in world space: the first joint's origin, which no angle
        moves, and the farthest any pose can put the tip from it (the sum of the links, scaled by
        the base, and by the largest length factor past a stretching joint)."""
        centre, sizes = self._links
        if self.n_stretch:  # link j + 1 (the tip for the last) is scaled by joint j's frame scale
            scaled = np.arange(self.n_joints) >= self.stretch_joint[0]
            sizes = np.where(scaled, sizes * STRETCH_LIMITS[1], sizes)
        return centre, float(sizes.sum())

    @cached_property
    def rigid_reach_sphere(self) -> tuple[FloatArray, float]:
        """:attr:`reach_sphere` with every length factor at 1: what the angles alone reach."""
        centre, sizes = self._links
        return centre, float(sizes.sum())

    @cached_property
    def _links(self) -> tuple[FloatArray, FloatArray]:
        world_links = self.base[:3, :3] @ np.concatenate([self.rest[1:, :3, 3], self.tip_offset[None]]).T
        centre = self.base[:3, :3] @ self.rest[0, :3, 3] + self.base[:3, 3]
        return centre, np.linalg.norm(world_links, axis=0)

    @cached_property
    def ball_joints(self) -> AnyArray:
        """``(n,)`` True for joints whose three axes are all free and unlimited (see :mod:`.posture`)."""
        return np.asarray([bool(np.all(j.free) and np.all(np.isinf(j.lower)) and np.all(np.isinf(j.upper)))
                           for j in self.joints])

    @cached_property
    def turn_rank(self) -> AnyArray:
        """``(m,)`` each free angle's place in the order FK turns them: base joint first and, within
        a joint, the outermost slot (the last applied) first. An angle turns everything ranked after
        it, axes included, which is what the tip's second derivatives need (see ``lm._curvature``)."""
        # A joint's length factor scales what follows its rotations: it ranks after its angles.
        slot = np.concatenate([-self.free_slot, np.full(self.n_stretch, 4)])
        order = np.lexsort((slot, self.dof_joint))
        rank = np.empty(self.n_dofs, dtype=np.int64)
        rank[order] = np.arange(self.n_dofs)
        return rank

    def memo(self, name: str, key: tuple[object, ...], make: Callable[[], T]) -> T:
        """``make()``, remembered on the chain under ``(name, key)`` (the last few per name): for
        data derived from the chain and a few per-solve settings, e.g. the comfort pose's rotations,
        which every solve of a frame handler asks for again."""
        table = self._memo_table(name)
        value = table.get(key, _MISSING)
        if value is _MISSING:
            if len(table) >= _MEMO_SIZE:
                table.pop(next(iter(table)))
            value = table[key] = make()
        return value  # type: ignore[no-any-return]

    def memo_of(self, name: str, sources: tuple[object, ...], make: Callable[[], T],
                extra: tuple[object, ...] = ()) -> T:
        """:meth:`memo` keyed by the identity of ``sources`` (arrays the chain's memos hand out,
        such as a resolved comfort pose), which costs nothing to hash, and by the values ``extra``.
        The entry keeps the sources alive, so no other object can take their ids while it is
        remembered."""
        # A single solve asks about a dozen of these: the hit path is kept to two dict lookups.
        table = self._memo_table(name)
        key = (*map(id, sources), *extra)
        entry = table.get(key)
        if entry is None:
            entry = self.memo(name, key, lambda: (sources, make()))
        return entry[1]

    def _memo_table(self, name: str) -> dict[tuple[object, ...], Any]:
        memos: dict[str, dict[tuple[object, ...], Any]] | None = self.__dict__.get("_memo")
        if memos is None:
            memos = self.__dict__["_memo"] = {}  # derived data, kept outside the frozen fields
        table = memos.get(name)
        if table is None:
            table = memos[name] = {}
        return table

    def dof_names(self) -> list[str]:
        """``"joint.X"``-style names of the variables, in solver order (``"joint.stretch"`` for a
        length factor)."""
        angles = [f"{self.joints[j].name}.{_AXES[a]}" for j, a in zip(self.free_joint, self.free_axis, strict=False)]
        return angles + [f"{self.joints[j].name}.stretch" for j in self.stretch_joint]

    def expand(self, q: ArrayLike) -> FloatArray:
        """Per-joint angles ``(..., n, 3)`` from the variables ``(..., m)`` (their free angles;
        length factors, if any, are left out: see :meth:`factors`); locked axes get ``fixed``."""
        q_arr = np.asarray(q, dtype=np.float64)
        if self.n_stretch:
            q_arr = q_arr[..., :self.n_angles]
        lead = q_arr.shape[:-1]
        out = np.empty((*lead, 3 * self.n_joints))
        out[...] = self.fixed.ravel()
        out[..., self._free_flat] = q_arr  # one flat index: cheaper than a (joint, axis) pair
        return out.reshape(*lead, self.n_joints, 3)

    def factors(self, q: ArrayLike) -> FloatArray:
        """Per-joint length factors ``(..., n)`` from the variables ``(..., m)``: 1 where a joint
        does not stretch (see :mod:`.stretch`)."""
        q_arr = np.asarray(q, dtype=np.float64)
        out = np.ones((*q_arr.shape[:-1], self.n_joints))
        out[..., self.stretch_joint] = q_arr[..., self.n_angles:]
        return out

    def frame_scales(self, q: ArrayLike) -> FloatArray:
        """``(..., n)`` the uniform scale of each joint's frame: its length factor where it
        stretches, else the scale of the joint before it (1 before the first stretching joint)."""
        factors = self.factors(q)
        out = np.ones_like(factors)
        for j in range(self.n_joints):
            if self.joints[j].stretch > 0:
                out[..., j] = factors[..., j]
            elif j > 0:
                out[..., j] = out[..., j - 1]
        return out

    def channel_scales(self, q: ArrayLike) -> FloatArray:
        """``(..., n)`` each joint's own uniform scale, what a bone's scale channels hold for
        :meth:`frame_scales` under inherited scale: the frame scale divided by the one before it
        (exactly 1 where a joint does not stretch)."""
        frames = self.frame_scales(q)
        before = np.concatenate([np.ones_like(frames[..., :1]), frames[..., :-1]], axis=-1)
        return np.asarray(np.where([j.stretch > 0 for j in self.joints], frames / before, 1.0))

    @cached_property
    def neutral(self) -> FloatArray:
        """``(m,)`` the rest pose's variables: angles 0, length factors 1 (read-only)."""
        out = np.zeros(self.n_dofs)
        out[self.n_angles:] = 1.0
        out.flags.writeable = False
        return out

    @cached_property
    def stretch_weights(self) -> FloatArray:
        """``(k,)`` each length factor's unitless comfort weight (:func:`.stretch.stretch_weight`)."""
        return np.array([stretch_weight(self.joints[j].stretch) for j in self.stretch_joint], dtype=np.float64)

    @cached_property
    def stretch_lengths(self) -> FloatArray:
        """``(k,)`` the chain-space rest length of each length factor's segment: the links from its
        joint to the next stretching joint (or to the tip)."""
        links = np.concatenate([np.linalg.norm(self.rest[1:, :3, 3], axis=-1), [np.linalg.norm(self.tip_offset)]])
        return np.array([links[j:end].sum() for j, end in zip(self.stretch_joint, self.stretch_end, strict=True)],
                        dtype=np.float64)

    @cached_property
    def _free_flat(self) -> AnyArray:
        """``(m_a,)`` each free angle's place in a joint-major flattened ``(n, 3)`` array."""
        return np.asarray(3 * self.free_joint + self.free_axis)

    @cached_property
    def unlimited(self) -> AnyArray:
        """``(m,)`` True for free angles with no limit either way (they may wrap by whole turns)."""
        return np.asarray(np.isinf(self.lower) & np.isinf(self.upper))

    @cached_property
    def any_unlimited(self) -> bool:
        """Some free angle has no limit either way."""
        return bool(self.unlimited.any())

    def compress(self, angles: ArrayLike, factors: ArrayLike | None = None) -> FloatArray:
        """The variables ``(..., m)`` from per-joint angles ``(..., n, 3)`` and, for a chain that
        stretches, per-joint length factors ``(..., n)`` (default 1: the rest length)."""
        arr = np.asarray(angles, dtype=np.float64)
        free = np.asarray(arr[..., self.free_joint, self.free_axis])
        if not self.n_stretch:
            return free
        lead = free.shape[:-1]
        stretch = (np.ones((*lead, self.n_stretch)) if factors is None
                   else np.broadcast_to(np.asarray(factors, dtype=np.float64)[..., self.stretch_joint],
                                        (*lead, self.n_stretch)))
        return np.concatenate([free, stretch], axis=-1)

    def clamp(self, q: ArrayLike) -> FloatArray:
        """Free angles projected onto the limits (the nearest point inside the box)."""
        # np.minimum/np.maximum: the same result as np.clip at a third of its call overhead.
        return np.minimum(np.maximum(np.asarray(q, dtype=np.float64), self.lower), self.upper)

    def limit_violation(self, q: ArrayLike) -> FloatArray:
        """Largest amount (radians; length factors count as they are) by which each configuration
        ``(..., m)`` leaves the limits."""
        q_arr = np.asarray(q, dtype=np.float64)
        below = np.maximum(self.lower - q_arr, 0.0)
        above = np.maximum(q_arr - self.upper, 0.0)
        return np.asarray(np.maximum(below, above).max(axis=-1, initial=0.0))

    def with_base(self, base: ArrayLike) -> Chain:
        """A copy of this chain with another base transform (e.g. the armature moved)."""
        return Chain(self.joints, self.tip_offset, np.asarray(base, dtype=np.float64))
