"""The ledger: what the episode knows about every object, built from the start frame and kept by
accepted segments (the critic judges against it; the planner replans from it)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..tools.perception import PerceivedObject, match_objects, perceive
from ..tools.world.scene import object_words
from ..vocabulary.state import Ledger, ObjectRecord

MATCH_DISTANCE = 200.0
"""How far (table units) an object may have moved and still be matched to its ledger record."""


def ledger_from(scene: list[PerceivedObject], frame_ref: str) -> Ledger:
    records = {o.id: ObjectRecord(id=o.id, shape=o.shape, color=o.color, size=o.size, x=o.x, y=o.y, z=o.z,
                                  start_rgb=o.mean_rgb) for o in scene}
    return Ledger(objects=records, first_frame=frame_ref, last_frame=frame_ref)


def known_looks(ledger: Ledger) -> dict[str, tuple[str, str, str, float, float]]:
    """Each known object's look and expected place, as `match_objects` takes them."""
    return {r.id: (r.shape, r.color, r.size, r.x, r.y) for r in ledger.objects.values()}


def seen_in(ledger: Ledger, frame: np.ndarray,
            read: Callable[[np.ndarray], list[PerceivedObject]] = perceive) -> dict[str, PerceivedObject]:
    """The ledger's objects as found in a frame (missing ones are absent), read by `read` (a run's reading,
    nodes/reading.py: a learned model's frames are read at half of each edge)."""
    return match_objects(known_looks(ledger), read(frame), MATCH_DISTANCE)


def words_for(ledger: Ledger, object_id: str) -> str:
    """An object's name from its record (its id in words when the ledger does not know it)."""
    rec = ledger.objects.get(object_id)
    return object_id.replace("_", " ") if rec is None else object_words(rec.shape, rec.color, rec.size)


def _observed(obj: PerceivedObject, rebaseline: bool) -> dict:
    """Ledger fields from a perceived object. Colours stay those of the start image (so slow
    drift adds up and gets caught) unless a best-effort segment was accepted: then its state
    is the new reference, or every later segment would fail on the drift already accepted."""
    update = {"x": obj.x, "y": obj.y, "z": obj.z}
    if rebaseline and not obj.occluded:
        update["start_rgb"] = obj.mean_rgb
    return update


def remembered_objects(ledger: Ledger, seen: dict, movers: set, passed: bool) -> dict:
    """Where the ledger expects each object next. After a passing segment only the movers moved;
    everything else keeps its expected place, so drift that stays under the critic's tolerance in
    each segment still adds up and gets caught. A best-effort acceptance makes what is seen the
    new reference for everything."""
    return {oid: rec.model_copy(update=_observed(seen[oid], rebaseline=not passed))
            if oid in seen and (oid in movers or not passed) else rec
            for oid, rec in ledger.objects.items()}


def memoryless_ledger(ledger: Ledger, conditioning: np.ndarray,
                      read: Callable[[np.ndarray], list[PerceivedObject]] = perceive) -> Ledger:
    """The ledger as a critic without episode memory sees it: everything as in the conditioning frame."""
    seen = seen_in(ledger, conditioning, read)
    objects = {oid: rec.model_copy(update={"x": seen[oid].x, "y": seen[oid].y, "z": seen[oid].z,
                                           "start_rgb": seen[oid].mean_rgb}) if oid in seen else rec
               for oid, rec in ledger.objects.items()}
    return ledger.model_copy(update={"objects": objects, "established": [], "notes": []})
