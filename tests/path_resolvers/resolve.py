"""Resolves each path read from stdin (one a line) the ways Python apps do,
for tests/path_differential.rs. Prints the resolvers' names as a JSON array,
then for each path a JSON array of what each resolver makes of it: the
resolved path, or null when the app would refuse it.

The NFKC resolvers leave out the class filters/l7_policy/README.md leaves to
the app: characters whose compatibility form holds `.`, `/`, `\\`, `?`, `#`
or `;` (fullwidth `．` `／` `？`, the two dot leader `‥`, ...) are replaced by
`x` before NFKC. The two resolvers named `documented: ...` apply NFKC to
them too: their escapes are counted, not failed, and are then exactly those
of that class (the masked resolvers, which differ only there, must not
escape)."""

import json
import posixpath
import sys
import unicodedata
from urllib.parse import unquote, unquote_plus, urlsplit

NAMES = [
    "python: unquote, normpath",
    "python: unquote, urlsplit().path, normpath",
    "python: unquote, urlsplit().path, ;params cut and strip() per segment, normpath",
    "python: unquote_plus (+ is a space), urlsplit().path, strip() per segment, normpath",
    "python: unquote, NFKC (documented class masked), normpath",
    "python: unquote, NFKC (documented class masked), urlsplit().path, normpath",
    "documented: python: unquote, NFKC, normpath",
    "documented: python: unquote, NFKC, urlsplit().path, normpath",
]

DELIMITERS = "./\\?#;"


def documented(c):
    n = unicodedata.normalize("NFKC", c)
    return n != c and any(d in n for d in DELIMITERS)


def per_segment(p):
    return "/".join(s.split(";")[0].strip() for s in p.split("/"))


def resolve(p):
    d = unquote(p, errors="strict")
    n = unicodedata.normalize("NFKC", "".join("x" if documented(c) else c for c in d))
    full = unicodedata.normalize("NFKC", d)
    return [
        posixpath.normpath(d),
        posixpath.normpath(urlsplit(d).path),
        posixpath.normpath(per_segment(urlsplit(d).path)),
        posixpath.normpath(per_segment(urlsplit(unquote_plus(p, errors="strict")).path)),
        posixpath.normpath(n),
        posixpath.normpath(urlsplit(n).path),
        posixpath.normpath(full),
        posixpath.normpath(urlsplit(full).path),
    ]


def main():
    out = [json.dumps(NAMES)]
    for line in sys.stdin.read().split("\n"):
        if line:
            try:
                out.append(json.dumps(resolve(line)))
            except ValueError:
                out.append(json.dumps([None] * len(NAMES)))
    sys.stdout.write("\n".join(out) + "\n")


main()
