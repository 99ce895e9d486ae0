-- songmix warehouse, schema version 2: views for the common questions, and run liveness.
-- Views read the model and mart tables of the latest completed run that fitted models;
-- older runs stay queryable in the tables themselves (filter on run_id).

ALTER TABLE runs ADD COLUMN host VARCHAR;
ALTER TABLE runs ADD COLUMN pid INTEGER;
COMMENT ON COLUMN runs.host IS 'Machine whose process ran (with pid: tells an interrupted run from a live one).';
COMMENT ON COLUMN runs.pid IS 'Process id of the run''s writer; a later run marks a still-running row whose process is gone as failed (interrupted).';

-- Lineage of a fit, documented where people look for it.
COMMENT ON COLUMN gmm_fits.data_sha256 IS 'Lineage: SHA-256 of the fitted matrix (float64, row-major, columns in gmm_models.features order) followed by the newline-joined track ids of gmm_models.track_ids; recompute with songmix.warehouse.records.data_sha256 to prove which feature rows and values a fit used.';
COMMENT ON COLUMN gmm_models.track_ids IS 'Lineage: the tracks whose feature rows were fitted, in row order (spotify_features by track_id; aubio_features through audio_files.sha256). Same list for both feature sets of a run.';

CREATE VIEW latest_completed_run AS
SELECT run_id, source, started_at, finished_at, code_version, parameters
FROM runs
WHERE status = 'completed'
  AND run_id IN (SELECT run_id FROM gmm_models WHERE chosen)
ORDER BY finished_at DESC, started_at DESC
LIMIT 1;
COMMENT ON VIEW latest_completed_run IS 'The newest run that completed and fitted models: the run the other views describe.';

CREATE VIEW track_clusters AS
WITH chosen_assignments AS (
    SELECT a.feature_set, a.track_id, a.k, a.cluster, a.probability
    FROM gmm_assignments a
    JOIN gmm_models m USING (run_id, feature_set, k)
    JOIN latest_completed_run USING (run_id)
    WHERE m.chosen
)
SELECT
    t.track_id, t.name, t.artists, t.album, t.year,
    r.run_id,
    s.k AS spotify_k, s.cluster AS spotify_cluster, s.probability AS spotify_probability,
    x.k AS aubio_k, x.cluster AS aubio_cluster, x.probability AS aubio_probability
FROM run_tracks rt
JOIN latest_completed_run r USING (run_id)
JOIN tracks t USING (track_id)
LEFT JOIN chosen_assignments s ON s.track_id = t.track_id AND s.feature_set = 'spotify'
LEFT JOIN chosen_assignments x ON x.track_id = t.track_id AND x.feature_set = 'aubio'
ORDER BY rt.position;
COMMENT ON VIEW track_clusters IS 'Each track of the latest completed run with its metadata and its cluster and membership probability under the chosen Spotify and Aubio models (NULL where the track was not fitted, e.g. no audio).';
COMMENT ON COLUMN track_clusters.spotify_cluster IS 'Most probable component of the chosen Spotify-feature model (0-based).';
COMMENT ON COLUMN track_clusters.spotify_probability IS 'Membership probability of that component (0..1).';
COMMENT ON COLUMN track_clusters.aubio_cluster IS 'Most probable component of the chosen Aubio-feature model (0-based; numbering unrelated to Spotify''s, see contingency.matched).';
COMMENT ON COLUMN track_clusters.aubio_probability IS 'Membership probability of that component (0..1).';

CREATE VIEW latest_comparison AS
SELECT c.*
FROM comparison c
JOIN latest_completed_run USING (run_id)
ORDER BY c.left_set, c.right_set, c.metric;
COMMENT ON VIEW latest_comparison IS 'The comparison rows (ari, nmi, ami per pair of clusterings) of the latest completed run.';

CREATE VIEW failed_items AS
SELECT f.stage, f.item_id, f.reason, f.run_id, f.recorded_at, r.status AS run_status
FROM item_failures f
LEFT JOIN runs r USING (run_id)
UNION ALL
SELECT 'download', a.track_id, coalesce(a.error, a.status), a.run_id, a.downloaded_at, r.status
FROM audio_files a
LEFT JOIN runs r USING (run_id)
WHERE a.status <> 'ok'
  AND NOT EXISTS (SELECT 1 FROM item_failures f
                  WHERE f.run_id = a.run_id AND f.stage = 'download' AND f.item_id = a.track_id);
COMMENT ON VIEW failed_items IS 'Every fetch, download, extraction or fit that failed, with its reason and run: item_failures, plus audio files whose stored status is not ok and that no failure row records.';
COMMENT ON COLUMN failed_items.stage IS 'spotify_features, download, extraction, fit or import.';
COMMENT ON COLUMN failed_items.item_id IS 'Track id (fetch, download), audio sha256 (extraction) or feature set (fit).';
COMMENT ON COLUMN failed_items.recorded_at IS 'When the failure was recorded (UTC).';
COMMENT ON COLUMN failed_items.run_status IS 'Status of the run that recorded it.';
