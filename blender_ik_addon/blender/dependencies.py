"""What moves an object: the armature bones its evaluated world matrix depends on.

:func:`bone_links` walks the scene graph from an object, breadth first, along every route Blender
evaluates, and reports each ``(armature, bone)`` it reaches as a :class:`BoneLink` with the route
that reached it first (so the shortest). :func:`moves_with` asks whether any of them is one of a
given set of bones. The walk visits three kinds of node:

* an object's *transform* (its world matrix): its parent (by parent type), its object
  constraints, the drivers on its transform and constraint settings;
* an object's *geometry* (a vertex parent's mesh, a Shrinkwrap target, a Follow Path curve...):
  its transform, an armature-deform parent, its modifiers (Armature, Hook, and any modifier that
  points at another object), drivers on its modifiers, its shape keys and its data;
* a *pose bone*: its bone constraints, the drivers on its channels and constraints, a Blender IK
  constraint below it whose chain reaches it, and -- unless only the bone's own channels are read --
  its parent bone and the armature object's transform. So a link to a bone is always accompanied by
  links to every bone above it: **a bone depends on its parents**. A chain bone's descendants move
  with it; with this rule :func:`moves_with` only has to look for the chain's own bones.

Blender conventions and traps this module relies on:

* ``parent_type`` 'ARMATURE' and 'LATTICE' are the same value (PARSKEL, "deform parent"): the child's
  *geometry* is deformed, its world matrix follows the parent object's matrix only. So an Empty
  with parent type 'ARMATURE' does not move with the pose; a mesh with it is deformed by every bone.
* A vertex parent ('VERTEX', 'VERTEX_3') follows the parent's *evaluated* vertices: whatever deforms
  that mesh (Armature modifier, hooks, shape keys driven by bones) moves the child.
* An object parented (type 'OBJECT') to a curve with Path Animation follows the curve's path.
* A constraint's ``subtarget`` names a bone when the target is an armature, and a vertex group when
  it is a mesh or lattice (then the target's geometry matters). Muted constraints (``mute``) and
  invalid ones (``is_valid`` False: Blender skips them) are ignored, and so is one left at influence
  0; one whose influence is keyed or driven is followed even where it is 0 (a Child Of switched on for
  a few frames: a prop hand-off).
* Driver data paths escape ``"`` and ``\\`` in names (``pose.bones["a\\"b"]``). A custom property
  (``["prop"]``) carries no transform of its own, but a driver reading one reads whatever drives
  that property (a rig's "reach" driven by the hand's position): the property's own driver is
  followed; a keyed or hand-set property is not. Muted F-curves and invalid drivers
  (``driver.is_valid`` False) are skipped.
* Objects are compared by ``as_pointer()``, never by name: linked libraries bring objects with
  the names of local ones.

The walk never loops: each node is visited once. Not followed (rare, documented here): objects
read inside a Geometry Nodes tree (only the modifier's Object inputs are), Spline IK bending bones
above its owner, SINGLE_PROP driver variables on IDs other than objects (a scene's ``objects[...]``
path), and physics (rigid bodies, cloth).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from .keys import action_paths, bone_path

# Constraint types whose result depends on the target's geometry, not only its matrix.
_GEOMETRY_CONSTRAINTS = frozenset({"SHRINKWRAP", "FOLLOW_PATH", "CLAMP_TO", "SPLINE_IK", "GEOMETRY_ATTRIBUTE"})
# Constraint fields that point at objects, beside target/subtarget (pole: IK; the others: motion tracking).
_TARGET_FIELDS = (("target", "subtarget"), ("pole_target", "pole_subtarget"), ("camera", ""), ("depth_object", ""))
# Driven or read properties of an object or a pose bone that are its own transform channels
# (a driven F-curve's path has no index; a driver variable's path may end in one: ``location[1]``).
_CHANNEL = re.compile(r"(delta_)?(location|rotation_euler|rotation_quaternion|rotation_axis_angle|scale)(\[\d+\])?$")
# Driven or read properties of an object that move it: its channels, its matrices, constraint settings.
_OBJECT_MOTION = re.compile(rf"{_CHANNEL.pattern}|matrix_\w+(\[\d+\])*$|constraints\[")
# ``pose.bones["name"]<rest>`` with either quote (Blender writes ", users may type ').
_POSE_BONE_PATH = re.compile(r"""pose\.bones\[(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\](.*)$""", re.S)
_UNESCAPE = re.compile(r"\\(.)", re.S)


@dataclass(frozen=True)
class BoneLink:
    """One armature bone that an object's world matrix depends on.

    Attributes:
        rig: The armature object (the original ID, as found in the scene data).
        bone: The pose bone's name; None means every bone of the rig (the object depends on
            geometry the armature deforms).
        route: Readable steps from the object to the bone; the first is the object's quoted name,
            e.g. ``("'T'", "parent 'Helper'", "Child Of constraint 'Child Of' -> bone 'hand' of 'Rig'")``.
    """

    rig: Any
    bone: str | None
    route: tuple[str, ...]

    def describe(self) -> str:
        """The route on one line: ``'T' -> parent 'Helper' -> Child Of constraint ...``."""
        return " -> ".join(self.route)


def bone_links(obj: Any, bone: str | None = None) -> list[BoneLink]:
    """Every (armature, bone) whose pose the evaluated world matrix of ``obj`` depends on (with
    ``bone``: of that bone of the armature ``obj``, a bone target; it is its own first link).

    Routes followed: parents of every type (OBJECT, BONE, ARMATURE, VERTEX, VERTEX_3, LATTICE),
    object constraints (target/subtarget, pole_target/pole_subtarget, the Armature constraint's
    targets, custom spaces), drivers on the object (variables of every type), the geometry a
    vertex parent, Shrinkwrap or Follow Path reads (Armature/Hook modifiers, the mesh's own parent,
    driven shape keys...), recursively through helper objects and other armatures; inside an
    armature, a bone depends on its parent bones, its bone constraints' targets, the drivers on it,
    and the armature object's own dependencies. Links are in breadth-first order, each
    ``(rig, bone)`` once with its shortest route; a bone of a rig already linked with ``bone=None``
    is not repeated. A link to an armature object's transform alone (a plain object parent, a
    constraint with no subtarget) is no bone link, but what moves that armature is followed.
    """
    return list(_Walk(obj, bone).links())


def moves_with(obj: Any, rig: Any, bones: Collection[str], bone: str | None = None) -> BoneLink | None:
    """The first link of ``obj`` (or of its ``bone``) into ``bones`` of ``rig`` (a link with bone
    None counts as every bone), or None. Bones below those in ``bones`` need not be listed: links
    include every bone above a linked bone (see the module docstring)."""
    wanted = rig.as_pointer()
    for link in _Walk(obj, bone).links():
        if link.rig.as_pointer() == wanted and (link.bone is None or link.bone in bones):
            return link
    return None


_TRANSFORM_CHANNELS = (("location", 3), ("rotation_euler", 3), ("rotation_quaternion", 4), ("rotation_axis_angle", 4),
                       ("scale", 3), ("delta_location", 3), ("delta_rotation_euler", 3),
                       ("delta_rotation_quaternion", 4), ("delta_scale", 3))


def is_plain(obj: Any) -> bool:
    """Nothing but its own channels moves ``obj``: no parent, no constraint, no driver on a transform
    channel, so :func:`bone_links` would find nothing. Asked of every target, pole and
    armature on every frame: a character rig's hundreds of bone drivers are not read one by one
    (``drivers.find`` looks for the few transform paths in C)."""
    if obj.parent is not None or len(obj.constraints):
        return False
    anim = obj.animation_data
    if anim is None or not len(anim.drivers):
        return True
    return not _transform_driven(obj, anim.drivers)


_DRIVEN: dict[int, tuple[int, bool]] = {}
"""Object pointer -> (its driver count, whether one drives a transform channel): a rig with hundreds
of bone drivers costs ~0.2 ms to look through, so the answer is kept while the count stays. (A
driver's path retyped in place keeps the count: the next added or removed driver, or a file load,
looks again.)"""


def _transform_driven(obj: Any, drivers: Any) -> bool:
    key, count = obj.as_pointer(), len(drivers)
    kept = _DRIVEN.get(key)
    if kept is None or kept[0] != count:
        driven = any(drivers.find(path, index=i) is not None for path, size in _TRANSFORM_CHANNELS
                     for i in range(size))
        if len(_DRIVEN) > 1024:
            _DRIVEN.clear()
        kept = _DRIVEN[key] = (count, driven)
    return kept[1]


def forget() -> None:
    """Drop what is kept between calls (file load, unregister: pointers are reused)."""
    _DRIVEN.clear()
    _PATHS.clear()



Route = tuple[str, ...]


class _Walk:
    """One breadth-first walk from an object. Nodes are tuples keyed for the ``seen`` set:
    ``("object", obj, own_only)``, ``("geometry", obj)``, ``("bone", rig, name, own_only)``, ``("deform", rig)``.
    ``own_only``: only the object's or bone's own channels are read (a driver reading ``location``, a
    local-space variable), so its parent is not followed; its constraints and drivers still are."""

    def __init__(self, obj: Any, bone: str | None = None) -> None:
        self.queue: deque[tuple[tuple[Any, ...], Route]] = deque()
        self.seen: set[tuple[Any, ...]] = set()
        self.reported: set[tuple[int, str]] = set()
        self.whole: set[int] = set()  # rigs linked with bone=None
        self.drivers: dict[int, _Drivers] = {}
        self.properties: set[tuple[int, str]] = set()  # custom properties already followed
        if bone is None:
            self._push(("object", obj, False), (repr(obj.name),))
        else:
            self._push_bone(obj, bone, (f"bone {bone!r} of {obj.name!r}",))

    def links(self) -> Iterator[BoneLink]:
        """Walk until the queue is empty, yielding links as their bones are reached."""
        while self.queue:
            node, route = self.queue.popleft()
            kind = node[0]
            if kind == "object":
                self._object(node[1], node[2], route)
            elif kind == "geometry":
                self._geometry(node[1], route)
            elif kind == "deform":
                rig = node[1]
                self.whole.add(rig.as_pointer())
                yield BoneLink(rig, None, route)
                self._deform(rig, route)
            else:
                rig, name, own_only = node[1], node[2], node[3]
                key = (rig.as_pointer(), name)
                if key not in self.reported and key[0] not in self.whole:
                    self.reported.add(key)
                    yield BoneLink(rig, name, route)
                self._bone(rig, name, own_only, route)

    # -- queueing ---------------------------------------------------------------------------------

    def _push(self, node: tuple[Any, ...], route: Route) -> None:
        key = (node[0], node[1].as_pointer(), *node[2:])
        if node[-1] is True and (*key[:-1], False) in self.seen:
            return  # the whole object or bone was already queued: it covers its own channels
        if key not in self.seen:
            self.seen.add(key)
            self.queue.append((node, route))

    def _push_bone(self, rig: Any, name: str, route: Route, own_only: bool = False) -> None:
        """Queue a pose bone of ``rig`` (ignored if the rig has no such bone: a stale subtarget)."""
        pose = rig.pose
        if pose is not None and pose.bones.get(name) is not None:
            self._push(("bone", rig, name, own_only), route)

    def _push_target(self, target: Any, sub: str, geometry: bool, route: Route, step: str) -> None:
        """Queue what a constraint, hook or driver reads of ``target`` (``sub``: its bone or vertex group)."""
        if target.type == "ARMATURE" and sub:
            self._push_bone(target, sub, (*route, f"{step} -> bone {sub!r} of {target.name!r}"))
        elif geometry or (sub and target.type in ("MESH", "LATTICE")):
            self._push(("geometry", target), (*route, f"{step} -> {target.name!r}"))
        else:
            self._push(("object", target, False), (*route, f"{step} -> {target.name!r}"))

    # -- objects ----------------------------------------------------------------------------------

    def _object(self, obj: Any, own_only: bool, route: Route) -> None:
        """An object's world matrix: parent, constraints, drivers on its transform."""
        parent = obj.parent
        if parent is not None and not own_only:
            kind = obj.parent_type
            bone = obj.parent_bone
            if kind == "BONE" and parent.type == "ARMATURE" and bone in parent.pose.bones:
                self._push_bone(parent, bone, (*route, f"parent bone {bone!r} of {parent.name!r}"))
            elif kind in ("VERTEX", "VERTEX_3"):
                self._push(("geometry", parent), (*route, f"vertex parent {parent.name!r}"))
            elif kind == "OBJECT" and parent.type == "CURVE" and parent.data.use_path:
                self._push(("geometry", parent), (*route, f"parent {parent.name!r} (path)"))
            else:  # OBJECT; ARMATURE/LATTICE deform the child's geometry, not its matrix (see _geometry)
                self._push(("object", parent, False), (*route, f"parent {parent.name!r}"))
        for con in obj.constraints:
            self._constraint(con, route, "")
        if obj.animation_data is not None:
            for fcurve in self._drivers(obj).transform:
                self._driver(fcurve, route)

    def _geometry(self, obj: Any, route: Route) -> None:
        """An object's evaluated geometry in world space: its transform and what deforms it."""
        self._push(("object", obj, False), route)
        parent = obj.parent
        if parent is not None and obj.parent_type in ("ARMATURE", "LATTICE"):  # one value: deform parent
            if parent.type == "ARMATURE":
                self._push(("deform", parent), (*route, f"armature-deform parent {parent.name!r}"))
            else:
                self._push(("geometry", parent), (*route, f"deform parent {parent.name!r}"))
        for mod in getattr(obj, "modifiers", ()):
            if mod.show_viewport or mod.show_render:
                self._modifier(mod, route)
        for fcurve in self._drivers(obj).geometry:
            self._driver(fcurve, route)
        data = obj.data
        for owner in (data, getattr(data, "shape_keys", None)):  # the object data, its shape keys (a Key ID)
            anim = getattr(owner, "animation_data", None)
            if owner is not None and anim is not None:
                for fcurve in anim.drivers:
                    self._driver(fcurve, route, f"driver on {owner.name!r} {fcurve.data_path}")

    def _modifier(self, mod: Any, route: Route) -> None:
        label = f"{_label(mod)} modifier {mod.name!r}"
        if mod.type == "ARMATURE":
            if mod.object is not None and mod.object.type == "ARMATURE":
                self._push(("deform", mod.object), (*route, f"{label} -> armature {mod.object.name!r}"))
        elif mod.type == "HOOK":
            if mod.object is not None:
                self._push_target(mod.object, mod.subtarget, False, route, label)
        elif mod.type == "NODES":  # Object inputs are ID properties of the modifier
            for value in mod.values():
                if _is_object(value):
                    self._push(("geometry", value), (*route, f"{label} -> {value.name!r}"))
        else:
            for field in _object_fields(mod):
                value = getattr(mod, field)
                if value is not None:
                    self._push(("geometry", value), (*route, f"{label} -> {value.name!r}"))

    def _deform(self, rig: Any, route: Route) -> None:
        """An armature deforming geometry: what moves the rig and each deform bone."""
        self._push(("object", rig, False), route)
        for bone in rig.data.bones:
            if bone.use_deform:
                self._push_bone(rig, bone.name, (*route, f"bone {bone.name!r} of {rig.name!r}"))

    # -- constraints and drivers ------------------------------------------------------------------

    def _constraint(self, con: Any, route: Route, owner: str) -> None:
        """What a constraint reads (``owner``: " of bone 'x'" for another bone's IK, else "")."""
        if con.mute or not con.is_valid or (con.influence <= 0.0 and not _influence_animated(con)):
            return
        step = f"{_label(con)} constraint {con.name!r}{owner}"
        if con.type == "ARMATURE":  # a weighted list of bones, each read as a whole
            for item in con.targets:
                if item.target is not None:
                    self._push_target(item.target, item.subtarget, False, route, step)
            return
        geometry = con.type in _GEOMETRY_CONSTRAINTS
        for field, sub_field in _TARGET_FIELDS:
            target = getattr(con, field, None)
            if target is not None:
                self._push_target(target, getattr(con, sub_field, "") if sub_field else "", geometry, route, step)
        if "CUSTOM" in (getattr(con, "owner_space", ""), getattr(con, "target_space", "")):
            space = getattr(con, "space_object", None)
            if space is not None:
                self._push_target(space, con.space_subtarget, False, route, f"{step} (custom space)")

    def _driver(self, fcurve: Any, route: Route, step: str = "") -> None:
        """What a driver's variables read (every target of every variable type)."""
        driver = fcurve.driver
        if fcurve.mute or driver is None or not driver.is_valid:
            return
        step = step or f"driver on {fcurve.data_path}"
        step = f"{step}[{fcurve.array_index}]"
        for var in driver.variables:
            here = f"{step} -> variable {var.name!r}"
            if var.type == "SINGLE_PROP":
                self._property_read(var.targets[0], route, here)
            elif var.type in ("TRANSFORMS", "LOC_DIFF", "ROTATION_DIFF"):
                count = 1 if var.type == "TRANSFORMS" else 2
                for target in list(var.targets)[:count]:
                    self._transform_read(target, route, here)
            # CONTEXT_PROP reads the active scene or view layer: no object transform

    def _transform_read(self, target: Any, route: Route, step: str) -> None:
        """A Transform Channel / Distance / Rotational Difference target: world space reads the
        whole bone or object; transform and local space leave out its parents."""
        obj = target.id
        if not _is_object(obj):
            return
        bone = target.bone_target
        own = target.transform_space != "WORLD_SPACE"
        if obj.type == "ARMATURE" and bone:
            self._push_bone(obj, bone, (*route, f"{step} -> bone {bone!r} of {obj.name!r}"), own_only=own)
        else:
            self._push(("object", obj, own), (*route, f"{step} -> {obj.name!r}"))

    def _property_read(self, target: Any, route: Route, step: str) -> None:
        """A Single Property target: ``pose.bones["b"].location`` reads a bone's channel,
        ``pose.bones["b"].matrix`` (or head, tail...) the whole bone, ``location`` or ``matrix_world``
        an object; a custom property (``["prop"]``, ``pose.bones["b"]["prop"]``) carries what the
        driver that drives it reads (a rig's "reach" property driven by the hand's position, say),
        and nothing when it is keyed or set by hand; other data carries no transform."""
        obj = target.id
        if target.id_type != "OBJECT" or not _is_object(obj):
            return
        path = target.data_path.strip()
        name, rest = _pose_bone_path(path)
        if path.startswith("[") or (name is not None and rest.startswith("[")):
            self._custom_property(obj, path, route, step)  # carries what its driver reads, if driven
            return
        if name is not None and obj.type == "ARMATURE":
            own = _CHANNEL.match(rest) is not None
            self._push_bone(obj, name, (*route, f"{step} -> bone {name!r} of {obj.name!r}"), own_only=own)
        elif _OBJECT_MOTION.match(path):
            own = _CHANNEL.match(path) is not None
            self._push(("object", obj, own), (*route, f"{step} -> {obj.name!r}"))

    def _custom_property(self, obj: Any, path: str, route: Route, step: str) -> None:
        """The drivers on custom property ``path`` of ``obj`` (each property followed once per walk)."""
        key = (obj.as_pointer(), path)
        if key in self.properties:
            return
        self.properties.add(key)
        drivers = self._drivers(obj)
        for fcurve in drivers.at(path):
            self._driver(fcurve, (*route, f"{step} -> property {path} of {obj.name!r}"))

    # -- bones ------------------------------------------------------------------------------------

    def _bone(self, rig: Any, name: str, own_only: bool, route: Route) -> None:
        """A pose bone: its constraints, drivers, Blender IK below it; unless ``own_only``, its
        parent bone and the armature object."""
        pose_bone = rig.pose.bones[name]
        for con in pose_bone.constraints:
            self._constraint(con, route, "")
        for fcurve in self._drivers(rig).of_bone(name):
            self._driver(fcurve, route)
        if pose_bone.is_in_ik_chain:  # set by Blender when an IK constraint at or below bends it
            self._ik_below(rig, name, route)
        if own_only:
            return
        parent = pose_bone.parent
        if parent is not None:
            self._push_bone(rig, parent.name, (*route, f"parent bone {parent.name!r} of {rig.name!r}"))
        self._push(("object", rig, False), (*route, f"armature {rig.name!r}"))

    def _ik_below(self, rig: Any, name: str, route: Route) -> None:
        """Blender IK constraints on bones below ``name`` whose chain reaches it (chain_count 0:
        up to the root) bend it toward their targets."""
        top = rig.data.bones[name]
        for bone in top.children_recursive:
            depth = 1 + next(i for i, up in enumerate(bone.parent_recursive) if up == top)
            for con in rig.pose.bones[bone.name].constraints:
                if con.type == "IK" and (con.chain_count == 0 or con.chain_count > depth):
                    self._constraint(con, route, f" of bone {bone.name!r}")

    def _drivers(self, obj: Any) -> _Drivers:
        """``obj``'s drivers, sorted once per walk and object (a rig may have hundreds)."""
        key = obj.as_pointer()
        found = self.drivers.get(key)
        if found is None:
            found = self.drivers[key] = _Drivers(obj)
        return found


