-- 0005: a plain copy of every chunk vector, keyed by chunk id. The vec0 table answers
-- exact KNN; this table answers "the vector of chunk N" in microseconds, which the
-- quantized first pass (rescoring), MMR and confidence scores need. Filled from kb_vec
-- on the first start after upgrading.
CREATE TABLE kb_vectors (
    chunk_id   INTEGER PRIMARY KEY,
    embedding  BLOB NOT NULL          -- little-endian float32, unit length
);
