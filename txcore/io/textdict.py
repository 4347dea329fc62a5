"""Low-cardinality text columns of a Parquet input: read as Arrow dictionaries, written
back as the text they are.

A column such as ``kind`` or ``city`` holds a handful of distinct values, and its
Parquet file already stores it as a dictionary page plus small integer indices.
Reading it as plain ``string`` makes Arrow copy every value's bytes into a new array;
writing it back makes the Parquet writer hash every value again to rebuild the
dictionary.  Read as ``dictionary<int32, string>`` instead, the reader keeps the
indices, the encoder looks each row's value up in the dictionary, the priced rows are
kept by filtering the indices, and the writer writes the dictionary page from the
dictionary it is given.

To the user nothing changes: such a column is *marked* (field metadata :data:`MARK`),
and every writer writes a marked column as the text it was read as: Parquet stores
the same ``string`` column (its Arrow schema in the footer says ``string``, so every
reader reads text), CSV, Avro and Arrow outputs get the values cast back to text.
:func:`contract` is the schema a marked schema stands for.
"""
from __future__ import annotations

import pyarrow as pa

#: Input columns read as dictionaries when their Parquet column is text: each holds a
#: small vocabulary (docs/input.md), so its values repeat.
COLUMNS = ("kind", "channel", "currency", "acq_bank", "city", "mcc", "fee_item", "benefit")

#: Field metadata of a column read as a dictionary that is text to the user.
MARK = {b"txcore.read_as": b"dictionary"}
DICTIONARY_TYPE = pa.dictionary(pa.int32(), pa.string())


def read_as_dictionary(schema: pa.Schema) -> list[str]:
    """The columns of :data:`COLUMNS` that a Parquet file of (Arrow) ``schema`` holds as
    plain ``string``: the ones to read as dictionaries."""
    return [f.name for f in schema if f.name in COLUMNS and f.type == pa.string()]


def is_marked(field: pa.Field) -> bool:
    return field.metadata is not None and all(field.metadata.get(k) == v
                                              for k, v in MARK.items())


def marked(schema: pa.Schema, names) -> pa.Schema:
    """``schema`` with the dictionary columns ``names`` marked."""
    return pa.schema([f.with_metadata({**(f.metadata or {}), **MARK})
                      if f.name in names and f.type == DICTIONARY_TYPE else f
                      for f in schema], metadata=schema.metadata)


def contract(schema: pa.Schema) -> pa.Schema:
    """The schema the user sees: every marked column as ``string``, unmarked."""
    if not any(is_marked(f) for f in schema):
        return schema
    fields = []
    for f in schema:
        if is_marked(f):
            rest = {k: v for k, v in f.metadata.items() if k not in MARK}
            f = pa.field(f.name, pa.string(), f.nullable, rest or None)
        fields.append(f)
    return pa.schema(fields, metadata=schema.metadata)


def as_text(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with its marked columns decoded to text (``schema``: its contract)."""
    if batch.schema.equals(schema, check_metadata=True):
        return batch
    return pa.RecordBatch.from_arrays(
        [col.dictionary_decode() if is_marked(f) else col
         for f, col in zip(batch.schema, batch.columns)], schema=schema)
