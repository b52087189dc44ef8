"""reuse_freed_memory: large tensors freed and reallocated fault no new pages once it is on."""
import os
import platform
import subprocess
import sys
import textwrap

import pytest

glibc_linux = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                 reason="glibc malloc only")

# 10 cycles of allocating, touching and freeing 64 MiB: 10 x 16384 fresh 4 KiB pages through mmap.
CHILD = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from sigplex.core.runtime import reuse_freed_memory, reusing_freed_memory
    applied = reuse_freed_memory()
    assert reusing_freed_memory() is applied
    assert reuse_freed_memory() is applied  # a second call changes nothing
    def cycle():
        a = np.empty(16 * 2**20, dtype=np.float32)
        a.fill(1.0)
        del a
    cycle()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        cycle()
    print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _child(env_value: str | None) -> tuple[bool, int]:
    env = dict(os.environ)
    env.pop("SIGPLEX_REUSE_FREED_MEMORY", None)
    if env_value is not None:
        env["SIGPLEX_REUSE_FREED_MEMORY"] = env_value
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied == "True", int(faults)


@glibc_linux
def test_freed_memory_is_reused_without_page_faults():
    applied, faults = _child(None)
    assert applied
    assert faults < 500  # without it: one fault per 4 KiB page (or per 2 MiB huge page), 10 x 64 MiB


@glibc_linux
def test_environment_turns_it_off_and_large_blocks_fault_again():
    applied, faults = _child("0")
    assert not applied
    assert faults >= 10 * 32  # each 64 MiB block comes back fresh: at least one fault per 2 MiB page

