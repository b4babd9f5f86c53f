"""The engine: HDF5 row and metadata I/O, the /.h5vc format, preserved objects and restore,
the scan of a live store against a state, hashing, the seal and the writer lock.

Nothing here knows the repository, git, importers or the command line.
"""
