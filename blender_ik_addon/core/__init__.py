"""Pure-numpy inverse kinematics core. Never imports bpy; any Python 3.11 with numpy can use it.

Conventions:
    * Angles are radians; lengths are world units (Blender: metres at unit scale).
    * Euler order ``"XYZ"`` applies X first: ``R = Rz @ Ry @ Rx`` (as Blender's ``mathutils``).
    * Quaternions are ``(w, x, y, z)``.
    * Batched arrays put the target/frame axis first: ``(F, 3)`` targets, ``(F, m)`` free angles,
      ``(F, n, 3)`` per-joint angles.
    * A chain has ``n`` joints with three Euler angles each; the ``m`` free ones (not locked) are
      the solver's variables, ordered base to tip and X, Y, Z within a joint. A joint that
      stretches adds a length factor after them (:mod:`.stretch`; ``SolveResult.scales``).

Typical use::

    from blender_ik_addon.core import Chain, solve, solve_batch
    chain = Chain.from_arrays(rest, orders="XYZ", free=free, lower=lower, upper=upper,
                              tip_offset=(0, 1, 0))
    result = solve(chain, (0.3, 1.2, 0.5))
    result.angles, result.error, result.converged
"""

from .chain import Chain, Joint
from .errors import ChainDefinitionError, IKError, IKInputError
from .fk import Kinematics, forward, position_jacobian, tip_positions
from .objectives import ComfortPose, Evaluation, Problem, evaluate, make_problem
from .options import METHODS, STATUSES, SolveResult, SolverOptions
from .rotations import (
    EULER_ORDERS,
    euler_to_matrix,
    matrix_to_euler,
    matrix_to_quaternion,
    quaternion_to_matrix,
    rotation_vector,
)
from .solver import solve, solve_batch

__all__ = [
    "EULER_ORDERS",
    "METHODS",
    "STATUSES",
    "Chain",
    "ChainDefinitionError",
    "ComfortPose",
    "Evaluation",
    "IKError",
    "IKInputError",
    "Joint",
    "Kinematics",
    "Problem",
    "SolveResult",
    "SolverOptions",
    "euler_to_matrix",
    "evaluate",
    "forward",
    "make_problem",
    "matrix_to_euler",
    "matrix_to_quaternion",
    "position_jacobian",
    "quaternion_to_matrix",
    "rotation_vector",
    "solve",
    "solve_batch",
    "tip_positions",
]
