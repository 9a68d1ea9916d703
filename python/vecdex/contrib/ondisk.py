"""faiss.contrib.ondisk's name: vecdex stores inverted lists in memory or
in its own mmap'ed files, not in FAISS's OnDiskInvertedLists, so merging
into an on-disk list file is not available."""

__all__ = ["merge_ondisk"]


def merge_ondisk(trained_index, shard_fnames, ivfdata_fname,
                 shift_ids=False):
    """Not available in vecdex: raises NotImplementedError (merge the
    shards with index.merge_from-style adds instead)."""
    raise NotImplementedError(
        "merge_ondisk: vecdex has no OnDiskInvertedLists; read the shards "
        "and add their vectors to one index instead")
