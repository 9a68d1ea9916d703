"""vecdex.contrib: pure-Python helpers mirroring faiss.contrib.

- ``datasets``: SyntheticDataset (the same vectors as faiss's for a seed) and
  the TEXMEX .fvecs/.ivecs/.bvecs readers and writers;
- ``vecs_io``: those readers and writers (faiss.contrib.vecs_io's names);
- ``evaluation``: recall, intersection, MAP and range-search precision/recall.
"""
