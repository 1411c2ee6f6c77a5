"""Package discovery: the rooms are top-level folders (graph/, nodes/, tools/, ...) that install as
`spiral.graph`, `spiral.nodes`, ...; every folder with an __init__.py is found, none is listed by hand.
Everything else about the build is in pyproject.toml."""

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOMS = find_packages(where=".", exclude=["tests", "tests.*", "docs", "docs.*", "build", "build.*"])


class BuildPy(build_py):
    """The repository root is the `spiral` package; this file is not one of its modules."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if not (package == "spiral" and m[1] == "setup")]


setup(packages=["spiral", *(f"spiral.{name}" for name in ROOMS)], package_dir={"spiral": "."},
      cmdclass={"build_py": BuildPy})
