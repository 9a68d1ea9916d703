"""On-disk inverted lists, as faiss.contrib.ondisk.

``merge_ondisk(trained_index, shard_fnames, ivfdata_fname)`` merges the
inverted lists of IVF indexes stored in ``shard_fnames`` (each built from the
same trained index, with ``add`` of a slice of the data) into one data file
``ivfdata_fname`` in FAISS's OnDiskInvertedLists layout, and makes
``trained_index`` use it.  ``write_index(trained_index, path)`` then writes
an index whose lists stay in the data file ("ilod" record); FAISS reads it,
and so does ``read_index`` (with or without ``IO_FLAG_MMAP``).

Unlike FAISS, the shards are opened one at a time (memory-mapped, twice:
list sizes first, then the data), so the merge needs memory for the list
table only, not for the shards: an index larger than the memory the process
may use can be built shard by shard and merged.
"""
from .. import extract_index_ivf


def merge_ondisk(trained_index, shard_fnames, ivfdata_fname, shift_ids=False):
    """Adds the lists of the shard files to ``trained_index`` (its own lists
    are replaced), stored in ``ivfdata_fname``.  Returns nothing, as FAISS;
    ``trained_index.ntotal`` is the number of entries merged.

    shift_ids: add to each shard's ids the total of the shards before it
    (for shards whose ids all start at 0)."""
    index_ivf = extract_index_ivf(trained_index)
    if index_ivf is not trained_index:
        raise RuntimeError(
            "merge_ondisk: vecdex merges into an IVF index itself, not into "
            "a %s wrapping one" % type(trained_index).__name__)
    index_ivf._merge_ondisk([str(f) for f in shard_fnames],
                            str(ivfdata_fname), bool(shift_ids))
