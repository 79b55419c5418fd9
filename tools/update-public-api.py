#!/usr/bin/env python3
"""Brings each project's PublicAPI.Unshipped.txt up to date with its public surface.

Builds the solution's projects, reads the public API analyzer's findings (RS0016: public but not
declared; RS0017: declared but gone) and adds or removes those lines, until the build reports
none. Run from the repository root after changing what an assembly makes public; review the diff.
"""
import re
import subprocess
import sys
from pathlib import Path

PROJECTS = ["tests/HeteroBatch.Engine.Tests", "src/HeteroBatch", "src/HeteroBatch.Bench"]
FINDING = re.compile(r"error (RS001[67]): Symbol '(.+?)' is (?:not part of the declared public API|part of the declared API, but is either not public or could not be found).*\[(.+?\.csproj)\]")


def findings():
    found = set()
    for project in PROJECTS:
        run = subprocess.run(["dotnet", "build", project, "-c", "Release", "--nologo", "-v", "q"], capture_output=True, text=True)
        for line in (run.stdout + run.stderr).splitlines():
            m = FINDING.search(line)
            if m:
                found.add((m.group(1), m.group(2), m.group(3)))
    return found


for attempt in range(5):
    found = findings()
    if not found:
        print("public API files are up to date")
        sys.exit(0)
    by_file = {}
    for rule, symbol, csproj in found:
        by_file.setdefault(Path(csproj).parent / "PublicAPI.Unshipped.txt", []).append((rule, symbol))
    for path, items in by_file.items():
        lines = path.read_text().splitlines() if path.exists() else ["#nullable enable"]
        gone = {s for r, s in items if r == "RS0017"}
        lines = [l for l in lines if l not in gone]
        lines += sorted({s for r, s in items if r == "RS0016"} - set(lines))
        header, body = lines[:1], sorted(set(lines[1:]) - {""})
        path.write_text("\n".join(header + body) + "\n")
        print(f"{path}: {sum(r == 'RS0016' for r, _ in items)} added, {len(gone)} removed")
sys.exit("the public API files still differ after 5 passes")
