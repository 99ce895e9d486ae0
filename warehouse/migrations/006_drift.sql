-- songmix warehouse, migration 006: drift between consecutive runs on the same source.

CREATE TABLE run_drift (
    run_id             VARCHAR NOT NULL,
    feature_set        VARCHAR NOT NULL,
    previous_run_id    VARCHAR NOT NULL,
    previous_k         INTEGER NOT NULL,
    k                  INTEGER NOT NULL,
    n_common           INTEGER NOT NULL,
    ari                DOUBLE,
    n_changed          INTEGER NOT NULL,
    n_new              INTEGER NOT NULL,
    n_vanished         INTEGER NOT NULL,
    changed_tracks     JSON NOT NULL,
    new_tracks         VARCHAR[] NOT NULL,
    vanished_tracks    VARCHAR[] NOT NULL,
    parameter_changes  JSON NOT NULL,
    computed_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (run_id, feature_set)
);
COMMENT ON TABLE run_drift IS 'Mart: how each run''s chosen clustering differs from the previous completed run''s on the same source, per feature set.';
COMMENT ON COLUMN run_drift.run_id IS 'The newer run.';
COMMENT ON COLUMN run_drift.feature_set IS 'spotify or aubio: which clustering is compared.';
COMMENT ON COLUMN run_drift.previous_run_id IS 'The latest earlier run with status completed and the same runs.source.';
COMMENT ON COLUMN run_drift.previous_k IS 'Clusters the previous run chose.';
COMMENT ON COLUMN run_drift.k IS 'Clusters this run chose.';
COMMENT ON COLUMN run_drift.n_common IS 'Tracks both runs clustered.';
COMMENT ON COLUMN run_drift.ari IS 'Adjusted Rand index of the two runs'' labels on the common tracks (1 = same partition; null when fewer than 2 common tracks).';
COMMENT ON COLUMN run_drift.n_changed IS 'Common tracks whose cluster changed, after matching this run''s clusters to the previous run''s (Hungarian method on the contingency table).';
COMMENT ON COLUMN run_drift.n_new IS 'Tracks this run clustered that the previous run did not.';
COMMENT ON COLUMN run_drift.n_vanished IS 'Tracks the previous run clustered that this run did not.';
COMMENT ON COLUMN run_drift.changed_tracks IS 'JSON list of {track_id, previous_cluster, cluster, matched_cluster}: cluster is this run''s label, matched_cluster the previous run''s label it was matched to (null when unmatched).';
COMMENT ON COLUMN run_drift.new_tracks IS 'Ids of the new tracks.';
COMMENT ON COLUMN run_drift.vanished_tracks IS 'Ids of the vanished tracks.';
COMMENT ON COLUMN run_drift.parameter_changes IS 'JSON object {parameter: [previous, current]} of run parameters that differ between the two runs (empty when identical).';
COMMENT ON COLUMN run_drift.computed_at IS 'When the drift was measured (UTC).';
