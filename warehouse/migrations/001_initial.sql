-- songmix warehouse, schema version 1.
-- Layers: raw (responses exactly as received) -> staging (typed, one row per natural key)
-- -> model (fits, components, assignments) -> marts (comparisons) -> views (common questions).
-- Every COMMENT below is the schema's documentation: `songmix schema` prints it.

CREATE TABLE runs (
    run_id        VARCHAR PRIMARY KEY,
    flow_run_id   VARCHAR,
    source        VARCHAR NOT NULL,
    parameters    JSON NOT NULL,
    code_version  VARCHAR NOT NULL,
    started_at    TIMESTAMP NOT NULL,
    finished_at   TIMESTAMP,
    status        VARCHAR NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    counts        JSON,
    error         VARCHAR
);
COMMENT ON TABLE runs IS 'One row per pipeline run: parameters (never secrets), code version, timing, status and per-stage counts.';
COMMENT ON COLUMN runs.run_id IS 'Identifier every derived row carries.';
COMMENT ON COLUMN runs.flow_run_id IS 'Prefect flow run id (find the run in the Prefect UI).';
COMMENT ON COLUMN runs.source IS 'Where tracks came from: demo, spotify, csv:<name>, audio-dir.';
COMMENT ON COLUMN runs.parameters IS 'Run parameters as JSON (no credentials).';
COMMENT ON COLUMN runs.code_version IS 'songmix version that ran.';
COMMENT ON COLUMN runs.status IS 'running, completed or failed.';
COMMENT ON COLUMN runs.counts IS 'Rows produced per stage, as JSON.';
COMMENT ON COLUMN runs.error IS 'Why the run failed, if it did.';

CREATE TABLE search_pages (
    run_id      VARCHAR NOT NULL,
    query       VARCHAR NOT NULL,
    "offset"    INTEGER NOT NULL,
    fetched_at  TIMESTAMP NOT NULL,
    page        JSON NOT NULL,
    PRIMARY KEY (run_id, query, "offset")
);
COMMENT ON TABLE search_pages IS 'Raw layer: every search page exactly as the API returned it.';
COMMENT ON COLUMN search_pages.page IS 'The JSON body of the response.';

CREATE TABLE raw_audio_features (
    track_id    VARCHAR NOT NULL,
    provider    VARCHAR NOT NULL,
    run_id      VARCHAR NOT NULL,
    fetched_at  TIMESTAMP NOT NULL,
    response    JSON NOT NULL,
    PRIMARY KEY (track_id, provider)
);
COMMENT ON TABLE raw_audio_features IS 'Raw layer: each audio-features object exactly as its provider returned it.';

CREATE TABLE run_tracks (
    run_id    VARCHAR NOT NULL,
    track_id  VARCHAR NOT NULL,
    position  INTEGER NOT NULL,
    PRIMARY KEY (run_id, track_id)
);
COMMENT ON TABLE run_tracks IS 'Which tracks each run worked on, in search order.';

CREATE TABLE tracks (
    track_id      VARCHAR PRIMARY KEY,
    name          VARCHAR NOT NULL,
    artists       VARCHAR NOT NULL,
    album         VARCHAR,
    release_date  VARCHAR,
    year          INTEGER,
    duration_ms   INTEGER,
    isrc          VARCHAR,
    preview_url   VARCHAR,
    run_id        VARCHAR NOT NULL
);
COMMENT ON TABLE tracks IS 'Staging: one row per track (Spotify id), from the latest run that saw it.';
COMMENT ON COLUMN tracks.artists IS 'Artist names, comma-separated.';
COMMENT ON COLUMN tracks.preview_url IS 'Preview URL as listed (may be null: today Spotify lists none for new apps).';
COMMENT ON COLUMN tracks.run_id IS 'Run that last wrote this row.';

CREATE TABLE spotify_features (
    track_id          VARCHAR PRIMARY KEY,
    provider          VARCHAR NOT NULL,
    danceability      DOUBLE NOT NULL,
    energy            DOUBLE NOT NULL,
    "key"             INTEGER NOT NULL,
    loudness          DOUBLE NOT NULL,
    "mode"            INTEGER NOT NULL,
    speechiness       DOUBLE NOT NULL,
    acousticness      DOUBLE NOT NULL,
    instrumentalness  DOUBLE NOT NULL,
    liveness          DOUBLE NOT NULL,
    valence           DOUBLE NOT NULL,
    tempo             DOUBLE NOT NULL,
    run_id            VARCHAR NOT NULL
);
COMMENT ON TABLE spotify_features IS 'Staging: Spotify-style audio features per track (0..1 scores, loudness in dB, tempo in BPM, key as pitch class 0=C, mode 1=major).';
COMMENT ON COLUMN spotify_features.provider IS 'Who answered: spotify, reccobeats, demo or csv.';

