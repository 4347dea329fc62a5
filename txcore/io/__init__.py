"""Input and output: every input format as a stream of Arrow record batches
(``reader``; ISO 8583 switch logs in ``iso8583``; a Parquet input's vocabulary
columns read as dictionaries that every writer writes as text, ``textdict``), the priced and reject batches assembled from per-row outcomes
(``assemble``), the output files written to temporary names (``writer``), or written
in parts by parallel workers and joined into one Parquet file (``stitch``, its footer
read and written by ``thrift_compact``), and the
digest of the priced columns (``digest``)."""
