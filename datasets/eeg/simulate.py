"""Simulated EEG written as FIF files with annotations: the embedded default data of eeg_conformer.

Sources are dipoles in a 3-shell sphere head model (``mne.make_sphere_model``) projected to a
standard 10-20/10-05 montage with an MNE forward solution (a discrete source space):

* motor imagery (:func:`simulate_motor_imagery`): mu (9-12 Hz) and beta (18-24 Hz) rhythms at
  dipoles under C3 and C4; imagining the left (right) hand desynchronises the contralateral, i.e.
  right (left), motor source; plus pink-noise background dipoles, occipital alpha, sensor noise
  and 50 Hz line noise. Subjects differ in source positions, orientations, rhythm frequencies,
  ERD depth and gain.
* seizures (:func:`simulate_seizures`): background as above plus rhythmic 3-7 Hz spike-wave
  discharges from a subject-specific focus, annotated ``seizure``.

Each dataset folder is built in a temporary sibling and renamed into place (atomic); a finished
folder is reused. Generation takes seconds.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from sigplex.core.cache import cache_root

MI_CHANNELS = ["Fz", "FC3", "FC1", "FCz", "FC2", "FC4", "C5", "C3", "C1", "Cz", "C2", "C4", "C6",
               "CP3", "CP1", "CPz", "CP2", "CP4", "P1", "Pz", "P2", "POz"]
SZ_CHANNELS = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7", "P3", "Pz",
               "P4", "P8", "O1", "O2"]
MI_CLASSES = ["left_hand", "right_hand"]
VERSION = 1


def standard_montage():
    """MNE's 10-05 template montage (``colin27_1005`` where available, else ``standard_1005``)."""
    import mne

    for name in ("colin27_1005", "standard_1005"):
        if name in mne.channels.get_builtin_montages():
            return mne.channels.make_standard_montage(name)
    raise RuntimeError("no 10-05 template montage in this MNE")  # pragma: no cover


def _info(channels, sfreq):
    import mne

    info = mne.create_info(list(channels), float(sfreq), "eeg")
    info.set_montage(standard_montage(), on_missing="ignore")
    return info


def _gain(info, rr, nn):
    """Fixed-orientation gain matrix ``[n_channels, n_sources]`` for dipoles at ``rr`` (head coords, m)."""
    import mne

    sphere = mne.make_sphere_model("auto", "auto", info, verbose="error")
    src = mne.setup_volume_source_space(pos=dict(rr=rr, nn=nn), verbose="error")
    fwd = mne.make_forward_solution(info, trans=None, src=src, bem=sphere, meg=False, eeg=True, verbose="error")
    g = fwd["sol"]["data"].reshape(len(info.ch_names), len(rr), 3)
    return np.einsum("csk,sk->cs", g, nn)


def _sphere_center(info):
    import mne

    sphere = mne.make_sphere_model("auto", "auto", info, verbose="error")
    return np.asarray(sphere["r0"]), float(sphere.radius)


def _electrode(info, name):
    return np.asarray(info["chs"][info.ch_names.index(name)]["loc"][:3])


