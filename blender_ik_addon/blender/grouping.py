"""Which chains share bones: the groups :mod:`.groups` solves together (pure Python, no bpy, so
the stacking and scene checks can ask it without importing the solver)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .spec import ChainSpec


def sharing_groups(bones: Mapping[str, Sequence[str]]) -> list[tuple[str, ...]]:
    """The groups (two chains or more) of chains that share bones, directly or through others.

    Args:
        bones: Chain name -> its bone names, in the order the rig lists the chains.

    Returns:
        Each group's chain names in that order; groups ordered by their first chain.
    """
    owner: dict[str, str] = {}
    parent = {name: name for name in bones}

    def find(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for name, names in bones.items():
        for bone in names:
            other = owner.setdefault(bone, name)
            if other != name:
                a, b = find(other), find(name)
                if a != b:
                    parent[max(a, b, key=list(bones).index)] = min(a, b, key=list(bones).index)
    members: dict[str, list[str]] = {}
    for name in bones:
        members.setdefault(find(name), []).append(name)
    return [tuple(group) for group in members.values() if len(group) > 1]


def group_of(groups: Sequence[tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Chain name -> its group, for the chains in ``groups``."""
    return {name: group for group in groups for name in group}


def group_refusal(specs: Sequence[ChainSpec], bones: Mapping[str, Sequence[str]]) -> str | None:
    """Why the chains of one group cannot be solved together, naming the chain and setting; or None."""
    names = ", ".join(repr(s.name) for s in specs)
    for spec in specs:
        what = None
        if spec.follow_mode or spec.method != "lm":
            what = "uses the tutorial solver" + (" in follow mode" if spec.follow_mode else "")
        elif spec.pole is not None and spec.pole_rule == "turn":
            what = "has Pole Rule Turn Toward Pole"
        elif spec.pole is not None and spec.pole_angle != 0.0:
            what = "has a Pole Angle"
        elif spec.use_stretch:
            what = "has IK Stretch on"
        elif spec.comfort_blend > 0.0:
            # A blend after the solve, per chain: two members would blend a shared bone toward their
            # own comfort poses by their own amounts, and a blended tip misses what the solve reached.
            what = "has Comfort Blend above 0"
        if what is not None:
            shared = _shared(spec.name, specs, bones)
            return (f"chain {spec.name!r} shares bone(s) {shared} with chain(s) of its group ({names}), which are "
                    f"solved together, and {what}, which chains solved together do not support yet: turn it off, "
                    "or shorten the chains so they share no bones")
    if all(spec.weight <= 0.0 for spec in specs):
        return (f"every chain of the group {names} (they share bones and are solved together) has Weight 0: "
                "nothing pulls them; give one chain a Weight above 0")
    return None


def _shared(name: str, specs: Sequence[ChainSpec], bones: Mapping[str, Sequence[str]]) -> str:
    mine = set(bones.get(name, ()))
    shared = [b for b in bones.get(name, ()) if any(b in bones.get(s.name, ()) for s in specs if s.name != name)]
    return ", ".join(map(repr, shared or sorted(mine)))
