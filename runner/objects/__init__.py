"""The hub's store of namespaced objects, kept in its database (see store.py); kinds.py lists what it keeps."""

from runner.objects.kinds import KINDS, KindInfo, kind_named, kind_of
from runner.objects.store import Applied, InvalidObject, ObjectStore

__all__ = ["KINDS", "Applied", "InvalidObject", "KindInfo", "ObjectStore", "kind_named", "kind_of"]
