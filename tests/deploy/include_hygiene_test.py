#!/usr/bin/python3
"""Every C++ file includes the standard headers it uses, not by accident through another one.

GCC 13's libstdc++ stopped including <cstdint>, <cstdio>, <cstdlib>, <string> and <system_error>
from its other headers (GCC 13 porting notes); code that used SIZE_MAX or int64_t through
<algorithm> built with GCC 12 and failed with 13 (core/suggest.cc, 2026-12, the GPU build). This
test runs Debian's include-what-you-use over every project translation unit in the build's
compile_commands.json (its headers are checked through them) and fails on each missing include
of those headers, naming the file and the symbol (LibTorch's translation units excepted: clang
cannot parse LibTorch 1.13's headers). It does not ask for full IWYU conformance
(forward declarations, <utility> for std::move, ...): only what a newer compiler is known to
break.

  include_hygiene_test.py SOURCE_DIR BUILD_DIR [FILE...]   FILEs: only these (default: all)
  include_hygiene_test.py --self-test BUILD_DIR             it flags a file that needs it
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

# Headers newer compilers no longer bring in transitively, and their C spellings.
WATCHED = {"cstdint": "cstdint", "stdint.h": "cstdint", "cstdio": "cstdio", "stdio.h": "cstdio",
           "cstdlib": "cstdlib", "stdlib.h": "cstdlib", "string": "string",
           "system_error": "system_error", "cinttypes": "cinttypes", "inttypes.h": "cinttypes"}
ADD_BLOCK = re.compile(r"^(\S+) should add these lines:\n(.*?)\n\n", re.M | re.S)
LINE = re.compile(r"#include <([^>]+)>\s*(?://\s*for\s*(.*))?")


def iwyu(build, files, jobs):
    """iwyu_tool's output for `files` (paths as in compile_commands.json)."""
    cmd = ["iwyu_tool", "-p", build, "-j", str(jobs)] + files + [
        "--", "-Xiwyu", "--no_fwd_decls"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.stdout + r.stderr


def missing(output, src):
    """[(file, header, symbols)] for watched headers iwyu says a file should add."""
    out = []
    for m in ADD_BLOCK.finditer(output):
        f = m.group(1)
        if not f.startswith(src + "/") or "/build" in f[len(src):]:
            continue  # generated code and other projects' headers are not ours to fix
        for line in m.group(2).splitlines():
            lm = LINE.match(line.strip())
            if lm and lm.group(1) in WATCHED:
                out.append((os.path.relpath(f, src), WATCHED[lm.group(1)], (lm.group(2) or "").strip()))
    return out


def compile_errors(output):
    """iwyu could not parse a file: its error lines (the check must not pass silently)."""
    return [l for l in output.splitlines() if re.search(r"\berror:", l)]


def self_test(build):
    """A file that uses SIZE_MAX and int64_t through <algorithm> only is flagged."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        os.makedirs(src)
        f = os.path.join(src, "uses.cc")
        with open(f, "w") as fh:
            fh.write("#include <algorithm>\n#include <string>\n#include <vector>\n"
                     "unsigned long f(const std::vector<long>& v) {\n"
                     "  unsigned long best = SIZE_MAX;\n"
                     "  for (long x : v) best = std::min<unsigned long>(best, x);\n"
                     "  return best;\n}\n")
        db = [{"directory": src, "file": f, "command": "c++ -std=gnu++20 -c " + f}]
        with open(os.path.join(tmp, "compile_commands.json"), "w") as fh:
            json.dump(db, fh)
        out = iwyu(tmp, [f], 1)
        found = missing(out, src)
        if not any(h == "cstdint" for _, h, _ in found):
            print("FAIL self-test: SIZE_MAX without <cstdint> not flagged; iwyu said:\n" + out)
            return False
        return True


def main():
    if not shutil.which("iwyu_tool"):
        sys.exit("FAIL iwyu_tool not found: deploy/install-deps.sh installs iwyu")
    if sys.argv[1] == "--self-test":
        ok = self_test(sys.argv[2])
        print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
        sys.exit(0 if ok else 1)
    src, build = os.path.realpath(sys.argv[1]), os.path.realpath(sys.argv[2])
    db_path = os.path.join(build, "compile_commands.json")
    if not os.path.exists(db_path):
        sys.exit("FAIL %s missing: configure with CMAKE_EXPORT_COMPILE_COMMANDS (CMakeLists.txt "
                 "sets it)" % db_path)
    db = json.load(open(db_path))
    # LibTorch's translation units are left out: clang (which iwyu is) cannot parse LibTorch
    # 1.13's headers with libstdc++ 12 (c10::IValue incomplete); LibTorch's own headers include
    # <cstdint> and <string> for everything that includes them.
    torch = {os.path.realpath(e["file"]) for e in db
             if "/torch/" in e.get("command", " ".join(e.get("arguments", [])))}
    files = sorted({os.path.realpath(e["file"]) for e in db} - torch)
    files = [f for f in files if f.startswith(src + "/") and not f.startswith(build + "/")
             and "/build" not in f[len(src):]]
    if len(sys.argv) > 3:
        want = {os.path.realpath(os.path.join(src, f)) for f in sys.argv[3:]}
        files = [f for f in files if f in want]
    if not files:
        sys.exit("FAIL no project translation units in " + db_path)
    ok_self = self_test(build)
    out = iwyu(build, files, os.cpu_count() or 2)
    errors = compile_errors(out)
    found = missing(out, src)
    for f, h, sym in sorted(set(found)):
        print("FAIL %s: add #include <%s> (uses %s)" % (f, h, sym or "it"))
    for e in errors[:20]:
        print("FAIL iwyu could not read: " + e)
    failed = len(set(found)) + len(errors) + (0 if ok_self else 1)
    print("checked %d translation units (and the headers they include); %d LibTorch ones left "
          "out" % (len(files), len(torch)))
    print("%d passed, %d failed" % (len(files) + (1 if ok_self else 0) - min(failed, len(files)),
                                    failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
