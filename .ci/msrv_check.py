"""MSRV check for CI: reads `cargo metadata --format-version 1` on stdin.

Fails when a locked dependency declares a `rust-version` newer than the one the workspace
declares: only one toolchain can be installed on our machines, so building with the declared
MSRV is not possible, and this is how a dependency that raises it gets caught. Every package
of the lock counts (every target platform, dev-dependencies too): a user on another platform
or running our tests meets them as well.
"""

import json
import sys


def parse(version):
    """'1.85' or '1.85.1' -> (1, 85, 1)."""
    parts = [int(p) for p in version.split(".")]
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts)


def main():
    meta = json.load(sys.stdin)
    members = set(meta["workspace_members"])
    declared = {}
    deps = []
    for pkg in meta["packages"]:
        rv = pkg.get("rust_version")
        if pkg["id"] in members:
            declared[pkg["name"]] = rv
        elif rv:
            deps.append((parse(rv), rv, pkg["name"], pkg["version"]))

    versions = {rv for rv in declared.values()}
    if None in versions:
        missing = sorted(name for name, rv in declared.items() if rv is None)
        sys.exit(f"msrv: workspace members without rust-version: {', '.join(missing)}")
    if len(versions) != 1:
        sys.exit(f"msrv: members disagree on rust-version: {declared}")
    msrv = versions.pop()

    deps.sort(reverse=True)
    too_new = [d for d in deps if d[0] > parse(msrv)]
    if too_new:
        for _, rv, name, version in too_new:
            print(f"msrv: {name} {version} needs Rust {rv}", file=sys.stderr)
        sys.exit(
            f"msrv: {len(too_new)} locked dependencies need a newer Rust than the declared "
            f"rust-version {msrv}; raise it in Cargo.toml or pin older versions"
        )
    top = deps[0] if deps else None
    if top:
        print(f"msrv: declared {msrv}; highest among {len(deps)} locked dependencies is "
              f"{top[1]} ({top[2]} {top[3]})")
    else:
        print(f"msrv: declared {msrv}; no dependency declares a rust-version")


if __name__ == "__main__":
    main()
