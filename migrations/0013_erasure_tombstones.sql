-- Contacts erased on request, by a one-way hash of their number only: late delivery
-- statuses for messages sent to them are dropped instead of storing the number again.
-- The tombstone goes when the person writes to us again.
CREATE TABLE erased_contacts (
    subject    TEXT PRIMARY KEY,   -- contacts::subject_hash(wa_id)
    erased_at  INTEGER NOT NULL
);