def _narrowband(rng, n, sfreq, freq, width):
    """Unit-variance Gaussian noise band-limited around ``freq`` (Hz), by spectral shaping."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / sfreq)
    spec *= np.exp(-0.5 * ((f - freq) / width) ** 2)
    x = np.fft.irfft(spec, n)
    return x / x.std()


def _pink(rng, shape, sfreq):
    """Unit-variance 1/f noise along the last axis."""
    n = shape[-1]
    spec = np.fft.rfft(rng.standard_normal(shape), axis=-1)
    f = np.fft.rfftfreq(n, 1 / sfreq)
    spec *= 1.0 / np.sqrt(np.maximum(f, 1.0))
    x = np.fft.irfft(spec, n, axis=-1)
    return x / x.std(axis=-1, keepdims=True)


def _envelope(n, sfreq, intervals, depth, ramp=0.4):
    """1 everywhere, ``1 - depth`` inside each (start, stop) interval (s), with cosine ramps."""
    env = np.ones(n)
    t = np.arange(n) / sfreq
    for start, stop in intervals:
        rise = np.clip((t - start) / ramp, 0, 1)
        fall = np.clip((stop - t) / ramp, 0, 1)
        shape = 0.5 - 0.5 * np.cos(np.pi * np.minimum(rise, fall))
        env -= depth * shape
    return env


def _background(rng, info, r0, radius, n, sfreq, n_sources=24):
    """Pink-noise dipoles spread in the head, occipital alpha, plus white sensor noise (arbitrary units)."""
    d = rng.standard_normal((n_sources, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    rr = r0 + d * radius * rng.uniform(0.3, 0.7, (n_sources, 1))
    nn = rng.standard_normal((n_sources, 3))
    nn /= np.linalg.norm(nn, axis=1, keepdims=True)
    g = _gain(info, rr, nn)
    g /= np.abs(g).max()
    sensors = g @ _pink(rng, (n_sources, n), sfreq)
    return sensors


def _finish(sensors, rng, sfreq, line_noise=True):
    """Scale to ~20 µV (volts), add sensor and line noise."""
    n = sensors.shape[1]
    sensors = sensors / sensors.std() * 20e-6
    sensors += rng.standard_normal(sensors.shape) * 2e-6
    if line_noise:
        t = np.arange(n) / sfreq
        sensors += 3e-6 * np.sin(2 * np.pi * 50 * t + rng.uniform(0, 2 * np.pi, (sensors.shape[0], 1)))
    return sensors


def _write(folder: Path, name: str, data, info, annotations) -> Path:
    import mne

    raw = mne.io.RawArray(data, info, verbose="error")
    raw.set_annotations(annotations)
    path = folder / f"{name}_raw.fif"
    raw.save(path, fmt="single", verbose="error")
    return path


def _build_atomically(target: Path, build) -> Path:
    """Run ``build(tmp_folder)`` then rename the folder to ``target`` (reuse a finished one)."""
    marker = target / "dataset.json"
    if marker.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        meta = build(tmp)
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=1))
        if target.exists() and not marker.is_file():
            shutil.rmtree(target, ignore_errors=True)  # a leftover without its marker is incomplete
        try:
            os.rename(tmp, target)
        except OSError:
            if not marker.is_file():  # pragma: no cover - lost a race and the winner is incomplete
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def simulate_motor_imagery(root: str | Path | None = None, *, n_subjects: int = 8, n_trials: int = 60,
                           sfreq: float = 250.0, seed: int = 0) -> Path:
    """Write (or reuse) ``n_subjects`` FIF recordings of 2-class motor imagery; returns their folder.

    Each trial is annotated ``left_hand`` or ``right_hand`` (duration 4 s) every ~6 s.
    """
    root = Path(root) if root is not None else cache_root() / "eeg_conformer"
    target = root / f"mi_sim_v{VERSION}_s{n_subjects}_t{n_trials}_f{int(sfreq)}_seed{seed}"

    def build(folder: Path):
        import mne

        info = _info(MI_CHANNELS, sfreq)
        r0, radius = _sphere_center(info)
        for s in range(n_subjects):
            rng = np.random.default_rng([seed, s])
            labels = rng.permutation(np.arange(n_trials) % 2)
            onsets = 2.0 + np.arange(n_trials) * 6.0 + rng.uniform(-0.4, 0.4, n_trials)
            duration = onsets[-1] + 6.0
            n = int(duration * sfreq)
            # motor sources under C3 (left) and C4 (right): index 0 left hemisphere, 1 right
            rr, nn = [], []
            for ch in ("C3", "C4"):
                e = _electrode(info, ch)
                pos = r0 + (e - r0) * rng.uniform(0.68, 0.78) + rng.normal(0, 0.005, 3)
                radial = (pos - r0) / np.linalg.norm(pos - r0)
                ori = radial + rng.normal(0, 0.3, 3)
                rr.append(pos)
                nn.append(ori / np.linalg.norm(ori))
            occ = r0 + (_electrode(info, "POz") - r0) * 0.6
            rr.append(occ)
            nn.append((occ - r0) / np.linalg.norm(occ - r0))
            g = _gain(info, np.array(rr), np.array(nn))
            g /= np.abs(g).max()
            mu_f, beta_f = rng.uniform(9, 12.5), rng.uniform(18, 24)
            depth = rng.uniform(0.55, 0.8)
            sources = np.zeros((3, n))
            for hemi in (0, 1):
                # left-hand imagery (label 0) desynchronises the right hemisphere (1), and vice versa
                trials = [(o + 0.3, o + 4.0) for o, lab in zip(onsets, labels) if lab == 1 - hemi]
                env = _envelope(n, sfreq, trials, depth)
                mu = _narrowband(rng, n, sfreq, mu_f + rng.normal(0, 0.3), 1.0)
                beta = _narrowband(rng, n, sfreq, beta_f, 2.0)
                sources[hemi] = env * (mu + 0.5 * beta)
            sources[2] = 0.7 * _narrowband(rng, n, sfreq, rng.uniform(9, 11), 1.0)
            motor = g @ sources
            background = _background(rng, info, r0, radius, n, sfreq)
            snr = rng.uniform(0.7, 1.2)
            sensors = snr * motor / motor.std() + background / background.std()
            sensors *= rng.uniform(0.8, 1.25, (len(MI_CHANNELS), 1))  # electrode impedance differences
            data = _finish(sensors, rng, sfreq) * rng.uniform(0.6, 1.6)
            ann = mne.Annotations(onsets, 4.0, [MI_CLASSES[k] for k in labels])
            _write(folder, f"sub-{s + 1:02d}_task-mi", data, info, ann)
        return {"kind": "motor_imagery", "subjects": n_subjects, "trials": n_trials, "sfreq": sfreq,
                "classes": MI_CLASSES, "channels": MI_CHANNELS, "seed": seed, "version": VERSION}

    return _build_atomically(target, build)


def simulate_seizures(root: str | Path | None = None, *, n_subjects: int = 6, minutes: float = 10.0,
                      n_seizures: int = 3, sfreq: float = 128.0, seed: int = 0) -> Path:
    """Write (or reuse) ``n_subjects`` FIF recordings with annotated ``seizure`` events; returns their folder."""
    root = Path(root) if root is not None else cache_root() / "eeg_conformer"
    target = root / f"sz_sim_v{VERSION}_s{n_subjects}_m{int(minutes)}_n{n_seizures}_f{int(sfreq)}_seed{seed}"

    def build(folder: Path):
        import mne

        info = _info(SZ_CHANNELS, sfreq)
        r0, radius = _sphere_center(info)
        for s in range(n_subjects):
            rng = np.random.default_rng([seed, 1000 + s])
            n = int(minutes * 60 * sfreq)
            duration = n / sfreq
            slot = (duration - 20) / n_seizures  # one seizure per slot, never overlapping
            lengths = np.minimum(rng.uniform(20, 40, n_seizures), 0.5 * slot)
            starts = 10 + np.arange(n_seizures) * slot + rng.uniform(0, 1, n_seizures) * (slot - lengths - 5)
            focus_ch = SZ_CHANNELS[rng.integers(len(SZ_CHANNELS))]
            focus = r0 + (_electrode(info, focus_ch) - r0) * 0.65
            ori = (focus - r0) / np.linalg.norm(focus - r0)
            g = _gain(info, focus[None], ori[None])[:, 0]
            g /= np.abs(g).max()
            t = np.arange(n) / sfreq
            discharge = np.zeros(n)
            for start, length in zip(starts, lengths):
                inside = (t >= start) & (t < start + length)
                tt = t[inside] - start
                f = rng.uniform(5, 7) - 2.5 * tt / length  # frequency slows down during the seizure
                phase = 2 * np.pi * np.cumsum(f) / sfreq
                spikes = np.sign(np.sin(phase)) * np.abs(np.sin(phase)) ** 8 + 0.6 * np.sin(phase - 1.0)
                ramp = np.minimum(1, np.minimum(tt, length - tt) / 3.0)
                discharge[inside] = spikes * ramp * rng.uniform(2.5, 4.0)
            background = _background(rng, info, r0, radius, n, sfreq)
            sensors = background / background.std() + np.outer(g, discharge)
            data = _finish(sensors, rng, sfreq) * rng.uniform(0.6, 1.6)
            ann = mne.Annotations(starts, lengths, ["seizure"] * n_seizures)
            _write(folder, f"sub-{s + 1:02d}_task-sz", data, info, ann)
        return {"kind": "seizure", "subjects": n_subjects, "minutes": minutes, "sfreq": sfreq,
                "channels": SZ_CHANNELS, "seed": seed, "version": VERSION}

    return _build_atomically(target, build)


__all__ = ["MI_CHANNELS", "MI_CLASSES", "SZ_CHANNELS", "cache_root", "simulate_motor_imagery", "simulate_seizures",
           "standard_montage"]
