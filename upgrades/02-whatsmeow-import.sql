-- v1 -> v2: Remember which accounts had whatsmeow's own tokens imported
-- A bridge that ran whatsmeow alone already holds its contacts' tokens in
-- whatsmeow_privacy_tokens. The first bind copies them over once; this row
-- says it happened, so that a restart does not do it again.
CREATE TABLE tctoken_imports (
	our_jid     TEXT   PRIMARY KEY,
	imported_at BIGINT NOT NULL,
	-- How many of whatsmeow's rows were read, for the logs and inspectors.
	row_count   BIGINT NOT NULL
);
