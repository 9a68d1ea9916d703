"""FAISS's SIMD-level API (SIMDConfig, SIMDLevel_*, get_compile_options)
over vecdex's own kernel levels.

FAISS's levels map onto vecdex's: NONE -> the scalar reference kernels,
AVX2 -> the AVX2 + FMA kernels, AVX512 -> the AVX-512 (F, BW, VL, DQ)
kernels.  The other levels FAISS names (AVX512_SPR, ARM_NEON, ARM_SVE,
RISCV_RVV, AVX512_VPOPCNT) have no kernels of their own in vecdex and are
reported as unavailable, so FAISS's level-parameterised tests run once per
vecdex kernel set.
"""
from . import _vecdex

SIMDLevel_NONE = 0
SIMDLevel_AVX2 = 1
SIMDLevel_AVX512 = 2
SIMDLevel_AVX512_SPR = 3
SIMDLevel_ARM_NEON = 4
SIMDLevel_ARM_SVE = 5
SIMDLevel_RISCV_RVV = 6
SIMDLevel_AVX512_VPOPCNT = 7
SIMDLevel_COUNT = 8

_TO_VDX = {SIMDLevel_NONE: "scalar", SIMDLevel_AVX2: "avx2",
           SIMDLevel_AVX512: "avx512"}
_FROM_VDX = {v: k for k, v in _TO_VDX.items()}
_NAMES = {SIMDLevel_NONE: "NONE", SIMDLevel_AVX2: "AVX2",
          SIMDLevel_AVX512: "AVX512", SIMDLevel_AVX512_SPR: "AVX512_SPR",
          SIMDLevel_ARM_NEON: "ARM_NEON", SIMDLevel_ARM_SVE: "ARM_SVE",
          SIMDLevel_RISCV_RVV: "RISCV_RVV",
          SIMDLevel_AVX512_VPOPCNT: "AVX512_VPOPCNT"}


def _level(level):
    try:
        level = int(level)
    except (TypeError, ValueError):
        raise TypeError(f"SIMD level must be an int, got {level!r}")
    if level not in _NAMES:
        raise ValueError(f"unknown SIMD level {level} (expected 0.."
                         f"{SIMDLevel_COUNT - 1})")
    return level


class SIMDConfig:
    """The SIMD level of vecdex's kernels, settable at run time (for tests
    and comparisons).  All methods are static, as in FAISS."""

    @staticmethod
    def get_level():
        """The level in use (a SIMDLevel_* value)."""
        return _FROM_VDX[_vecdex.simd_level()]

    @staticmethod
    def get_dispatched_level():
        """The level chosen at start: the machine's, lowered by
        VECDEX_SIMD."""
        return _FROM_VDX[_vecdex.simd_level_default()]

    @staticmethod
    def auto_detect_simd_level():
        return SIMDConfig.get_dispatched_level()

    @staticmethod
    def set_level(level):
        """Uses the kernels of `level` from now on; RuntimeError for a level
        this machine (or vecdex) does not have."""
        level = _level(level)
        if level not in _TO_VDX:
            raise RuntimeError(f"SIMD level {_NAMES[level]} is not available "
                               f"in vecdex (it has NONE, AVX2, AVX512)")
        _vecdex.set_simd_level(_TO_VDX[level])

    @staticmethod
    def is_simd_level_available(level):
        level = _level(level)
        return level in _TO_VDX and _vecdex.simd_level_available(
            _TO_VDX[level])

    @staticmethod
    def get_level_name():
        return _NAMES[SIMDConfig.get_level()]

    @staticmethod
    def supported_simd_levels():
        """The available levels, as a sorted list."""
        return [lv for lv in sorted(_TO_VDX)
                if _vecdex.simd_level_available(_TO_VDX[lv])]

    @staticmethod
    def has_dynamic_dispatch():
        """vecdex always picks its kernels at run time."""
        return True


def get_compile_options():
    """FAISS's build-option string: OPTIMIZE (a release build), DD (kernels
    dispatched at run time), then the levels this machine can run."""
    opts = ["OPTIMIZE", "DD"]
    for lv in (SIMDLevel_AVX2, SIMDLevel_AVX512):
        if SIMDConfig.is_simd_level_available(lv):
            opts.append(_NAMES[lv])
    return " ".join(opts) + " "


__all__ = [n for n in dir() if n.startswith("SIMDLevel_")] + [
    "SIMDConfig", "get_compile_options"]
