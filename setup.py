"""Build the compiled hot path (``txcore/_fast``) and bundle the default data.

Compiler directives are set here, once, for every Cython module (the
scikit-learn convention).  ``TXCORE_CYTHON_DEBUG=1`` turns bounds checking and
annotation on for a debug build.
"""
import os
import shutil
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent
DEBUG = os.environ.get("TXCORE_CYTHON_DEBUG") == "1"

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": DEBUG,
    "embedsignature": True,
    "cpow": True,
}


class BuildPyWithData(build_py):
    """Copy the top-level ``rules/`` and ``fixtures/`` into the wheel as
    ``txcore/_bundled`` so ``txcore demo`` works from a regular install too
    (an editable install finds them beside the package instead)."""

    def run(self):
        super().run()
        target = Path(self.build_lib) / "txcore" / "_bundled"
        for name in ("rules", "fixtures"):
            src = HERE / name
            if src.is_dir():
                dst = target / name
                if dst.exists():
                    shutil.rmtree(dst)
                shutil.copytree(src, dst)


extensions = [
    Extension("txcore._fast.cardcheck", ["txcore/_fast/cardcheck.pyx"]),
    Extension("txcore._fast.encode", ["txcore/_fast/encode.pyx"]),
    Extension("txcore._fast.kernel", ["txcore/_fast/kernel.pyx"]),
    Extension("txcore._fast.probe", ["txcore/_fast/probe.pyx"]),
    Extension("txcore._fast.iso8583", ["txcore/_fast/iso8583.pyx"]),
    Extension("txcore._fast.idpass", ["txcore/_fast/idpass.pyx"]),
    Extension("txcore._fast.records", ["txcore/_fast/records.pyx"]),
    Extension("txcore._fast.keep", ["txcore/_fast/keep.pyx"]),
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=DIRECTIVES,
        annotate=DEBUG,
    ),
    cmdclass={"build_py": BuildPyWithData},
)
