"""The partitioned run: the same pricing over many worker processes or a Dask cluster.

``partitioned`` is the client's side (chunks, the id pass, the outputs, the new
state); ``tasks`` what workers run; ``idpass`` the one sequential step over every
card's rows; ``executors`` where the tasks run.  User guide: docs/parallel.md.
"""
