#!/usr/bin/env bash
# Comments cite only what the repository holds. A source comment (C, headers and .proto:
# /* */ and //; shell, CMake and Makefiles: #; SQL: -- and /* */) that names a file path —
# dir/name.ext, NAME.md, or a notes file cited by name (STACK-NOTES) — must name a file or
# directory of the repository: relative to its root, to the citing file's directory, or as
# the end of a path somewhere in the tree (harness/pg-cluster.sh for tests/harness/...). A
# path outside the repository (../shared/SPEC.md, /work/...) fails: a clone does not have it.
# A contract's section may be named ("SPEC §2"), not its path. Not citations: URLs, system
# paths (/proc/..., /tmp/...), patterns (sql/<service>/NNN_name.sql, *.pb-c.h), headers of
# other projects (<grpc/grpc.h>, sys/socket.h), what the build makes (build/, bin/,
# generated/, *.pb-c.[ch]), the local stack's state (.gf/), and placeholders in capitals
# (DIR/report.png). This file names what it refuses as examples: it does not read itself.
#
#   tests/unit/comment_refs_check.sh [repo]
#   tests/unit/comment_refs_check.sh --selftest   (a copy with planted citations must fail)
set -euo pipefail
SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
if [[ ${1:-} == --selftest ]]; then
    REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    tar -C "$REPO" --exclude=./.git --exclude='./build*' --exclude=node_modules --exclude=./.gf \
        -cf - . | tar -C "$tmp" -xf -
    if ! out=$(bash "$SELF" "$tmp"); then
        printf '%s\ncomment_refs: selftest FAILED: the unchanged copy did not pass\n' "$out"
        exit 1
    fi
    printf '%s\n' '/* As ../shared/NOTES.md says, and lib/src/nowhere.c does. */' \
        >>"$tmp/lib/src/status.c"
    printf '%s\n' '# STACK-NOTES measured it.' >>"$tmp/scripts/stack.sh"
    printf '%s\n' '-- See docs/migrations.md.' >>"$tmp/sql/gxp/001_ledger.sql"
    if out=$(bash "$SELF" "$tmp"); then
        printf '%s\ncomment_refs: selftest FAILED: the planted citations passed\n' "$out"
        exit 1
    fi
    for want in "lib/src/status.c:.*'../shared/NOTES.md'" "lib/src/status.c:.*'lib/src/nowhere.c'" \
        "scripts/stack.sh:.*'STACK-NOTES'" "sql/gxp/001_ledger.sql:.*'docs/migrations.md'"; do
        if ! grep -q "$want" <<<"$out"; then
            printf '%s\ncomment_refs: selftest FAILED: no line matching %s\n' "$out" "$want"
            exit 1
        fi
    done
    printf 'comment_refs: selftest ok: the unchanged copy passed, the 4 planted citations were listed\n'
    exit 0
fi
REPO=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/../..}" && pwd)

exec python3 - "$REPO" <<'PYTHON'
import os
import re
import sys

root = os.path.realpath(sys.argv[1])
SKIP = {".git", "node_modules", ".gf"}
ME = "tests/unit/comment_refs_check.sh"


def kind(name):
    if name in ("CMakeLists.txt", "Makefile"):
        return "hash"
    return {".c": "c", ".h": "c", ".proto": "c", ".sh": "hash", ".cmake": "hash",
            ".sql": "sql"}.get(os.path.splitext(name)[1])


# Every file and directory of the tree (build directories at the root left out), and the
# sources whose comments are read.
tree, sources = set(), []
for d, dirs, files in os.walk(root):
    rel = os.path.relpath(d, root)
    dirs[:] = [x for x in dirs if x not in SKIP and not (rel == "." and x.startswith("build"))]
    for x in dirs + files:
        tree.add(os.path.normpath(os.path.join(rel, x)))
    sources += [os.path.normpath(os.path.join(rel, f)) for f in files if kind(f)]
sources = sorted(s for s in sources if s != ME)


def c_comments(text):
    """(line, text) of each /* */ and // comment, strings and character literals skipped."""
    i, n, line = 0, len(text), 1
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
        elif ch in "\"'":
            j = i + 1
            while j < n and text[j] != ch and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j
            yield line, text[i + 2:j]
            line += text.count("\n", i, j)
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            yield line, text[i + 2:j]
            i = j - 1
        i += 1


