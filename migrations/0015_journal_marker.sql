-- That this data dir has a queue journal (queue.redb), and since when: once recorded, a
-- missing journal is refused at start instead of being re-created empty.
CREATE TABLE journal_marker (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    created_at  INTEGER NOT NULL   -- Unix ms; 0 = before this was recorded
);

-- A database that already holds messages, sends or raw deliveries got them through a
-- journal.
INSERT INTO journal_marker (id, created_at)
SELECT 1, 0
WHERE EXISTS (SELECT 1 FROM messages) OR EXISTS (SELECT 1 FROM outbound) OR EXISTS (SELECT 1 FROM raw_events);
