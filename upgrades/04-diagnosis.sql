-- v3 -> v4: Remember reach-out timelocks and salt backfill attempts
-- A reach-out timelock the server announced (or that the pattern of 463s
-- points to) outlives a restart: recovering from a 463 under it only makes
-- it worse, and an operator's inspector must see it without the bridge.
CREATE TABLE tctoken_timelock (
	our_jid    TEXT    PRIMARY KEY,
	active     BOOLEAN NOT NULL,
	-- 'notification' (the server said so) or 'pattern' (first contacts
	-- refused while known contacts get through).
	source     TEXT    NOT NULL,
	-- Unix seconds the enforcement ends, 0 when the server did not say.
	ends_at    BIGINT  NOT NULL,
	enforcement TEXT   NOT NULL,
	updated_at BIGINT  NOT NULL,

	CHECK ( source IN ('notification', 'pattern') )
);

-- The last time the plugin re-read regular_high for a missing NCT salt, and
-- what it found, so that a session whose phone has no salt makes one
-- attempt per interval and not one per connect.
CREATE TABLE tctoken_salt_backfill (
	our_jid      TEXT   PRIMARY KEY,
	attempted_at BIGINT NOT NULL,
	-- 'found', 'absent' or 'failed'.
	result       TEXT   NOT NULL,
	attempts     BIGINT NOT NULL,

	CHECK ( result IN ('found', 'absent', 'failed') )
);
