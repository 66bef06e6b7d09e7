"""Build hook for the one C extension; everything else is in pyproject.toml.

vitcod.host._quantize_pack is optional: without a C compiler the install still succeeds and the
host uses its numpy path (same words, slower). See host/native/quantize_pack.c.
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension(
        "vitcod.host._quantize_pack",
        sources=["host/native/quantize_pack.c"],
        extra_compile_args=["-O3", "-std=c99", "-fno-math-errno", "-Wall"],
        optional=True,
    ),
])
