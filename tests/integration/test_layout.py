"""The router's layout rules (docs/ARCHITECTURE.md, "session-router"): the core includes no
module, modules include the core and no other module, the core's files form no include
cycle, and every module is registered from main.c's one list."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROUTER = ROOT / "session-router"


def includes(path):
    return re.findall(r'^#include "([^"]+)"', path.read_text(), re.M)


def test_core_includes_no_module():
    modules = {p.name for p in (ROUTER / "modules").iterdir()}
    for f in sorted((ROUTER / "core").iterdir()):
        bad = [i for i in includes(f) if i in modules]
        assert not bad, "core file %s includes module headers %s" % (f.name, bad)


def family(name):
    """A module's family: mod_muc.c and muc_archive.c are both of "muc"; its private
    header modules/muc.h is shared by those files alone."""
    stem = name[:-2]
    return (stem[4:] if stem.startswith("mod_") else stem).split("_")[0]


def test_modules_include_no_other_module():
    core = {p.name for p in (ROUTER / "core").iterdir()}
    for f in sorted((ROUTER / "modules").glob("*.c")):
        for inc in includes(f):
            own = inc == family(f.name) + ".h" and (ROUTER / "modules" / inc).exists()
            assert inc in core or inc == "modules.h" or own or (ROOT / "common" / inc).exists(), \
                "module %s includes %s, which is neither the core's, common nor its own " \
                "family's header" % (f.name, inc)


def test_module_helper_files_belong_to_a_module():
    """A file of modules/ that is not a module (muc_archive.c) belongs to one (mod_muc.c)."""
    for f in sorted((ROUTER / "modules").glob("*.c")):
        if not f.name.startswith("mod_"):
            assert (ROUTER / "modules" / ("mod_%s.c" % family(f.name))).exists(), \
                "%s belongs to no module" % f.name


def test_no_include_cycle_among_core_files():
    core = {p.name: p for p in (ROUTER / "core").iterdir()}
    graph = {}
    for name, path in core.items():
        targets = [i for i in includes(path) if i in core and i != name]
        # A source file "is" its header: foo.c including bar.h makes foo.h depend on bar.h.
        node = name[:-2] + ".h" if name.endswith(".c") and name[:-2] + ".h" in core else name
        graph.setdefault(node, set()).update(t for t in targets if t != node)
    state = {}

    def visit(n, stack):
        if state.get(n) == "done":
            return
        assert state.get(n) != "active", "include cycle: %s" % " -> ".join(stack + [n])
        state[n] = "active"
        for m in sorted(graph.get(n, ())):
            visit(m, stack + [n])
        state[n] = "done"

    for n in sorted(graph):
        visit(n, [])


def test_every_module_is_registered_once():
    main = (ROUTER / "main.c").read_text()
    listed = re.findall(r"&(mod_[a-z_0-9]+),", main)
    defined = sorted(p.stem for p in (ROUTER / "modules").glob("mod_*.c"))
    assert sorted(listed) == defined, "main.c lists %s, modules/ defines %s" % (listed, defined)
    assert len(listed) == len(set(listed))
