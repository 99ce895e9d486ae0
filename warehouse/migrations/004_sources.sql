-- songmix warehouse, schema version 4: real-data sources (Spotify at today's limits, keyless
-- fallbacks, CSV data sets).

ALTER TABLE search_pages ADD COLUMN source_key VARCHAR;
COMMENT ON COLUMN search_pages.source_key IS 'Which catalog answered (spotify, demo:<fingerprint>): a later run of the same source reuses pages of the same query and offset fetched less than 24 h earlier instead of asking again.';
COMMENT ON COLUMN search_pages.fetched_at IS 'When the page was fetched (UTC); a reused page keeps the time it was first fetched.';

ALTER TABLE audio_files ADD COLUMN provider VARCHAR;
COMMENT ON COLUMN audio_files.provider IS 'Where the preview came from: listed (the track''s own preview_url), deezer (found by ISRC), or NULL when none was found.';

CREATE TABLE rejected_rows (
    run_id       VARCHAR NOT NULL,
    line_number  INTEGER NOT NULL,
    track_id     VARCHAR,
    reason       VARCHAR NOT NULL,
    "row"        JSON NOT NULL,
    PRIMARY KEY (run_id, line_number)
);
COMMENT ON TABLE rejected_rows IS 'Rows of an imported CSV file that were not loaded, with why (unparseable number, feature out of range, repeated id, missing value).';
COMMENT ON COLUMN rejected_rows.run_id IS 'The import run (source csv:<name>).';
COMMENT ON COLUMN rejected_rows.line_number IS 'Line in the file (the header is line 1).';
COMMENT ON COLUMN rejected_rows.track_id IS 'The row''s track id, when it had one.';
COMMENT ON COLUMN rejected_rows.reason IS 'Every problem found in the row, separated by "; ".';
COMMENT ON COLUMN rejected_rows."row" IS 'The row as read, column name to text.';

CREATE TABLE csv_genres (
    run_id    VARCHAR NOT NULL,
    track_id  VARCHAR NOT NULL,
    genre     VARCHAR NOT NULL,
    PRIMARY KEY (run_id, track_id)
);
COMMENT ON TABLE csv_genres IS 'Genre label of each imported track, from the data set''s genre column; clusterings of the run are also scored against it.';
COMMENT ON COLUMN csv_genres.genre IS 'The label as written in the file (first one, for a track listed under several).';

