#!/usr/bin/python3
"""Every external program the project's scripts, tests and build call comes from a package that
deploy/install-deps.sh installs (or that one of those depends on), or from minbase Debian 12
itself (Priority: required, and apt). A program that is present here only because this machine
happened to have it (the `file` that cpack's DEB generator runs, 2026-12) fails this test before
it fails a fresh machine.

What counts as "called":
  - shell scripts (*.sh, .ci/run): the word in command position (after ; && || | $( ` ! then do
    else exec sudo env timeout runuser -- ...), skipping assignments, functions the script
    defines, builtins and paths into the build;
  - Python: subprocess argument lists and shutil.which("...") names;
  - C++ tests: the first word of the command strings given to std::system/popen and execlp;
  - CMake: find_program() names, and programs that a CMake setting makes another tool run
    (TRIGGERS below: cpack's DEB generator with SHLIBDEPS runs `file` and dpkg-shlibdeps).

  external_programs_test.py SOURCE_DIR        check the tree; print a table of program -> package
  external_programs_test.py --self-test       the check itself flags what it should
"""
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

SHELL_BUILTINS = set("""
. : [ [[ ]] alias bg bind break builtin caller case cd command compgen complete continue declare
dirs disown do done echo elif else enable esac eval exec exit export false fc fg fi for function
getopts hash help history if in jobs kill let local logout mapfile popd printf pushd pwd read
readarray readonly return select set shift shopt source suspend test then time times trap true
type typeset ulimit umask unalias unset until wait while { } ! coproc
""".split())

# Words that introduce a command: the next word is the program.
PREFIXES = {"sudo", "$SUDO", "exec", "env", "nohup", "timeout", "xargs", "command", "nice",
            "stdbuf", "setsid", "runuser", "as_pg", "time", "ionice", "taskset"}

# Programs some tool runs on our behalf because of a setting in our build files: pattern in the
# file -> the programs it makes that tool run.
TRIGGERS = [
    (re.compile(r"CPACK_DEBIAN_PACKAGE_SHLIBDEPS\s+ON"), ["file", "dpkg-shlibdeps"],
     "cpack's DEB generator (SHLIBDEPS)"),
]

# Programs install-deps.sh installs only where no copy exists (see its comments): program -> the
# package a fresh machine gets it from.
CONDITIONAL = {"kubectl": "kubernetes-client"}

# The project's own programs (built here, installed by its packages).
OWN = re.compile(r"^nasforge")

# This file names programs as data.
SELF = "tests/deploy/external_programs_test.py"

# Scripts that run elsewhere (the lent GPU machine: Ubuntu with its own image), not on Debian.
ELSEWHERE = ("deploy/gpu/",)


def sh(*args):
    return subprocess.run(args, capture_output=True, text=True).stdout


def installed_packages():
    """name -> (priority, [dependency alternatives]), provides -> [names], for installed ones."""
    out = sh("dpkg-query", "-W", "-f",
             "${Package}\t${Status}\t${Priority}\t${Pre-Depends}, ${Depends}\t${Provides}\n")
    pkgs, provides = {}, {}
    for line in out.splitlines():
        name, status, prio, deps, prov = (line.split("\t") + [""] * 5)[:5]
        if not status.endswith(" installed"):
            continue
        alts = []
        for group in deps.split(","):
            group = group.strip()
            if group:
                alts.append([re.split(r"[\s:(]", a.strip())[0] for a in group.split("|")])
        pkgs[name] = (prio, alts)
        for p in prov.split(","):
            p = re.split(r"[\s(]", p.strip())[0]
            if p:
                provides.setdefault(p, []).append(name)
    return pkgs, provides


def closure(roots, pkgs, provides):
    """The installed packages that installing `roots` brings (Depends and Pre-Depends)."""
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        candidates = [name] if name in pkgs else provides.get(name, [])
        for c in candidates:
            if c in seen:
                continue
            seen.add(c)
            for alts in pkgs[c][1]:
                # An alternative already in the set satisfies the group; else every installed one
                # might be the one apt picks on a fresh machine, so each is followed.
                todo.extend(a for a in alts if a in pkgs or a in provides)
    return seen


