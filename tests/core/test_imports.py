"""Dependency rules: the core imports no domain library; the wheel installs only `sigplex`."""
import subprocess
import sys
import textwrap

import pytest

DOMAIN = ("monai", "mne", "torchaudio", "nibabel", "sionna", "pandas", "soundfile", "scipy", "braindecode",
          "neuralforecast")


def modules_after(code: str) -> set[str]:
    script = code + "\nimport sys\nprint('|'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.strip().splitlines()[-1].split("|"))


def test_import_core_loads_no_torch_and_no_domain_library():
    loaded = modules_after("import sigplex.core")
    assert "torch" not in loaded
    assert not [m for m in DOMAIN if m in loaded]


def test_core_subpackages_load_no_domain_library():
    loaded = modules_after(textwrap.dedent("""
        import sigplex.core.ops, sigplex.core.backbones, sigplex.core.adapters, sigplex.core.train
        import sigplex.core.api, sigplex.core.cli, sigplex.core.models
    """))
    assert not [m for m in DOMAIN if m in loaded]


def test_plugin_registration_imports_nothing_heavy():
    loaded = modules_after("from sigplex.core.plugins import get_plugin_manager; get_plugin_manager()")
    assert "torch" not in loaded
    assert not [m for m in DOMAIN if m in loaded]


@pytest.mark.slow
def test_wheel_installs_only_the_sigplex_namespace(tmp_path):
    import zipfile

    from helpers import ROOT

    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    wheel = next(tmp_path.glob("sigplex-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"sigplex", wheel.name.split("-py")[0].replace("sigplex-", "sigplex-") + ".dist-info"} or \
        tops - {t for t in tops if t.endswith(".dist-info")} == {"sigplex"}, tops
    # every source package is in the wheel, under the namespace
    for folder, package in (("core", "sigplex/core"), ("plugins", "sigplex/plugins"), ("datasets", "sigplex/datasets")):
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.relative_to(ROOT / folder).as_posix()
            assert f"{package}/{rel}" in names, f"{package}/{rel} missing from the wheel"
    assert "sigplex/__init__.py" not in names  # sigplex is a namespace package
    # data shipped inside packages: the speech corpus and the trained OFDM weights
    assert "sigplex/plugins/ofdm_chest/weights/adafortitran.safetensors" in names
    assert "sigplex/plugins/speech_sep/weights/mossformer2_default.safetensors" in names
    assert "sigplex/plugins/speech_sep/weights/prepared.json" in names
    assert any(n.startswith("sigplex/plugins/speech_sep/data/") and n.endswith(".flac") for n in names)