def hash_comments(text, shell):
    """(line, text) of each # comment; quotes may span lines, shell here-documents are data."""
    quote, heredoc = None, None
    for line, s in enumerate(text.split("\n"), 1):
        if heredoc is not None:
            if s.strip() == heredoc:
                heredoc = None
            continue
        i = 0
        while i < len(s):
            ch = s[i]
            if quote:
                if ch == "\\" and quote == '"':
                    i += 1
                elif ch == quote:
                    quote = None
            elif ch in "\"'":
                quote = ch
            elif ch == "\\":
                i += 1
            elif ch == "#" and (i == 0 or s[i - 1] in " \t;("):
                yield line, s[i + 1:]
                break
            i += 1
        if shell:
            m = re.search(r"<<-?\s*(['\"]?)(\w+)\1", s)
            if m and quote is None:
                heredoc = m.group(2)


def sql_comments(text):
    i, n, line = 0, len(text), 1
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
        elif ch == "'":
            j = text.find("'", i + 1)
            j = n if j < 0 else j
            line += text.count("\n", i, j)
            i = j
        elif text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            yield line, text[i + 2:j]
            i = j - 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j
            yield line, text[i + 2:j]
            line += text.count("\n", i, j)
            i = j + 1
        i += 1


URL = re.compile(r"[A-Za-z][\w+.-]*://\S*")
RUN = re.compile(r"[\w./+-]+")
WITH_EXT = re.compile(r"^[\w+-][\w.+-]*\.[A-Za-z][A-Za-z0-9]{0,7}$")
NOTES = re.compile(r"^(?:[A-Z][A-Z0-9]*-)*NOTES$")
SYSTEM = ("/proc/", "/sys/", "/dev/", "/etc/", "/tmp/", "/usr/", "/var/", "/run/", "/bin/",
          "/lib/", "/opt/")
BUILT = ("build/", "build-", "bin/", "tests-bin/", "fuzz-bin/", "generated/", ".gf/", "~/")
# Headers of the system and of other projects, as an include names them.
FOREIGN = ("sys/", "netinet/", "arpa/", "linux/", "grpc/", "rabbitmq-c/", "google/protobuf/")


def citations(comment):
    """The path-like tokens of a comment that name a file: dir/name.ext, *.md, *-NOTES."""
    text = URL.sub(" ", comment)
    for m in RUN.finditer(text):
        tok = m.group(0).rstrip(".-/,").lstrip("-")
        before = text[m.start() - 1] if m.start() > 0 else " "
        after = text[m.end()] if m.end() < len(text) else " "
        if before in "<>*{}$%~@" or after in "<>*{}$%":
            continue  # a pattern or a placeholder, not a path
        *dirs, last = tok.split("/")
        if any(re.match(r"^[A-Z][A-Z0-9_]+$", d) for d in dirs):
            continue  # a placeholder directory: DIR/report.png, data/NAME/nginx.conf
        if "/" in tok and WITH_EXT.match(last) or tok.endswith(".md") or NOTES.match(tok):
            yield tok


def ok(tok, citing):
    if tok.startswith(SYSTEM) or tok.startswith(BUILT) or tok.startswith(FOREIGN):
        return True
    if ".pb-c." in tok or "node_modules/" in tok:
        return True
    if tok.startswith("/"):
        return False  # an absolute path outside the system's: not the repository's
    names = [tok] if not NOTES.match(tok) else [tok, tok + ".md"]
    for name in names:
        for base in (root, os.path.join(root, os.path.dirname(citing))):
            p = os.path.realpath(os.path.join(base, name))
            if (p == root or p.startswith(root + os.sep)) and os.path.exists(p):
                return True
        plain = re.sub(r"^(\.\.?/)+", "", name)
        if tok.startswith(".."):
            continue  # climbing out of the tree: only a real path inside it counts
        if plain in tree or any(t.endswith("/" + plain) for t in tree):
            return True
    return False


read = {"c": c_comments, "sql": sql_comments}
bad, checked = [], 0
for src in sources:
    with open(os.path.join(root, src), encoding="utf-8", errors="replace") as f:
        text = f.read()
    k = kind(os.path.basename(src))
    comments = hash_comments(text, src.endswith(".sh")) if k == "hash" else read[k](text)
    for line, comment in comments:
        for off, part in enumerate(comment.split("\n")):
            for tok in citations(part):
                checked += 1
                if not ok(tok, src):
                    bad.append("%s:%d: '%s' is not in the repository" % (src, line + off, tok))
for b in bad:
    print("comment_refs: " + b)
if checked < 20:
    print("comment_refs: only %d citations found in %d files: the scan is broken"
          % (checked, len(sources)))
    sys.exit(1)
if bad:
    print("comment_refs: FAILED: %d citation(s) of paths not in the repository" % len(bad))
    sys.exit(1)
print("comment_refs: %d citations in %d source files, every one in the repository"
      % (checked, len(sources)))
PYTHON