class _Drivers:
    """An object's drivers that move something, by what they move. A rig may have hundreds: their
    paths come from :func:`driver_paths` (kept between walks) and a pose bone's are picked by prefix
    when the bone is reached; the F-curves themselves are looked up by index only when needed.

    Attributes:
        transform: Drivers on the object's channels or constraint settings (they move its matrix).
        geometry: Drivers on its modifiers.
    """

    def __init__(self, obj: Any) -> None:
        anim = obj.animation_data
        self.collection: Any = anim.drivers if anim is not None else ()
        self.paths: list[str] = driver_paths(obj)
        self.transform: list[Any] = []
        self.geometry: list[Any] = []
        for index, path in enumerate(self.paths):
            if path.startswith("pose."):
                continue
            if path.startswith("modifiers["):
                self.geometry.append(self.collection[index])
            elif _OBJECT_MOTION.match(path):
                self.transform.append(self.collection[index])

    def at(self, path: str) -> list[Any]:
        """Drivers on exactly ``path`` (any array index)."""
        return [self.collection[i] for i, p in enumerate(self.paths) if p == path]

    def of_bone(self, name: str) -> list[Any]:
        """Drivers on pose bone ``name``'s channels or constraint settings."""
        prefix = bone_path(name)
        out = []
        for index, path in enumerate(self.paths):
            if path.startswith(prefix):
                rest = path[len(prefix):]
                if rest.startswith("constraints[") or _CHANNEL.match(rest):
                    out.append(self.collection[index])
        return out


