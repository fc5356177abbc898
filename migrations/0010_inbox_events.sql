-- The inbox's live updates look for ledger rows changed since a moment.
CREATE INDEX outbound_updated ON outbound(updated_at);
