-- songmix warehouse, migration 012: the Aubio feature columns are added by the runs.
--
-- The warehouse no longer reads the extractor's feature table itself; every run gives
-- aubio_features the columns of the extractor it runs with. Only the documentation changes.

COMMENT ON TABLE aubio_features IS 'Staging: features extracted with Aubio from each audio file (one row per file content). One column per feature of songmix.audio.features.FEATURE_TABLE, added and documented from that table by each run (a column added later holds NULL in older rows until they are re-extracted).';
