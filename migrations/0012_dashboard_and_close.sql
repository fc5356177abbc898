-- The dashboard counts messages per day.
CREATE INDEX messages_created ON messages(created_at);

-- A conversation an agent closed (done); the customer's next message reopens it.
ALTER TABLE conversations ADD COLUMN closed_at INTEGER;
