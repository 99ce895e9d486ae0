-- songmix warehouse, migration 008: membership vectors move to gmm_memberships.
--
-- gmm_assignments holds a row per track for every k of every feature set (tracks x 9 x 2 per
-- run by default). Its k-long list column `probabilities` was most of the table's bytes and of
-- its write time, and nothing read it. Assignments keep the cluster and its probability; the
-- full vectors are kept for the models a run chose (what users study), in their own table.
-- Nothing stored is lost: every vector an older file holds moves over, whatever its k.

CREATE TABLE gmm_memberships (
    run_id         VARCHAR NOT NULL,
    feature_set    VARCHAR NOT NULL,
    k              INTEGER NOT NULL,
    track_id       VARCHAR NOT NULL,
    probabilities  DOUBLE[] NOT NULL
);
INSERT INTO gmm_memberships
SELECT run_id, feature_set, k, track_id, probabilities FROM gmm_assignments;
ALTER TABLE gmm_assignments DROP COLUMN probabilities;

COMMENT ON TABLE gmm_assignments IS 'Model: each track''s most probable cluster and its membership probability, per feature set and k. Key (run_id, feature_set, k, track_id), unique by check rather than index. Every component''s probability: gmm_memberships.';
COMMENT ON TABLE gmm_memberships IS 'Model: each track''s membership probability of every component, under the chosen model of each feature set (files older than schema 8 also keep the other k).';
COMMENT ON COLUMN gmm_memberships.run_id IS 'The run that fitted the model.';
COMMENT ON COLUMN gmm_memberships.feature_set IS 'spotify or aubio: the features the model was fitted on.';
COMMENT ON COLUMN gmm_memberships.k IS 'Number of components of the model (gmm_models.chosen).';
COMMENT ON COLUMN gmm_memberships.track_id IS 'The track (tracks.track_id).';
COMMENT ON COLUMN gmm_memberships.probabilities IS 'Membership probability of every component, k values summing to 1; element i+1 is component i (gmm_assignments.cluster).';
