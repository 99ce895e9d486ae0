-- songmix warehouse, migration 011: a model's lineage list of tracks is stored once per
-- feature set, on the chosen model's row.
--
-- Every k of a feature set is fitted on the same rows, so repeating the list on each k's row
-- stored a 1.2-million-track data set's ids nine times per feature set. Rows written before
-- keep their lists.

ALTER TABLE gmm_models ALTER COLUMN track_ids DROP NOT NULL;
COMMENT ON COLUMN gmm_models.track_ids IS 'Lineage: the tracks whose feature rows were fitted, in row order (spotify_features by track_id; aubio_features through audio_files.sha256), on the chosen model''s row; NULL on the other k (fitted on the same rows). Same list for both feature sets of a run.';