_PATHS: dict[int, tuple[int, list[str]]] = {}
"""Object pointer -> (its driver count, every driver's data path), like :data:`_DRIVEN`: reading a
path costs about half a microsecond, and a character rig has hundreds of drivers walked every frame."""


def driver_paths(obj: Any) -> list[str]:
    """The data paths of ``obj``'s drivers, in order (kept while their count stays; see :data:`_DRIVEN`)."""
    anim = obj.animation_data
    if anim is None or not len(anim.drivers):
        return []
    key, count = obj.as_pointer(), len(anim.drivers)
    kept = _PATHS.get(key)
    if kept is None or kept[0] != count:
        if len(_PATHS) > 1024:
            _PATHS.clear()
        kept = _PATHS[key] = (count, [fcurve.data_path for fcurve in anim.drivers])
    return kept[1]


def _influence_animated(con: Any) -> bool:
    """Whether a constraint's influence is keyed (in the action or an NLA strip's) or driven: a Child
    Of keyed from 0 to 1 for a hand-off counts even where it is 0; one left at 0 does not."""
    owner = con.id_data
    anim = getattr(owner, "animation_data", None)
    if anim is None:
        return False
    path = con.path_from_id("influence")
    if anim.drivers.find(path) is not None:
        return True
    actions = [anim.action, *(s.action for t in anim.nla_tracks for s in t.strips)]
    return any(action is not None and path in action_paths(action) for action in actions)


