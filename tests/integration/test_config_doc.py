"""The README's configuration tables against what the programs say they take
(`--help-config`): every key a program reads is documented, every documented key is read by
a program, the documented defaults are the real ones, and the "used by" column names the
programs that read the key."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import build_dir

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = {"frontend": "c2s-frontend", "router": "session-router", "xmppctl": "xmppctl",
            "upload": "upload-server"}


def help_config(program):
    path = os.path.join(build_dir(), program)
    if not os.path.exists(path):
        pytest.skip("%s is not built" % path)
    out = subprocess.run([path, "--help-config"], capture_output=True, text=True, timeout=10,
                         check=True).stdout
    keys = {}
    for line in out.splitlines()[1:]:
        fields = line.split("\t")
        assert len(fields) >= 4 and fields[2].startswith("default '"), line
        assert fields[-1].strip(), "key %s has no help text" % fields[0]
        keys[fields[0]] = fields[2][len("default '"):-1]
    return keys


def readme_rows():
    """(key, default cell, used-by cell) of every row of the README's key tables (those
    whose header is | key | default | used by | ...)."""
    rows, in_keys = [], False
    for line in (ROOT / "README.md").read_text().splitlines():
        if not line.startswith("|"):
            in_keys = False
            continue
        if re.match(r"\|\s*key\s*\|\s*default\s*\|\s*used by\s*\|", line):
            in_keys = True
            continue
        m = re.match(r"\|\s*`([a-z0-9_]+)`\s*\|([^|]*)\|([^|]*)\|", line)
        if in_keys and m:
            rows.append((m.group(1), m.group(2).strip(), m.group(3).strip()))
    return rows


def test_readme_configuration_tables_match_the_programs():
    taken = {name: help_config(prog) for name, prog in PROGRAMS.items()}
    documented = {}
    for key, default, used_by in readme_rows():
        documented.setdefault(key, []).append((default, used_by))
    all_keys = set().union(*taken.values())
    missing = sorted(all_keys - set(documented))
    assert not missing, "keys the programs take but the README does not document: %s" % missing
    unknown = sorted(k for k in documented if k not in all_keys)
    assert not unknown, "README documents keys no program takes: %s" % unknown
    for key, docs in documented.items():
        readers = {name for name, keys in taken.items() if key in keys}
        defaults = {taken[name][key] for name in readers}
        assert len(defaults) == 1, "programs disagree on the default of %s: %s" % (key, defaults)
        real = defaults.pop()
        for default, used_by in docs:
            m = re.fullmatch(r"`([^`]*)`", default)
            # A default written as a literal must be the real one; a reference to another
            # key (`redis_host`) or a phrase ("(none)", "host name") describes an empty one.
            if m and m.group(1) not in all_keys:
                assert m.group(1) == real, \
                    "README says %s defaults to %r, the programs to %r" % (key, m.group(1), real)
            elif not m:
                assert real == "", \
                    "README describes %s's default as %r, but it is %r" % (key, default, real)
            named = set(re.findall(r"frontend|router|xmppctl|upload|all", used_by))
            want = {"frontend", "router", "upload"} & readers
            if "all" not in named:
                assert want <= named, "README: %s used by %r, but %s read it" \
                    % (key, used_by, sorted(readers))
                for name in named & {"frontend", "router", "upload"}:
                    assert name in readers, "README: %s used by %r, but %s does not read it" \
                        % (key, used_by, name)
