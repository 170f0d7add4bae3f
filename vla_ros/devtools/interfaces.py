"""Build ROS 2 interface packages from `.msg`/`.srv`/`.action` files with colcon, and make them importable.

Robot message packages (tf2_msgs, piper_msgs, interbotix_xs_msgs, franka_msgs, ...) are not on PyPI.
Tests and pip-only machines build them from their definitions: `build_interfaces({"tf2_msgs": dir})`
writes a package.xml/CMakeLists.txt per package into a workspace, runs `colcon build` once (the result
is cached by a hash of the definitions), then `activate(install)` makes them importable in this process.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE_XML = """<?xml version="1.0"?>
<package format="3">
  <name>{name}</name>
  <version>0.0.0</version>
  <description>{name} interfaces built from their definitions by vla_ros</description>
  <maintainer email="none@example.com">vla_ros</maintainer>
  <license>Apache-2.0</license>
  <buildtool_depend>ament_cmake</buildtool_depend>
  <buildtool_depend>rosidl_default_generators</buildtool_depend>
{depends}
  <exec_depend>rosidl_default_runtime</exec_depend>
  <member_of_group>rosidl_interface_packages</member_of_group>
  <export><build_type>ament_cmake</build_type></export>
</package>
"""

CMAKELISTS = """cmake_minimum_required(VERSION 3.16)
project({name})
find_package(ament_cmake REQUIRED)
find_package(rosidl_default_generators REQUIRED)
{find_deps}
set(CMAKE_INSTALL_RPATH_USE_LINK_PATH TRUE)
list(APPEND CMAKE_INSTALL_RPATH "${{CMAKE_INSTALL_PREFIX}}/lib")
rosidl_generate_interfaces(${{PROJECT_NAME}} {files} {dep_clause})
ament_package()
"""

STD_PACKAGES = ("std_msgs", "geometry_msgs", "sensor_msgs", "builtin_interfaces", "action_msgs",
                "trajectory_msgs", "std_srvs", "diagnostic_msgs", "unique_identifier_msgs")


class InterfaceBuildError(RuntimeError):
    pass


def _dependencies(src: Path) -> list[str]:
    text = "\n".join(p.read_text() for p in sorted(src.rglob("*")) if p.suffix in (".msg", ".srv", ".action"))
    deps = sorted({pkg for pkg in STD_PACKAGES if f"{pkg}/" in text})
    if any(src.glob("action/*.action")):
        deps = sorted(set(deps) | {"action_msgs"})
    return deps


def _digest(packages: dict[str, Path]) -> str:
    h = hashlib.sha256(sys.version.encode())
    for name in sorted(packages):
        for p in sorted(Path(packages[name]).rglob("*")):
            if p.is_file():
                h.update(f"{name}/{p.relative_to(packages[name])}".encode())
                h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _colcon_env() -> dict[str, str]:
    env = dict(os.environ)
    prefix = sys.prefix
    for var in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH"):
        parts = [p for p in env.get(var, "").split(os.pathsep) if p]
        if prefix not in parts:
            parts.append(prefix)
        env[var] = os.pathsep.join(parts)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def colcon_build(src_dir: Path, base: Path, cmake_args: list[str] | None = None, timeout_s: float = 900) -> Path:
    """Run `colcon build` over `src_dir` with build/install/log under `base`; returns the install space."""
    cmd = [sys.executable, "-m", "colcon", "--log-base", str(base / "log"), "build",
           "--base-paths", str(src_dir), "--build-base", str(base / "build"),
           "--install-base", str(base / "install"), "--event-handlers", "console_cohesion-",
           "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF", *(cmake_args or [])]
    proc = subprocess.run(cmd, env=_colcon_env(), capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise InterfaceBuildError(f"colcon build in {src_dir} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return base / "install"


def build_interfaces(packages: dict[str, Path], cache_dir: Path) -> Path:
    """Build each package `name -> folder with msg/ srv/ action/`; returns the install space (cached)."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    base = cache_dir / _digest(packages)
    with open(cache_dir / ".lock", "w") as lock:  # parallel test processes build once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (base / "BUILT").exists():
            return base / "install"
        return _build(packages, base)


def _build(packages: dict[str, Path], base: Path) -> Path:
    stamp = base / "BUILT"
    if base.exists():
        shutil.rmtree(base)
    src = base / "src"
    for name, folder in packages.items():
        folder = Path(folder)
        pkg = src / name
        files = []
        for kind in ("msg", "srv", "action"):
            for f in sorted(folder.glob(f"{kind}/*.{kind}")):
                (pkg / kind).mkdir(parents=True, exist_ok=True)
                shutil.copy(f, pkg / kind / f.name)
                files.append(f'"{kind}/{f.name}"')
        if not files:
            raise InterfaceBuildError(f"{folder}: no msg/, srv/ or action/ definitions for package {name}")
        deps = [d for d in _dependencies(pkg) if d != name]
        deps += [other for other in packages if other != name and f"{other}/" in
                 "\n".join(p.read_text() for p in pkg.rglob("*.*"))]
        (pkg / "package.xml").write_text(PACKAGE_XML.format(
            name=name, depends="\n".join(f"  <depend>{d}</depend>" for d in deps)))
        (pkg / "CMakeLists.txt").write_text(CMAKELISTS.format(
            name=name, files=" ".join(files),
            find_deps="\n".join(f"find_package({d} REQUIRED)" for d in deps),
            dep_clause=f"DEPENDENCIES {' '.join(deps)}" if deps else ""))
    install = colcon_build(src, base)
    stamp.write_text("ok\n")
    return install


def activate(install: Path) -> None:
    """Make every package of a colcon install space importable in this process.

    rosidl finds typesupport libraries by searching LD_LIBRARY_PATH at load time (rcpputils reads the
    variable when called), so extending it here works for this process and its children.
    """
    install = Path(install)
    libs, sites = [], []
    for pkg in sorted(p for p in install.iterdir() if p.is_dir()):
        if (pkg / "lib").is_dir():
            libs.append(str(pkg / "lib"))
        sites += [str(s) for s in (pkg / "lib").glob("python3*/site-packages")]
    current = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(libs + [p for p in current if p not in libs])
    ament = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join(
        [str(install / p.name) for p in install.iterdir() if p.is_dir()] + ament)
    for site in sites:
        if site not in sys.path:
            sys.path.append(site)
    py = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(py + [s for s in sites if s not in py])
