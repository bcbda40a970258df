-- v5 -> v6 (compatible with v5+): Let the timelock's source be the server's answer to the timelock query
-- The plugin asks the server for the account's reach-out timelock at
-- connect; its answer is recorded with the source 'query'. Code that knows
-- only v4 reads such a row as any other source, so it stays compatible.
-- only: postgres for next 3 lines
ALTER TABLE tctoken_timelock DROP CONSTRAINT IF EXISTS tctoken_timelock_source_check;
ALTER TABLE tctoken_timelock ADD CONSTRAINT tctoken_timelock_source_check
	CHECK ( source IN ('query', 'notification', 'pattern') );

-- SQLite cannot change a CHECK constraint: the table is rebuilt.
-- only: sqlite until "end only"
CREATE TABLE tctoken_timelock_v5 (
	our_jid    TEXT    PRIMARY KEY,
	active     BOOLEAN NOT NULL,
	-- 'query' (the server's answer to the timelock query), 'notification'
	-- (the server's push) or 'pattern' (first contacts refused while known
	-- contacts get through).
	source     TEXT    NOT NULL,
	-- Unix seconds the enforcement ends, 0 when the server did not say.
	ends_at    BIGINT  NOT NULL,
	enforcement TEXT   NOT NULL,
	updated_at BIGINT  NOT NULL,

	CHECK ( source IN ('query', 'notification', 'pattern') )
);
INSERT INTO tctoken_timelock_v5 (our_jid, active, source, ends_at, enforcement, updated_at)
	SELECT our_jid, active, source, ends_at, enforcement, updated_at FROM tctoken_timelock;
DROP TABLE tctoken_timelock;
ALTER TABLE tctoken_timelock_v5 RENAME TO tctoken_timelock;
-- end only sqlite
