"""ikpy, built link by link from the chain's single-axis form (the same model for every chain,
the KUKA included), with ikpy's default optimiser settings."""

from __future__ import annotations

import time
import warnings

import numpy as np

from blender_ik_addon.core import Chain, tip_positions
from blender_ik_addon.core.rotations import FloatArray

from .chains import single_axis_form, xyz_rpy
from .peer import Answer, Peer, PeerUnavailableError, stack_fk_error


class IkpyPeer(Peer):
    """ikpy's ``Chain.inverse_kinematics`` (scipy ``least_squares`` within the link bounds).

    Links: ikpy's origin link, one revolute link per free angle (multi-axis joints become
    several links with zero-length offsets), and a fixed link to the tip. ikpy forces the last
    link inactive, which is why the tip needs a link of its own.
    """

    name = "ikpy"

    def __init__(self, chain: Chain) -> None:
        super().__init__(chain)
        try:
            from ikpy.chain import Chain as IkpyChain
            from ikpy.link import OriginLink, URDFLink
        except ImportError as err:
            raise PeerUnavailableError(f"ikpy is not installed ({err})") from err
        form = single_axis_form(chain)
        links = [OriginLink()]
        for joint in form.joints:
            xyz, rpy = xyz_rpy(joint.before)
            kind = "revolute" if np.isfinite(joint.lower) or np.isfinite(joint.upper) else "continuous"
            links.append(URDFLink(joint.name, xyz, rpy, rotation=np.eye(3)[joint.axis],
                                  bounds=(joint.lower, joint.upper), joint_type=kind))
        xyz, rpy = xyz_rpy(form.tip)
        links.append(URDFLink("tip", xyz, rpy, joint_type="fixed"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ikpy warns about zero-length links, which are intended here
            self._ikpy = IkpyChain(links, active_links_mask=[False] + [True] * len(form.joints) + [False])
        self._dofs = form.dofs
        self._links = len(links)

    def _full(self, q: FloatArray) -> FloatArray:
        full = np.zeros(self._links)
        full[1:-1] = q[self._dofs]
        return full

    def _q(self, full: FloatArray) -> FloatArray:
        q = np.empty(self.chain.n_dofs)
        q[self._dofs] = np.asarray(full)[1:-1]
        return q

    def fk_error(self, poses: FloatArray) -> float:
        tips = np.stack([self._ikpy.forward_kinematics(self._full(q))[:3, 3] for q in poses])
        return stack_fk_error(tips, self.chain, poses)

    def solve(self, target: FloatArray, start: FloatArray) -> Answer:
        initial = self._full(start)
        began = time.perf_counter()
        full = self._ikpy.inverse_kinematics(target, initial_position=initial)
        seconds = time.perf_counter() - began
        q = self._q(full)
        return Answer(self.chain.expand(q), tip_positions(self.chain, q[None])[0], seconds)
