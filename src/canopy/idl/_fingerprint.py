"""Interface, struct, enum and error-domain ids: fingerprints of their definitions.

An id is the first 8 bytes, little-endian, of the SHA3-256 of a canonical seed.
The seed has one line per member (so that a change can be named), lists what
the wire contract depends on (qualified names, methods with their attributes
but not ``description`` or ``deprecated``, parameter directions, types and
names, field defaults) and replaces every user type by its own fingerprint, so
a change anywhere below a definition changes its id too.
"""

from __future__ import annotations

import hashlib
import json

from canopy.idl._model import (
    Attributes,
    Enum,
    EnumValueRef,
    ErrorDomain,
    Interface,
    Model,
    Struct,
    Typedef,
    TypeRef,
    Value,
)
from canopy.idl._printer import type_text

Fingerprinted = Interface | Struct | Enum | ErrorDomain

# Attributes that document a definition without changing its contract.
_NOT_IN_SEED = frozenset({"description", "deprecated", "status"})


def hash_seed(seed: str) -> int:
    """The id of a seed: SHA3-256, first 8 bytes, little-endian."""
    return int.from_bytes(hashlib.sha3_256(seed.encode("utf-8")).digest()[:8], "little")


def fingerprint(model: Model, definition: Fingerprinted | str) -> int:
    """The 64-bit id of an interface, struct, enum or error domain of ``model``."""
    d = _definition(model, definition)
    cache = model.fingerprints
    found = cache.get(d.qualified_name)
    if found is None:
        found = cache[d.qualified_name] = hash_seed(_Seeder(model).seed(d))
    return found


def canonical_seed(model: Model, definition: Fingerprinted | str) -> str:
    """The text whose hash is the definition's id (one line per member)."""
    return _Seeder(model).seed(_definition(model, definition))


def _definition(model: Model, definition: Fingerprinted | str) -> Fingerprinted:
    d = model.lookup(definition) if isinstance(definition, str) else definition
    if not isinstance(d, Interface | Struct | Enum | ErrorDomain):
        raise TypeError(f"{getattr(d, 'qualified_name', d)!r} has no fingerprint")
    return d


class _Seeder:
    def __init__(self, model: Model) -> None:
        self.model = model
        self.active: set[str] = set()  # definitions being seeded, to stop at recursion

    def seed(self, d: Fingerprinted) -> str:
        self.active.add(d.qualified_name)
        try:
            if isinstance(d, Interface):
                return self._interface(d)
            if isinstance(d, Struct):
                return self._struct(d)
            if isinstance(d, Enum):
                under = d.underlying.value if d.underlying else ""
                head = f"enum{' class' if d.is_class else ''} {d.qualified_name} : {under}"
                return "\n".join([head, *(f"value {v.name} = {v.value}" for v in d.values)])
            return "\n".join(
                [f"error {d.qualified_name}", *(f"value {v.name} = {v.code}" for v in d.values)]
            )
        finally:
            self.active.discard(d.qualified_name)

    def _interface(self, i: Interface) -> str:
        lines = [f"interface {i.qualified_name}"]
        lines += [f"base {self._ref(b)}" for b in i.bases]
        for m in i.methods:
            params = ", ".join(
                f"{_attrs(p.attributes)}{p.direction.value} {self.type(p.type)} {p.name}"
                for p in m.parameters
            )
            lines.append(
                f"method {m.id} {_attrs(m.attributes)}{self.type(m.return_type)} {m.name}({params})"
            )
        return "\n".join(lines)

    def _struct(self, s: Struct) -> str:
        head = f"struct {s.qualified_name}"
        if s.template_params:
            head += "<" + ", ".join(s.template_params) + ">"
        lines = [head]
        if s.base:
            lines.append(f"base {self._ref(s.base)}")
        for f in s.fields:
            default = f" = {_value(f.default)}" if f.has_default else ""
            lines.append(f"field {_attrs(f.attributes)}{self.type(f.type)} {f.name}{default}")
        return "\n".join(lines)

    def _ref(self, qname: str) -> str:
        if qname in self.active:
            return f"self:{qname}"
        d = self.model.index.get(qname)
        if isinstance(d, Interface | Struct | Enum | ErrorDomain):
            cached = self.model.fingerprints.get(qname)
            if cached is None:
                cached = hash_seed(self.seed(d))
                self.model.fingerprints[qname] = cached
            return f"#{cached}"
        return qname  # unresolved names only reach here from unchecked models

    def type(self, t: TypeRef) -> str:
        return type_text(t, self._name)

    def _name(self, qname: str) -> str:
        """A name inside a seed: a typedef is what it stands for, a user type its id."""
        d = self.model.index.get(qname)
        if isinstance(d, Typedef):
            return self.type(d.type)
        return self._ref(qname)


def _attrs(attrs: Attributes) -> str:
    kept = [a for a in attrs if a.name not in _NOT_IN_SEED]
    if not kept:
        return ""
    return (
        "["
        + ", ".join(a.name if a.value is None else f"{a.name}={_value(a.value)}" for a in kept)
        + "] "
    )


def _value(v: Value) -> str:
    if isinstance(v, EnumValueRef):
        return f"{v.enum}::{v.value}"
    if isinstance(v, tuple):
        return "{" + ", ".join(_value(x) for x in v) + "}"
    if isinstance(v, float):
        return repr(v)
    return json.dumps(v, ensure_ascii=False, default=str)