def _pose_bone_path(path: str) -> tuple[str | None, str]:
    """``pose.bones["name"].rest`` -> ``("name", "rest")`` (``rest`` without its leading dot; it starts
    with ``[`` for a custom property); ``(None, "")`` for any other path."""
    if path.startswith('pose.bones["') and "\\" not in path:  # the usual case, without a regex
        end = path.find('"]', 12)
        if end > 0:
            return path[12:end], path[end + 2:].removeprefix(".")
    found = _POSE_BONE_PATH.match(path)
    if found is None:
        return None, ""
    name = found.group(1) if found.group(1) is not None else found.group(2)
    return _UNESCAPE.sub(r"\1", name), found.group(3).removeprefix(".")


_LABELS: dict[str, str] = {}


def _label(struct: Any) -> str:
    """The UI name of a constraint's or modifier's type: "Child Of", "Inverse Kinematics", "Geometry Nodes"
    (cached by RNA struct, e.g. ``ChildOfConstraint``)."""
    key = struct.bl_rna.identifier
    label = _LABELS.get(key)
    if label is None:
        label = _LABELS[key] = struct.bl_rna.properties["type"].enum_items[struct.type].name
    return label


def _is_object(value: Any) -> bool:
    """``value`` is a bpy Object (checked without importing bpy)."""
    return value is not None and getattr(getattr(value, "bl_rna", None), "identifier", "") == "Object"


_FIELDS: dict[str, tuple[str, ...]] = {}


def _object_fields(mod: Any) -> tuple[str, ...]:
    """Names of a modifier type's properties that point at an Object (cached per type)."""
    fields = _FIELDS.get(mod.type)
    if fields is None:
        fields = _FIELDS[mod.type] = tuple(
            p.identifier for p in mod.bl_rna.properties
            if p.type == "POINTER" and getattr(p.fixed_type, "identifier", "") == "Object")
    return fields
