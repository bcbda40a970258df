-- v2 -> v3: Let the prune find rows that hold only a sender timestamp by index
-- Without it, finding the rows with no token and an expired sender
-- timestamp scans every row of the account, which at a million rows holds
-- SQLite's write lock long enough to stall sends. Only such rows are
-- indexed, so it costs nothing for the rows that hold a token.
CREATE INDEX tctoken_tokens_sender_only_idx ON tctoken_tokens (our_jid, sender_ts) WHERE token IS NULL;
