#!/usr/bin/env python3
"""Every doctest case must reach CTest. doctest_discover_tests registers each
case by its name, and a ';' in a name splits it (CMake lists): the truncated
name then matches no case, and CTest reports a pass for a test that never ran.
"""
import pathlib
import re
import sys

unit = pathlib.Path(__file__).resolve().parent
bad = [
    "%s: %s" % (path.relative_to(unit), name)
    for path in sorted(unit.rglob("*.cpp"))
    for name in re.findall(r'TEST_CASE\("([^"]*)"', path.read_text())
    if ";" in name
]
for line in bad:
    print("a ';' keeps this case from running under CTest:", line)
print("%d case names checked in %s" % (sum(len(re.findall(r'TEST_CASE\("', p.read_text())) for p in unit.rglob("*.cpp")), unit))
sys.exit(1 if bad else 0)
