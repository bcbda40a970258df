-- v0 -> v1: Create tctoken tables
-- bytea is the PostgreSQL name for a byte string. SQLite accepts any type name
-- and keeps []byte values as BLOBs whatever the column's affinity, so one
-- spelling serves both dialects, as in whatsmeow's own schema.

-- Trust tokens that contacts issued to us (token, token_ts) and the time we
-- last issued ours to them (sender_ts). A row may hold only a sender
-- timestamp: we issued to a contact who never sent us a token.
CREATE TABLE tctoken_tokens (
	-- Our device JID (with device part): the account that owns the row.
	our_jid    TEXT   NOT NULL,
	-- The contact without device part: their LID when known, else their PN.
	their_jid  TEXT   NOT NULL,
	token      bytea,
	token_ts   BIGINT,
	sender_ts  BIGINT,
	updated_at BIGINT NOT NULL,

	PRIMARY KEY (our_jid, their_jid),
	-- An empty token is no token; refuse to store one.
	CHECK ( token IS NULL OR length(token) > 0 ),
	-- A token without its timestamp could never expire or be compared.
	CHECK ( (token IS NULL) = (token_ts IS NULL) )
);

-- Pruning scans one account's tokens by age.
CREATE INDEX tctoken_tokens_expiry_idx ON tctoken_tokens (our_jid, token_ts);

-- The NCT salt (key of the cstoken HMAC). A row with a NULL salt is a
-- tombstone left by an app-state REMOVE, so that a later history sync cannot
-- bring back a salt the account deleted.
CREATE TABLE tctoken_nct_salt (
	our_jid    TEXT   PRIMARY KEY,
	salt       bytea,
	source     TEXT   NOT NULL,
	updated_at BIGINT NOT NULL,

	CHECK ( source IN ('app_state', 'history_sync') ),
	CHECK ( salt IS NULL OR length(salt) > 0 ),
	-- Only app state is authoritative enough to remove the salt.
	CHECK ( salt IS NOT NULL OR source = 'app_state' )
);

-- Server-side AB props, as config_code -> config_value.
CREATE TABLE tctoken_ab_props (
	our_jid TEXT    NOT NULL,
	code    INTEGER NOT NULL,
	value   TEXT    NOT NULL,

	PRIMARY KEY (our_jid, code)
);

-- One row per account once props have been fetched: the hash to send with the
-- next fetch, and when that fetch is due (fetched_at + refresh, in seconds).
CREATE TABLE tctoken_ab_props_meta (
	our_jid    TEXT   PRIMARY KEY,
	hash       TEXT   NOT NULL,
	refresh    BIGINT NOT NULL,
	fetched_at BIGINT NOT NULL
);
