-- v4 -> v5: Remember the account's new-chat cap
-- The new-chat cap ("message capping") is the server's limit on how many
-- new one-on-one chats the account may start in a cycle. It outlives a
-- restart so that a bridge knows it before the first fetch after connect,
-- and so that the fetch TTL holds across reconnects and restarts.
CREATE TABLE tctoken_new_chat_cap (
	our_jid      TEXT    PRIMARY KEY,
	-- The server's capping_status as sent: NONE, FIRST_WARNING,
	-- SECOND_WARNING, CAPPED, or a value added since.
	status       TEXT    NOT NULL,
	-- total_quota and used_quota; the *_known columns say whether the
	-- server sent them at all.
	total_quota  BIGINT  NOT NULL,
	total_known  BOOLEAN NOT NULL,
	used_quota   BIGINT  NOT NULL,
	used_known   BOOLEAN NOT NULL,
	-- Unix seconds; 0 when the server did not say.
	cycle_start  BIGINT  NOT NULL,
	cycle_end    BIGINT  NOT NULL,
	server_sent  BIGINT  NOT NULL,
	ote_status   TEXT    NOT NULL,
	mv_status    TEXT    NOT NULL,
	-- 'query' (the plugin asked) or 'notification' (the server pushed it).
	source       TEXT    NOT NULL,
	-- When the plugin last received it (unix seconds): the fetch TTL
	-- counts from here.
	fetched_at   BIGINT  NOT NULL,

	CHECK ( source IN ('query', 'notification') )
);