CREATE TABLE audio_files (
    track_id       VARCHAR PRIMARY KEY,
    status         VARCHAR NOT NULL CHECK (status IN ('ok', 'failed', 'unavailable')),
    sha256         VARCHAR,
    path           VARCHAR,
    bytes          BIGINT,
    error          VARCHAR,
    run_id         VARCHAR NOT NULL,
    downloaded_at  TIMESTAMP NOT NULL
);
COMMENT ON TABLE audio_files IS 'Staging: the preview audio of each track, in the content-addressed cache, or why there is none.';
COMMENT ON COLUMN audio_files.sha256 IS 'SHA-256 of the file (its name in the cache).';
COMMENT ON COLUMN audio_files.error IS 'Reason for a failed or unavailable download.';

CREATE TABLE item_failures (
    run_id       VARCHAR NOT NULL,
    stage        VARCHAR NOT NULL,
    item_id      VARCHAR NOT NULL,
    reason       VARCHAR NOT NULL,
    recorded_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (run_id, stage, item_id)
);
COMMENT ON TABLE item_failures IS 'Every fetch, download, extraction or fit that failed or was skipped, with the reason.';
COMMENT ON COLUMN item_failures.stage IS 'spotify_features, download, extraction, fit or import.';

CREATE TABLE demo_truth (
    track_id    VARCHAR PRIMARY KEY,
    group_id    INTEGER NOT NULL,
    group_name  VARCHAR NOT NULL,
    tempo       DOUBLE NOT NULL,
    "key"       INTEGER NOT NULL,
    "mode"      INTEGER NOT NULL,
    run_id      VARCHAR NOT NULL
);
COMMENT ON TABLE demo_truth IS 'Ground truth of the built-in demo catalog: the genre-like group each track was generated from, and the tempo, key and mode its audio was rendered with.';

CREATE TABLE gmm_fits (
    run_id           VARCHAR NOT NULL,
    feature_set      VARCHAR NOT NULL,
    k                INTEGER NOT NULL,
    seed             INTEGER NOT NULL,
    covariance_type  VARCHAR NOT NULL,
    log_likelihood   DOUBLE,
    bic              DOUBLE,
    aic              DOUBLE,
    n_iter           INTEGER NOT NULL,
    converged        BOOLEAN NOT NULL,
    is_best          BOOLEAN NOT NULL,
    failed_reason    VARCHAR,
    n_samples        INTEGER NOT NULL,
    data_sha256      VARCHAR NOT NULL,
    PRIMARY KEY (run_id, feature_set, k, seed)
);
COMMENT ON TABLE gmm_fits IS 'Model: every EM seed fitted, per feature set and number of components k.';
COMMENT ON COLUMN gmm_fits.log_likelihood IS 'Mean log-likelihood per sample (standardized features).';
COMMENT ON COLUMN gmm_fits.is_best IS 'The seed with the highest log-likelihood for this feature set and k.';
COMMENT ON COLUMN gmm_fits.data_sha256 IS 'Hash of the feature matrix fitted (lineage: which rows and values).';

CREATE TABLE gmm_models (
    run_id          VARCHAR NOT NULL,
    feature_set     VARCHAR NOT NULL,
    k               INTEGER NOT NULL,
    covariance_type VARCHAR NOT NULL,
    chosen          BOOLEAN NOT NULL,
    features        VARCHAR[] NOT NULL,
    scaler_mean     DOUBLE[] NOT NULL,
    scaler_scale    DOUBLE[] NOT NULL,
    log_likelihood  DOUBLE NOT NULL,
    bic             DOUBLE NOT NULL,
    aic             DOUBLE NOT NULL,
    n_samples       INTEGER NOT NULL,
    track_ids       VARCHAR[] NOT NULL,
    PRIMARY KEY (run_id, feature_set, k)
);
COMMENT ON TABLE gmm_models IS 'Model: the best fit per feature set and k, with the scaler that standardized its input.';
COMMENT ON COLUMN gmm_models.chosen IS 'The k the run used (BIC-chosen unless fixed by the user).';
COMMENT ON COLUMN gmm_models.track_ids IS 'Lineage: the tracks whose feature rows were fitted, in row order.';

CREATE TABLE gmm_components (
    run_id         VARCHAR NOT NULL,
    feature_set    VARCHAR NOT NULL,
    k              INTEGER NOT NULL,
    component      INTEGER NOT NULL,
    weight         DOUBLE NOT NULL,
    mean           DOUBLE[] NOT NULL,
    mean_original  DOUBLE[] NOT NULL,
    covariance     DOUBLE[] NOT NULL,
    PRIMARY KEY (run_id, feature_set, k, component)
);
COMMENT ON TABLE gmm_components IS 'Model: weight, mean and covariance of each mixture component.';
COMMENT ON COLUMN gmm_components.mean IS 'Mean in standardized units (order of gmm_models.features).';
COMMENT ON COLUMN gmm_components.mean_original IS 'Mean in the features'' own units.';
COMMENT ON COLUMN gmm_components.covariance IS 'Covariance in standardized units, row-major d*d.';

