"""The namespace of the wire-shaped struct classes the binary codec builds at run time
(an interface field typed ``ObjectRef``, a 128-bit field that may hold an extension),
so that msgspec resolves their references to each other, recursive ones included."""