def allowed_packages(src, pkgs, provides):
    listed = sh("bash", os.path.join(src, "deploy/install-deps.sh"), "--list").split()
    if not listed:
        sys.exit("FAIL deploy/install-deps.sh --list printed no packages")
    # The kubectl rule installs kubernetes-client only where no kubectl exists; a fresh machine
    # has none, so it is part of what a fresh machine gets.
    if "kubernetes-client" not in listed:
        listed.append("kubernetes-client")
    minbase = [n for n, (prio, _) in pkgs.items() if prio == "required"] + ["apt"]
    return closure(listed + minbase, pkgs, provides), listed


def shell_commands(text, path):
    """(program, line number) for each word in command position of a shell script, read with
    shfmt's parser (its syntax tree as JSON): quoted text, here-documents and arrays are data."""
    r = subprocess.run(["shfmt", "-ln", "bash", "-tojson"], input=text, capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise SystemExit("FAIL %s: shfmt cannot parse it: %s" % (path, r.stderr.strip()))
    tree = json.loads(r.stdout)
    functions, calls = set(), []

    def literal(word):
        parts = word.get("Parts") or []
        if len(parts) == 1 and parts[0].get("Type") == "Lit":
            return parts[0]["Value"], word["Pos"]["Line"]
        if (len(parts) == 1 and parts[0].get("Type") in ("DblQuoted", "SglQuoted") and
                len(parts[0].get("Parts") or []) <= 1):
            inner = parts[0].get("Parts") or []
            if parts[0]["Type"] == "SglQuoted":
                return parts[0].get("Value", ""), word["Pos"]["Line"]
            if inner and inner[0].get("Type") == "Lit":
                return inner[0]["Value"], word["Pos"]["Line"]
        return None, word.get("Pos", {}).get("Line", 0)

    def walk(node):
        if isinstance(node, list):
            for n in node:
                walk(n)
            return
        if not isinstance(node, dict):
            return
        if node.get("Type") == "FuncDecl":
            functions.add(node["Name"]["Value"])
        if node.get("Type") == "CallExpr" and node.get("Args"):
            args = node["Args"]
            i = 0
            while i < len(args):
                w, no = literal(args[i])
                if w in PREFIXES:
                    i += 1
                    # timeout 30 / runuser -u postgres -- / env -i / nice -n 5 / xargs -r
                    while i < len(args):
                        a, _ = literal(args[i])
                        prev, _ = literal(args[i - 1])
                        if a is not None and (a.startswith("-") or re.match(r"^\d+[smh]?$", a) or
                                              prev in ("-u", "-n", "-k", "-s") or
                                              re.match(r"^[A-Za-z_]\w*=", a)):
                            i += 1
                            continue
                        break
                    continue
                if w is not None:
                    calls.append((w, no))
                break
        for v in node.values():
            if isinstance(v, (dict, list)):
                walk(v)

    walk(tree)
    return [(w, no) for w, no in calls
            if w not in SHELL_BUILTINS and w not in functions and
            (re.match(r"^[A-Za-z][\w.+-]*$", w) or SYSTEM_PATH.match(w))]


PY_CALL = re.compile(r"(?:Popen|run|check_call|check_output|call|execvp?)\(\s*\[\s*(?:[A-Z_]+\s*\+\s*)?"
                     r"[\"']([A-Za-z][\w.+-]*)[\"']")
PY_WHICH = re.compile(r"which\(\s*[\"']([A-Za-z][\w.+-]*)[\"']")
CC_EXEC = re.compile(r"exec[lv]p\(\s*\"([A-Za-z][\w.+-]*)\"")
CC_STRING = re.compile(r"\"([a-z][\w.+-]*) ")
SYSTEM_PATH = re.compile(r"^/(?:usr/)?s?bin/[A-Za-z][\w.+-]*$")
ABS_PROGRAM = re.compile(r"(?<![\w/.$-])(/(?:usr/)?s?bin/[A-Za-z][\w.+-]*)")
CMAKE_FIND = re.compile(r"find_program\(\s*\w+\s+(?:NAMES\s+)?([A-Za-z][\w.+-]*)")


def scan(src, files):
    """program -> [where it is called]."""
    calls = {}

    def add(prog, where):
        calls.setdefault(prog, []).append(where)

    for rel in files:
        if rel.startswith(ELSEWHERE) or rel == SELF:
            continue
        full = os.path.join(src, rel)
        try:
            text = open(full, encoding="utf-8").read()
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        if rel.endswith(".sh") or rel == ".ci/run":
            for prog, no in shell_commands(text, rel):
                add(prog, "%s:%d" % (rel, no))
        elif rel.endswith(".py"):
            for rx in (PY_CALL, PY_WHICH):
                for m in rx.finditer(text):
                    add(m.group(1), "%s:%d" % (rel, text.count("\n", 0, m.start()) + 1))
        elif rel.startswith("tests/") and rel.endswith((".cc", ".h")):
            for m in CC_EXEC.finditer(text):
                add(m.group(1), "%s:%d" % (rel, text.count("\n", 0, m.start()) + 1))
            if re.search(r"std::system\(|popen\(", text):
                # Command strings: a literal that starts with a program name and a space, when
                # that name is a program on this machine (other literals are messages).
                for m in CC_STRING.finditer(text):
                    if shutil.which(m.group(1)) and m.group(1) not in SHELL_BUILTINS:
                        add(m.group(1), "%s:%d" % (rel, text.count("\n", 0, m.start()) + 1))
        if rel.endswith(("CMakeLists.txt", ".cmake", ".py", ".cc", ".h")):
            # Programs named by their full path: add_test(COMMAND /usr/bin/python3 ...), "#!"
            for m in ABS_PROGRAM.finditer(text):
                add(m.group(1), "%s:%d" % (rel, text.count("\n", 0, m.start()) + 1))
        if rel.endswith(("CMakeLists.txt", ".cmake")):
            for m in CMAKE_FIND.finditer(text):
                add(m.group(1), "%s:%d" % (rel, text.count("\n", 0, m.start()) + 1))
        for rx, progs, why in TRIGGERS if rel.endswith(("CMakeLists.txt", ".cmake")) else []:
            m = rx.search(text)
            if m:
                for p in progs:
                    add(p, "%s:%d (%s)" % (rel, text.count("\n", 0, m.start()) + 1, why))
    return calls


# Python files whose imports must be installable: what tests and the shipped client import.
PY_IMPORT_DIRS = ("tests/", "clients/python/", "export/", "dashboards/")


def python_modules(src, files):
    """module -> [where imported], for top-level imports of the tests' and clients' Python."""
    mods = {}
    local = {os.path.splitext(os.path.basename(f))[0] for f in files if f.endswith(".py")}
    local |= {os.path.basename(os.path.dirname(f)) for f in files if f.endswith("__init__.py")}
    for rel in files:
        if not (rel.endswith(".py") and rel.startswith(PY_IMPORT_DIRS)):
            continue
        tree = ast.parse(open(os.path.join(src, rel), encoding="utf-8").read(), rel)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in (n.split(".")[0] for n in names):
                if name not in local and name != "__future__":
                    mods.setdefault(name, []).append("%s:%d" % (rel, node.lineno))
    return mods


def module_file(name):
    """Where Debian's python3 finds a module (None: nowhere; "builtin": compiled in)."""
    code = ("import importlib.util,sys\n"
            "s=importlib.util.find_spec(sys.argv[1])\n"
            "print('' if s is None else (s.origin if s.origin not in (None,'built-in','frozen')"
            " else 'builtin'))")
    r = subprocess.run(["/usr/bin/python3", "-c", code, name], capture_output=True, text=True)
    return r.stdout.strip() or None


def owner(prog):
    """(path, package) of a program on PATH; package None if no Debian package owns it."""
    path = prog if prog.startswith("/") else shutil.which(prog)
    if not path or not os.path.exists(path):
        return None, None
    candidates = [path, os.path.realpath(path)]
    for c in list(candidates):  # merged /usr: dpkg may know /bin/x for /usr/bin/x
        if c.startswith("/usr/"):
            candidates.append(c[4:])
        else:
            candidates.append("/usr" + c)
    # A program in /usr/local is this machine's own: look for the same name in Debian's places.
    for d in ("/usr/bin", "/usr/sbin", "/bin", "/sbin"):
        candidates.append(os.path.join(d, os.path.basename(prog)))
    for c in candidates:
        r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
        if r.returncode == 0:
            for line in r.stdout.splitlines():
                pkg, _, f = line.partition(": ")
                if f.strip() == c and "diversion" not in line:
                    return c, pkg.split(":")[0].split(",")[0].strip()
    return path, None


def check(src, files, pkgs, provides, allowed, listed):
    calls = scan(src, files)
    problems, rows = [], []
    for prog in sorted(calls):
        where = calls[prog]
        if OWN.match(prog):
            continue
        if prog in CONDITIONAL and CONDITIONAL[prog] in listed:
            rows.append((prog, CONDITIONAL[prog] + " (where none)", where[0]))
            continue
        path, pkg = owner(prog)
        if path is None:
            problems.append("%s: not found on this machine; called at %s" % (prog, where[0]))
            continue
        if pkg is None:
            problems.append("%s: %s belongs to no Debian package; called at %s" %
                            (prog, path, where[0]))
            continue
        rows.append((prog, pkg, where[0]))
        if pkg not in allowed:
            problems.append("%s: from package %s, which deploy/install-deps.sh does not install "
                            "(nor anything it installs depend on it, nor is it in minbase); "
                            "called at %s. Add %s to PKGS in deploy/install-deps.sh" %
                            (prog, pkg, ", ".join(where[:3]), pkg))
    for mod, where in sorted(python_modules(src, files).items()):
        f = module_file(mod)
        if f is None:
            problems.append("python module %s: /usr/bin/python3 cannot import it; imported at %s"
                            % (mod, where[0]))
            continue
        if f == "builtin":
            continue
        r = subprocess.run(["dpkg", "-S", f], capture_output=True, text=True)
        pkg = r.stdout.split(":")[0].strip() if r.returncode == 0 else None
        if pkg is None:
            problems.append("python module %s: %s belongs to no Debian package; imported at %s"
                            % (mod, f, where[0]))
        elif pkg not in allowed:
            problems.append("python module %s: from package %s, which deploy/install-deps.sh "
                            "does not install; imported at %s. Add %s to PKGS" %
                            (mod, pkg, ", ".join(where[:3]), pkg))
        else:
            rows.append(("py:" + mod, pkg, where[0]))
    return rows, problems


def self_test(pkgs, provides):
    """The check flags a program from a package outside the set, and one that does not exist."""
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "deploy"))
        with open(os.path.join(tmp, "deploy/install-deps.sh"), "w") as f:
            f.write('if [ "$1" = --list ]; then echo coreutils; fi\n')
        with open(os.path.join(tmp, "deploy/a.sh"), "w") as f:
            f.write("set -e\nls /\nx=$(cpack -G DEB)\ntimeout 5 nf-no-such-program -v\n")
        with open(os.path.join(tmp, "CMakeLists.txt"), "w") as f:
            f.write("set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)\n")
        os.makedirs(os.path.join(tmp, "tests"))
        with open(os.path.join(tmp, "tests/t.py"), "w") as f:
            f.write('"""import model"""\nimport os\nimport nf_no_such_module\n')
        allowed, listed = allowed_packages(tmp, pkgs, provides)
        allowed.discard("file")  # as on a minbase machine
        rows, problems = check(tmp, ["deploy/install-deps.sh", "deploy/a.sh", "CMakeLists.txt",
                                     "tests/t.py"],
                               pkgs, provides, allowed, listed)
        text = "\n".join(problems)
        ok = True
        for want in ("nf-no-such-program: not found", "file: from package file",
                     "cpack: from package cmake", "python module nf_no_such_module: "):
            if want not in text:
                print("FAIL self-test: expected a problem '%s'; got:\n%s" % (want, text))
                ok = False
        if any(p.startswith(("ls:", "python module model", "python module os")) for p in problems):
            print("FAIL self-test: ls (coreutils, listed) flagged:\n" + text)
            ok = False
        return ok


def main():
    pkgs, provides = installed_packages()
    if not pkgs:
        sys.exit("FAIL dpkg-query listed no packages: this test needs a Debian machine")
    if sys.argv[1:] == ["--self-test"]:
        ok = self_test(pkgs, provides)
        print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
        sys.exit(0 if ok else 1)
    src = os.path.abspath(sys.argv[1])
    files = sh("git", "-C", src, "ls-files").split()
    if not files:  # not a git checkout (an unpacked tarball): walk the tree
        files = [os.path.relpath(os.path.join(d, f), src) for d, _, fs in os.walk(src)
                 if "/build" not in d and "/.git" not in d for f in fs]
    allowed, listed = allowed_packages(src, pkgs, provides)
    self_ok = self_test(pkgs, provides)
    rows, problems = check(src, files, pkgs, provides, allowed, listed)
    for prog, pkg, where in rows:
        print("ok   %-22s %-28s %s" % (prog, pkg, where))
    for p in problems:
        print("FAIL " + p)
    failed = len(problems) + (0 if self_ok else 1)
    print("%d passed, %d failed" % (len(rows) + (1 if self_ok else 0), failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
