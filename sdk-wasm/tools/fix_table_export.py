#!/usr/bin/env python3
"""Works around a binaryen 108 (Debian bookworm's wasm-opt) bug: it writes every table export
with index 0, so wasm-bindgen's `__wbindgen_externrefs` export ends up pointing at the
funcref table and instantiation fails in `__wbindgen_init_externref_table`. Instructions keep
the right indices; only the export entry is wrong. This rewrites, in place, each table export
whose name is given to the index of the module's first externref table.

usage: fix_table_export.py FILE.wasm [EXPORT_NAME]
"""
import sys

path = sys.argv[1]
name = (sys.argv[2] if len(sys.argv) > 2 else "__wbindgen_externrefs").encode()
data = bytearray(open(path, "rb").read())
assert data[:4] == b"\0asm", "not a wasm module"


def leb(pos):
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return result, pos


pos, sections = 8, {}
while pos < len(data):
    sid = data[pos]
    size, body = leb(pos + 1)
    sections.setdefault(sid, (body, body + size))
    pos = body + size

# Imported tables come first in the index space.
imported_tables = 0
if 2 in sections:
    p, _ = sections[2]
    n, p = leb(p)
    for _ in range(n):
        for _ in range(2):
            ln, p = leb(p)
            p += ln
        kind = data[p]
        p += 1
        if kind == 0:
            _, p = leb(p)
        elif kind == 1:
            imported_tables += 1
            p += 1
            flags = data[p]
            p += 1
            _, p = leb(p)
            if flags & 1:
                _, p = leb(p)
        elif kind == 2:
            flags = data[p]
            p += 1
            _, p = leb(p)
            if flags & 1:
                _, p = leb(p)
        elif kind == 3:
            p += 2
        else:
            sys.exit("fix_table_export: unknown import kind %d" % kind)

externref = None
p, _ = sections.get(4, (None, None))
if p is not None:
    n, p = leb(p)
    for i in range(n):
        if data[p] == 0x6F:
            externref = imported_tables + i
            break
        p += 1
        flags = data[p]
        p += 1
        _, p = leb(p)
        if flags & 1:
            _, p = leb(p)

fixed = 0
if externref is not None and 7 in sections:
    p, _ = sections[7]
    n, p = leb(p)
    for _ in range(n):
        ln, p = leb(p)
        ename = bytes(data[p:p + ln])
        p += ln
        kind = data[p]
        p += 1
        idx_pos = p
        idx, p = leb(p)
        if kind == 1 and ename == name and idx != externref:
            assert p - idx_pos == 1 and externref < 0x80, "multi-byte index"
            data[idx_pos] = externref
            fixed += 1

open(path, "wb").write(bytes(data))
print("fix_table_export: %d export(s) fixed" % fixed, file=sys.stderr)
