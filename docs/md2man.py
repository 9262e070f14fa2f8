#!/usr/bin/python3
"""md2man.py — turn one of docs/*.md (the man page sources) into a man page.

    md2man.py SOURCE.md OUTPUT.N [--root DIR] [--help-of NAME=BINARY]...

Used by meson at build time (python3 from Debian; no pandoc). The sources
are plain Markdown that reads well on GitHub too, in a small subset:

  # name(N) — one-line description     the title line (NAME section)
  ## SECTION                           .SH
  ### Sub heading                      .SS
  paragraphs, `code`, **bold**, *italic*, [text](link) (the link is dropped)
  - item / 1. item                     .IP bullets
  ```  ...  ```                        .nf/.fi literal block
  | a | b |  (a table)                 one .TP entry per row: a as the tag
  <!-- include: PATH -->               PATH (relative to --root) as a literal block
  <!-- help: NAME -->                  the output of `BINARY --help` (--help-of)

The includes keep the man pages current with the code: weir.yaml(5) shows
conf/weir.yaml (which unit_config_table checks against the config table),
and the OPTIONS of weir, weirctl and weir-bench are their own --help.
"""
import datetime
import os
import re
import subprocess
import sys


def esc(text):
    """Escape roff specials in running text."""
    text = text.replace("\\", "\\e")
    text = text.replace("-", "\\-")
    # Anything past ASCII as a groff Unicode escape: the page reads the same
    # with or without preconv.
    return "".join(c if ord(c) < 128 else "\\[u%04X]" % ord(c) for c in text)


def inline(text):
    """Markdown inline markup to roff font changes."""
    out = []
    pos = 0
    for m in re.finditer(r"`([^`]+)`|\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*|\[([^\]]+)\]\([^)]*\)", text):
        out.append(esc(text[pos:m.start()]))
        if m.group(1) is not None:
            out.append("\\fB" + esc(m.group(1)) + "\\fR")
        elif m.group(2) is not None:
            out.append("\\fB" + esc(m.group(2)) + "\\fR")
        elif m.group(3) is not None:
            out.append("\\fI" + esc(m.group(3)) + "\\fR")
        else:
            out.append(esc(m.group(4)))
        pos = m.end()
    out.append(esc(text[pos:]))
    return "".join(out)


def line_safe(s):
    """A roff text line may not start with . or ' (it would be a request)."""
    return "\\&" + s if s[:1] in (".", "'") else s


def literal(lines):
    out = [".PP", ".RS 4", ".nf"]
    for ln in lines:
        out.append(line_safe(esc(ln.rstrip("\n"))))
    out += [".fi", ".RE"]
    return out


def convert(src_path, root, helps):
    with open(src_path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    m = re.match(r"#\s+([\w.-]+)\((\d)\)\s+—\s+(.*)", lines[0])
    if not m:
        raise SystemExit("%s:1: the first line must be '# name(N) — description'" % src_path)
    name, section, desc = m.groups()
    date = datetime.datetime.utcfromtimestamp(
        int(os.environ.get("SOURCE_DATE_EPOCH", os.path.getmtime(src_path)))).strftime("%Y-%m-%d")
    out = ['.TH "%s" "%s" "%s" "weir" "weir manual"' % (name.upper(), section, date),
           ".SH NAME", "%s \\- %s" % (esc(name), inline(desc))]
    para = []

    def flush():
        if para:
            out.append(".PP")
            out.append(line_safe(inline(" ".join(p.strip() for p in para))))
            para.clear()

    i = 1
    while i < len(lines):
        ln = lines[i]
        inc = re.match(r"<!--\s*include:\s*(\S+)\s*-->", ln)
        hlp = re.match(r"<!--\s*help:\s*(\S+)\s*-->", ln)
        if inc:
            flush()
            with open(os.path.join(root, inc.group(1)), encoding="utf-8") as f:
                out += literal(f.read().rstrip("\n").split("\n"))
        elif hlp:
            flush()
            binary = helps.get(hlp.group(1))
            if not binary:
                raise SystemExit("%s:%d: no --help-of %s given" % (src_path, i + 1, hlp.group(1)))
            r = subprocess.run([binary, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               check=True)
            out += literal(r.stdout.decode().rstrip("\n").split("\n"))
        elif ln.startswith("<!--"):
            while "-->" not in lines[i]:
                i += 1
        elif ln.startswith("```"):
            flush()
            block = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                block.append(lines[i])
                i += 1
            out += literal(block)
        elif ln.startswith("### "):
            flush()
            out += [".SS " + inline(ln[4:].strip())]
        elif ln.startswith("## "):
            flush()
            out += [".SH " + inline(ln[3:].strip().upper())]
        elif ln.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                row = lines[i].strip().strip("|").replace("\\|", "\0")
                cells = [c.strip().replace("\0", "|") for c in row.split("|")]
                if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                    rows.append(cells)
                i += 1
            i -= 1
            for cells in rows[1:]:  # rows[0] is the header
                out += [".TP", line_safe(inline(cells[0])),
                        line_safe(inline(" ".join(c for c in cells[1:] if c)))]
        elif re.match(r"\s*([-*]|\d+\.)\s+", ln):
            flush()
            item = [re.sub(r"^\s*([-*]|\d+\.)\s+", "", ln)]
            while i + 1 < len(lines) and lines[i + 1].startswith("  ") and lines[i + 1].strip():
                i += 1
                item.append(lines[i].strip())
            out += [".IP \\(bu 2", line_safe(inline(" ".join(item)))]
        elif not ln.strip():
            flush()
        else:
            para.append(ln)
        i += 1
    flush()
    return "\n".join(out) + "\n"


def main(argv):
    args, root, helps = [], ".", {}
    it = iter(argv[1:])
    for a in it:
        if a == "--root":
            root = next(it)
        elif a == "--help-of":
            k, v = next(it).split("=", 1)
            helps[k] = v
        else:
            args.append(a)
    if len(args) != 2:
        sys.stderr.write(__doc__)
        return 2
    text = convert(args[0], root, helps)
    with open(args[1], "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
