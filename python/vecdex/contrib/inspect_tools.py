"""faiss.contrib.inspect_tools: look inside indexes and quantizers (the
functions that apply to the vecdex kinds)."""
import numpy as np

from .. import _vecdex as faiss


def get_additive_quantizer_codebooks(aq):
    """The codebooks of an additive quantizer, one (2^nbits, d) array per
    codebook (d / nsplits wide for the product kinds)."""
    co = np.asarray(aq.codebook_offsets).astype(int)
    width = aq.d // getattr(aq, "nsplits", 1) if hasattr(aq, "nsplits") else aq.d
    codebooks = np.array(aq.codebooks, copy=True).reshape(-1, width)
    return [codebooks[co[i]:co[i + 1]] for i in range(aq.M)]


def get_flat_codes(index_flat):
    """The stored codes of a flat-code index as an (ntotal, code_size)
    array."""
    return faiss.vector_to_array(index_flat.codes).reshape(
        index_flat.ntotal, index_flat.code_size)
