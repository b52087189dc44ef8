"""Package list for the `sigplex` namespace, found from the three source folders.

pyproject.toml maps ``sigplex.core`` -> ``core/`` and so on; this file lists every
sub-package under those names so that editable and wheel installs hold the same modules.
"""
from setuptools import find_packages, setup

ROOTS = {"sigplex.core": "core", "sigplex.plugins": "plugins", "sigplex.datasets": "datasets"}

packages = []
for name, folder in ROOTS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages)
