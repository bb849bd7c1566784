#!/usr/bin/python3
"""The docs hold: every relative link in the project's Markdown files leads to a file that
exists (and a #fragment to a heading of it), the README stays a short front door (at most 300
lines), and docs/reference.md is what docs/gen_reference.py writes from the programs now.

  docs_test.py links SOURCE_DIR
  docs_test.py reference SOURCE_DIR CONTROLLER WORKER CLI
  docs_test.py --self-test        a broken link and a missing anchor are caught
"""
import os
import re
import subprocess
import sys
import tempfile

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
README_MAX_LINES = 300


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    s = heading.strip().lower()
    s = re.sub(r"[`*_~]", "", s)
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(path):
    out, fence = set(), False
    counts = {}
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            fence = not fence
            continue
        if fence:
            continue
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            a = slug(m.group(1))
            n = counts.get(a, 0)
            counts[a] = n + 1
            out.add(a if n == 0 else "%s-%d" % (a, n))
    return out


def markdown_files(src):
    r = subprocess.run(["git", "-C", src, "ls-files", "*.md", "**/*.md"], capture_output=True,
                       text=True)
    files = sorted(set(r.stdout.split()))
    if not files:  # not a git checkout
        files = [os.path.relpath(os.path.join(d, f), src) for d, _, fs in os.walk(src)
                 if "/build" not in d and "/." not in d for f in fs if f.endswith(".md")]
    return files


def check_links(src, files):
    problems, checked = [], 0
    for rel in files:
        path = os.path.join(src, rel)
        text = open(path, encoding="utf-8").read()
        text = re.sub(r"```.*?```", "", text, flags=re.S)  # code is not links
        for m in LINK.finditer(text):
            target = m.group(1) or m.group(2)
            if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
                continue
            checked += 1
            line = text.count("\n", 0, m.start()) + 1
            file_part, _, frag = target.partition("#")
            dest = path if not file_part else os.path.normpath(
                os.path.join(os.path.dirname(path), file_part))
            if not os.path.exists(dest):
                problems.append("%s:%d: link to %s: no such file" % (rel, line, target))
                continue
            if frag and dest.endswith(".md") and frag not in anchors(dest):
                problems.append("%s:%d: link to %s: %s has no heading #%s" %
                                (rel, line, target, os.path.relpath(dest, src), frag))
    return checked, problems


def links(src):
    files = markdown_files(src)
    checked, problems = check_links(src, files)
    readme = os.path.join(src, "README.md")
    n = sum(1 for _ in open(readme, encoding="utf-8"))
    if n > README_MAX_LINES:
        problems.append("README.md: %d lines; keep it under %d (the rest belongs in docs/)" %
                        (n, README_MAX_LINES))
    print("checked %d links in %d files" % (checked, len(files)))
    return problems


def reference(src, controller, worker, cli):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "reference.md")
        subprocess.run(["/usr/bin/python3", os.path.join(src, "docs", "gen_reference.py"), src,
                        controller, worker, cli, out], check=True, capture_output=True)
        want = open(out, encoding="utf-8").read()
    committed_path = os.path.join(src, "docs", "reference.md")
    have = open(committed_path, encoding="utf-8").read() if os.path.exists(committed_path) else ""
    if want == have:
        print("docs/reference.md is current (%d lines)" % want.count("\n"))
        return []
    import difflib
    diff = list(difflib.unified_diff(have.splitlines(), want.splitlines(), "committed",
                                     "generated", lineterm="", n=1))
    print("\n".join(diff[:60]))
    return ["docs/reference.md is out of date: run `ninja -C build docs-reference` and commit it"]


def self_test():
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "docs"))
        with open(os.path.join(tmp, "docs", "b.md"), "w") as f:
            f.write("# Title\n\n## Flags of `x` (the CLI)\n")
        with open(os.path.join(tmp, "a.md"), "w") as f:
            f.write("[ok](docs/b.md#flags-of-x-the-cli) [gone](docs/c.md) [bad](docs/b.md#nope)\n"
                    "[web](https://example.org/x)\n```\n[in code](nowhere.md)\n```\n")
        checked, problems = check_links(tmp, ["a.md", "docs/b.md"])
        text = "\n".join(problems)
        ok = (checked == 3 and "docs/c.md: no such file" in text and "no heading #nope" in text
              and len(problems) == 2)
        if not ok:
            print("FAIL self-test: checked %d, problems:\n%s" % (checked, text))
        return ok


def main():
    if sys.argv[1] == "--self-test":
        ok = self_test()
        print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
        sys.exit(0 if ok else 1)
    what, src = sys.argv[1], os.path.abspath(sys.argv[2])
    ok_self = self_test()
    problems = links(src) if what == "links" else reference(src, *sys.argv[3:6])
    for p in problems:
        print("FAIL " + p)
    failed = len(problems) + (0 if ok_self else 1)
    print("%d passed, %d failed" % (2 - min(failed, 2), failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
