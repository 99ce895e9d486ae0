-- songmix warehouse, migration 007: gmm_assignments without a PRIMARY KEY index.
--
-- gmm_assignments is the largest table (tracks x k x feature sets per run). Maintaining an
-- ART index on its natural key (run_id, feature_set, k, track_id) cost about half of every
-- write, and nothing reads through it: the views and read helpers join on whole runs. The key
-- stays unique without the index: the writer deletes the incoming keys before inserting, and
-- its checks (songmix.warehouse.checks) refuse a write that repeats a key within a run.

CREATE TABLE gmm_assignments_unindexed (
    run_id         VARCHAR NOT NULL,
    feature_set    VARCHAR NOT NULL,
    k              INTEGER NOT NULL,
    track_id       VARCHAR NOT NULL,
    cluster        INTEGER NOT NULL,
    probability    DOUBLE NOT NULL,
    probabilities  DOUBLE[] NOT NULL
);
INSERT INTO gmm_assignments_unindexed SELECT * FROM gmm_assignments;
DROP TABLE gmm_assignments;
ALTER TABLE gmm_assignments_unindexed RENAME TO gmm_assignments;

COMMENT ON TABLE gmm_assignments IS 'Model: each track''s most probable cluster and its membership probabilities, per feature set and k. Key (run_id, feature_set, k, track_id), unique by check rather than index.';
COMMENT ON COLUMN gmm_assignments.run_id IS 'The run that fitted the model.';
COMMENT ON COLUMN gmm_assignments.feature_set IS 'spotify or aubio: the features the model was fitted on.';
COMMENT ON COLUMN gmm_assignments.k IS 'Number of components of the model.';
COMMENT ON COLUMN gmm_assignments.track_id IS 'The track (tracks.track_id).';
COMMENT ON COLUMN gmm_assignments.cluster IS 'Most probable component, 0 .. k-1.';
COMMENT ON COLUMN gmm_assignments.probability IS 'Membership probability of that component.';
COMMENT ON COLUMN gmm_assignments.probabilities IS 'Membership probability of every component, k values summing to 1.';
