"""pybullet's ``calculateInverseKinematics`` in DIRECT mode, with the null-space limit arguments."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from blender_ik_addon.core import tip_positions
from blender_ik_addon.core.rotations import FloatArray

from .chains import BenchChain, single_axis_form, write_urdf
from .peer import Answer, Peer, PeerUnavailableError, stack_fk_error

MAX_ITERATIONS = 1000
"""pybullet's default is 20; it is given as many iterations as the tutorial gets sweeps."""
UNLIMITED = 2 * np.pi
"""pybullet needs finite numbers for every limit; an unlimited axis gets +-2 pi."""


class PybulletPeer(Peer):
    """pybullet IK on the KUKA's own URDF, or on a URDF written from the chain's single-axis form.

    Every solve resets the joints to the start pose first (untimed), since pybullet's IK starts
    from the body's current state. ``lowerLimits``/``upperLimits``/``jointRanges``/``restPoses``
    switch on pybullet's null-space method, the only way it takes limits into account.
    """

    name = "pybullet"

    def __init__(self, bench: BenchChain, tolerance: float) -> None:
        super().__init__(bench.chain)
        try:
            import pybullet
        except ImportError as err:
            raise PeerUnavailableError(f"pybullet is not installed ({err})") from err
        self._p: Any = pybullet
        self._client = pybullet.connect(pybullet.DIRECT)
        self._tmp = tempfile.TemporaryDirectory(prefix="bench_urdf_")
        form = single_axis_form(bench.chain)
        if bench.urdf is not None and bench.urdf_tip_link is not None:
            urdf, tip_link = bench.urdf, bench.urdf_tip_link
        else:
            urdf = Path(self._tmp.name) / f"{bench.key}.urdf"
            tip_link = write_urdf(form, urdf, bench.key)
        self._body = pybullet.loadURDF(str(urdf), useFixedBase=True, physicsClientId=self._client)
        self._movable, self._tip = self._joint_indices(tip_link)
        if len(self._movable) != len(form.joints):
            raise ValueError(f"{urdf}: {len(self._movable)} movable joints, the chain has {len(form.joints)}")
        # pybullet orders its answer by movable joint, which is the single-axis order.
        self._dofs = form.dofs
        lower = np.array([j.lower for j in form.joints])
        upper = np.array([j.upper for j in form.joints])
        self._lower = np.where(np.isfinite(lower), lower, -UNLIMITED)
        self._upper = np.where(np.isfinite(upper), upper, UNLIMITED)
        self._tolerance = tolerance

    def _joint_indices(self, tip_link: str) -> tuple[list[int], int]:
        p, movable, tip = self._p, [], -1
        for index in range(p.getNumJoints(self._body, physicsClientId=self._client)):
            info = p.getJointInfo(self._body, index, physicsClientId=self._client)
            if info[2] != p.JOINT_FIXED:
                movable.append(index)
            if info[12].decode() == tip_link:
                tip = index
        if tip < 0:
            raise ValueError(f"pybullet body has no link {tip_link!r}")
        return movable, tip

    def _set(self, q: FloatArray) -> None:
        for index, value in zip(self._movable, q[self._dofs], strict=True):
            self._p.resetJointState(self._body, index, float(value), physicsClientId=self._client)

    def _tip_position(self) -> FloatArray:
        # Index 4 is the URDF link frame; index 0 is the centre of mass (they differ on the KUKA).
        state = self._p.getLinkState(self._body, self._tip, computeForwardKinematics=True,
                                     physicsClientId=self._client)
        return np.array(state[4])

    def fk_error(self, poses: FloatArray) -> float:
        tips = []
        for q in poses:
            self._set(q)
            tips.append(self._tip_position())
        return stack_fk_error(np.stack(tips), self.chain, poses)

    def solve(self, target: FloatArray, start: FloatArray) -> Answer:
        self._set(start)
        rest = list(start[self._dofs])
        began = time.perf_counter()
        answer = self._p.calculateInverseKinematics(
            self._body, self._tip, list(target), lowerLimits=list(self._lower), upperLimits=list(self._upper),
            jointRanges=list(self._upper - self._lower), restPoses=rest, maxNumIterations=MAX_ITERATIONS,
            residualThreshold=self._tolerance, physicsClientId=self._client)
        seconds = time.perf_counter() - began
        q = np.empty(self.chain.n_dofs)
        q[self._dofs] = answer
        return Answer(self.chain.expand(q), tip_positions(self.chain, q[None])[0], seconds)

    def close(self) -> None:
        self._p.disconnect(physicsClientId=self._client)
        self._tmp.cleanup()