CREATE TABLE gmm_assignments (
    run_id         VARCHAR NOT NULL,
    feature_set    VARCHAR NOT NULL,
    k              INTEGER NOT NULL,
    track_id       VARCHAR NOT NULL,
    cluster        INTEGER NOT NULL,
    probability    DOUBLE NOT NULL,
    probabilities  DOUBLE[] NOT NULL,
    PRIMARY KEY (run_id, feature_set, k, track_id)
);
COMMENT ON TABLE gmm_assignments IS 'Model: each track''s most probable cluster and its membership probabilities, per feature set and k.';

CREATE TABLE seed_stability (
    run_id         VARCHAR NOT NULL,
    feature_set    VARCHAR NOT NULL,
    k              INTEGER NOT NULL,
    seed           INTEGER NOT NULL,
    ari_with_best  DOUBLE NOT NULL,
    PRIMARY KEY (run_id, feature_set, k, seed)
);
COMMENT ON TABLE seed_stability IS 'Agreement (ARI) of each converged seed''s clustering with the best seed''s: low values mean the clustering is an accident of initialization.';

CREATE TABLE comparison (
    run_id       VARCHAR NOT NULL,
    left_set     VARCHAR NOT NULL,
    right_set    VARCHAR NOT NULL,
    left_k       INTEGER NOT NULL,
    right_k      INTEGER NOT NULL,
    metric       VARCHAR NOT NULL,
    value        DOUBLE,
    ci_low       DOUBLE,
    ci_high      DOUBLE,
    null_mean    DOUBLE,
    p_value      DOUBLE,
    n_tracks     INTEGER NOT NULL,
    PRIMARY KEY (run_id, left_set, right_set, left_k, right_k, metric)
);
COMMENT ON TABLE comparison IS 'Mart: agreement between two clusterings of the same tracks (ari, nmi, ami), with bootstrap interval and permutation null where computed.';
COMMENT ON COLUMN comparison.left_set IS 'spotify, aubio or truth (demo groups / CSV genres).';

CREATE TABLE contingency (
    run_id         VARCHAR NOT NULL,
    left_set       VARCHAR NOT NULL,
    right_set      VARCHAR NOT NULL,
    left_cluster   INTEGER NOT NULL,
    right_cluster  INTEGER NOT NULL,
    n_tracks       INTEGER NOT NULL,
    matched        BOOLEAN NOT NULL,
    PRIMARY KEY (run_id, left_set, right_set, left_cluster, right_cluster)
);
COMMENT ON TABLE contingency IS 'Mart: tracks per (left cluster, right cluster); matched marks the Hungarian pairing.';

CREATE TABLE feature_agreement (
    run_id          VARCHAR NOT NULL,
    spotify_feature VARCHAR NOT NULL,
    measure         VARCHAR NOT NULL,
    aubio_feature   VARCHAR,
    value           DOUBLE,
    n_tracks        INTEGER NOT NULL,
    PRIMARY KEY (run_id, spotify_feature, measure)
);
COMMENT ON TABLE feature_agreement IS 'Mart: how features both sides measure agree (pearson_r, tempo acc1/acc2, key/mode agreement) and how well Aubio features predict each Spotify feature (cv_r2, best_r).';

CREATE TABLE extractor_accuracy (
    run_id    VARCHAR NOT NULL,
    metric    VARCHAR NOT NULL,
    value     DOUBLE NOT NULL,
    n_tracks  INTEGER NOT NULL,
    PRIMARY KEY (run_id, metric)
);
COMMENT ON TABLE extractor_accuracy IS 'Mart: accuracy of the Aubio extractor against ground truth (tempo_acc1, tempo_acc2, key_weighted_score), when truth exists.';

CREATE TABLE aubio_features (
    sha256             VARCHAR PRIMARY KEY,
    extractor_version  VARCHAR NOT NULL,
    flags              VARCHAR NOT NULL,
    run_id             VARCHAR NOT NULL
);
COMMENT ON TABLE aubio_features IS 'Staging: features extracted with Aubio from each audio file (one row per file content). One column per feature of songmix.audio.features.FEATURE_TABLE, added and documented from that table when the warehouse opens.';
COMMENT ON COLUMN aubio_features.extractor_version IS 'Version of the extractor that computed the row; a new version recomputes.';
COMMENT ON COLUMN aubio_features.flags IS 'Comma-separated caveats (e.g. silent, no_beat, short).';
