-- The contact panel and the inbox's unread counts per tab.
-- A contact's conversations (the panel lists them; merge and erase look them up).
CREATE INDEX conversations_contact ON conversations(contact_id);
-- The newest customer message of each conversation, kept by triggers: a conversation is
-- unread for a user while this is past their `conversation_reads.last_read_id`.
ALTER TABLE conversations ADD COLUMN last_inbound_id INTEGER NOT NULL DEFAULT 0;
UPDATE conversations SET last_inbound_id = COALESCE(
    (SELECT MAX(m.id) FROM messages m WHERE m.conversation_id = conversations.id AND m.direction = 'in'), 0);
CREATE TRIGGER conversations_last_inbound_insert AFTER INSERT ON messages WHEN new.direction = 'in' BEGIN
    UPDATE conversations SET last_inbound_id = new.id WHERE id = new.conversation_id AND last_inbound_id < new.id;
END;
-- A merge moves messages to another conversation.
CREATE TRIGGER conversations_last_inbound_move AFTER UPDATE OF conversation_id ON messages WHEN new.direction = 'in' BEGIN
    UPDATE conversations SET last_inbound_id = new.id WHERE id = new.conversation_id AND last_inbound_id < new.id;
END;
-- The tab counts read only this (conversations with a customer message, the columns the
-- tabs filter on), never the table or the messages.
CREATE INDEX conversations_unread ON conversations(last_inbound_id, owner, assigned_to, closed_at) WHERE last_inbound_id > 0;
