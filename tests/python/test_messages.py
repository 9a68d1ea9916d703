"""Error-message format strings of the extension.

The C library's vdx_raise is checked by the compiler (format attribute);
PyErr_Format and PyUnicode_FromFormat are not, and they know fewer
conversions than printf: no %g / %f / %e, so a message once read
"k_factor must be >= 1, got %g".  This test reads the extension's sources
and checks every conversion of every such format string.
"""
import pathlib
import re

import pytest

import vecdex

SRC = pathlib.Path(__file__).resolve().parents[2] / "python"
# what CPython's PyUnicode_FromFormat accepts
ALLOWED = re.compile(r"%(%|[0-9]*(\.[0-9]+)?(c|d|u|i|x|ld|li|lu|lld|lli|llu|zd|zi|zu|s|p|A|U|V|S|R))")
CALL = re.compile(r"\b(PyErr_Format|PyUnicode_FromFormat)\s*\(")


def format_strings(text):
    for m in CALL.finditer(text):
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        args = text[m.end():i - 1]
        # the format: the adjacent string literals after the first argument
        # (PyErr_Format) or at the start (PyUnicode_FromFormat)
        lits = re.findall(r'"((?:[^"\\]|\\.)*)"', args)
        if lits:
            line = text.count("\n", 0, m.start()) + 1
            yield line, "".join(lits)


def sources():
    files = sorted(SRC.glob("*.c"))
    if not files:
        pytest.skip("extension sources not found beside the tests")
    return files


def test_every_python_format_string_is_valid():
    bad = []
    for f in sources():
        for line, fmt in format_strings(f.read_text()):
            for m in re.finditer(r"%", fmt):
                if m.start() > 0 and fmt[m.start() - 1] == "%":
                    continue
                if not ALLOWED.match(fmt, m.start()):
                    bad.append(f"{f.name}:{line}: {fmt!r}")
                    break
    assert not bad, "unsupported conversions:\n" + "\n".join(bad)


def test_k_factor_message_names_the_value():
    p = vecdex.IndexRefineSearchParameters()
    with pytest.raises(ValueError, match=r"got 0\.5"):
        p.k_factor = 0.5
