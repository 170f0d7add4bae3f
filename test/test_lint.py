"""Lint as the ament linters would: ruff (flake8 + pep257 subset + import order) and package.xml checks."""
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff not installed")
    proc = subprocess.run([ruff, "check", "--no-cache", "--output-format", "concise", str(REPO)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_package_xml_is_valid_format3():
    ET.parse(REPO / "package.xml")  # well-formed
    from catkin_pkg.package import parse_package

    pkg = parse_package(str(REPO / "package.xml"))  # validates the REP 149 (format 3) rules
    assert pkg.package_format == 3
    assert pkg.name == "vla_ros"
    assert pkg.get_build_type() == "ament_cmake"
    assert "rosidl_interface_packages" in [g.name for g in pkg.member_of_groups]


def test_package_xml_xmllint():
    xmllint = shutil.which("xmllint")
    if xmllint is None:
        pytest.skip("xmllint not installed (catkin_pkg validation above still runs)")
    proc = subprocess.run([xmllint, "--noout", str(REPO / "package.xml")], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr


def test_setup_cfg_and_package_xml_versions_agree():
    from catkin_pkg.package import parse_package

    import vla_ros

    assert parse_package(str(REPO / "package.xml")).version == vla_ros.__version__
