-- songmix warehouse, schema version 3: the marts the report is built from.
-- Everything `songmix report` shows is read from these tables (and the model tables), so a
-- report can be rebuilt for any stored run without refitting anything.

ALTER TABLE comparison ADD COLUMN null_upper DOUBLE;
ALTER TABLE comparison ADD COLUMN interval_method VARCHAR;
ALTER TABLE comparison ADD COLUMN n_resamples INTEGER;
COMMENT ON COLUMN comparison.ci_low IS 'Lower end of the 95% interval from resampling tracks (see interval_method).';
COMMENT ON COLUMN comparison.ci_high IS 'Upper end of the 95% interval from resampling tracks.';
COMMENT ON COLUMN comparison.null_mean IS 'Mean of the metric with one side''s labels shuffled (what chance gives).';
COMMENT ON COLUMN comparison.null_upper IS '95th percentile of the metric under shuffled labels: an interval whose low end lies above it excludes chance.';
COMMENT ON COLUMN comparison.p_value IS 'Permutation p-value: (1 + shuffles at least as high) / (1 + shuffles).';
COMMENT ON COLUMN comparison.interval_method IS 'half-sample (half the tracks without replacement, the default) or bootstrap (percentile, with replacement).';
COMMENT ON COLUMN comparison.n_resamples IS 'Track resamples for the interval, and label shuffles for the null.';
COMMENT ON COLUMN comparison.right_set IS 'spotify, aubio or truth; notebook_k2 is the seed notebook''s model (k=2 on acousticness and energy).';

CREATE TABLE agreement_by_k (
    run_id      VARCHAR NOT NULL,
    comparison  VARCHAR NOT NULL,
    k           INTEGER NOT NULL,
    n_tracks    INTEGER NOT NULL,
    degenerate  BOOLEAN NOT NULL,
    ari         DOUBLE,
    ari_ci_low  DOUBLE,
    ari_ci_high DOUBLE,
    nmi         DOUBLE,
    nmi_ci_low  DOUBLE,
    nmi_ci_high DOUBLE,
    ami         DOUBLE,
    ami_ci_low  DOUBLE,
    ami_ci_high DOUBLE,
    PRIMARY KEY (run_id, comparison, k)
);
COMMENT ON TABLE agreement_by_k IS 'Mart: agreement of the two clusterings (and of each with the truth) at every k both were fitted with, each k''s best model on each side.';
COMMENT ON COLUMN agreement_by_k.comparison IS 'spotify vs aubio, spotify vs truth or aubio vs truth.';
COMMENT ON COLUMN agreement_by_k.k IS 'Components of the mixture on each side (the truth keeps its own groups).';
COMMENT ON COLUMN agreement_by_k.degenerate IS 'A side puts every track in one cluster: the scores are conventions, not evidence.';
COMMENT ON COLUMN agreement_by_k.ari IS 'Adjusted Rand index (0 = chance, 1 = identical).';
COMMENT ON COLUMN agreement_by_k.ari_ci_low IS 'Low end of the 95% half-sample interval of ari.';
COMMENT ON COLUMN agreement_by_k.ari_ci_high IS 'High end of the 95% half-sample interval of ari.';
COMMENT ON COLUMN agreement_by_k.nmi IS 'Normalized mutual information (not corrected for chance).';
COMMENT ON COLUMN agreement_by_k.nmi_ci_low IS 'Low end of the 95% half-sample interval of nmi.';
COMMENT ON COLUMN agreement_by_k.nmi_ci_high IS 'High end of the 95% half-sample interval of nmi.';
COMMENT ON COLUMN agreement_by_k.ami IS 'Adjusted mutual information (0 = chance, 1 = identical).';
COMMENT ON COLUMN agreement_by_k.ami_ci_low IS 'Low end of the 95% half-sample interval of ami.';
COMMENT ON COLUMN agreement_by_k.ami_ci_high IS 'High end of the 95% half-sample interval of ami.';

CREATE TABLE cluster_pairs (
    run_id         VARCHAR NOT NULL,
    left_set       VARCHAR NOT NULL,
    right_set      VARCHAR NOT NULL,
    pair           INTEGER NOT NULL,
    left_cluster   INTEGER NOT NULL,
    right_cluster  INTEGER NOT NULL,
    left_name      VARCHAR NOT NULL,
    right_name     VARCHAR NOT NULL,
    left_size      INTEGER NOT NULL,
    right_size     INTEGER NOT NULL,
    overlap        INTEGER NOT NULL,
    "precision"    DOUBLE NOT NULL,
    recall         DOUBLE NOT NULL,
    jaccard        DOUBLE NOT NULL,
    PRIMARY KEY (run_id, left_set, right_set, pair)
);
COMMENT ON TABLE cluster_pairs IS 'Mart: clusters of two clusterings (same comparisons and k as the comparison table) paired one-to-one by the Hungarian method on their contingency table.';
COMMENT ON COLUMN cluster_pairs.pair IS 'Pair number, 1-based, in the left clustering''s label order.';
COMMENT ON COLUMN cluster_pairs.left_name IS 'Short name of the left cluster from its most unusual mean Spotify features ("acoustic, calm").';
COMMENT ON COLUMN cluster_pairs.right_name IS 'Short name of the right cluster, from the mean Spotify features of its tracks.';
COMMENT ON COLUMN cluster_pairs.overlap IS 'Tracks in both clusters.';
COMMENT ON COLUMN cluster_pairs."precision" IS 'overlap / right_size: share of the right cluster inside the left one.';
COMMENT ON COLUMN cluster_pairs.recall IS 'overlap / left_size: share of the left cluster the right one recovers.';
COMMENT ON COLUMN cluster_pairs.jaccard IS 'overlap / (left_size + right_size - overlap).';

CREATE TABLE cluster_profiles (
    run_id        VARCHAR NOT NULL,
    left_set      VARCHAR NOT NULL,
    right_set     VARCHAR NOT NULL,
    side          VARCHAR NOT NULL,
    cluster       INTEGER NOT NULL,
    pair          INTEGER,
    cluster_name  VARCHAR NOT NULL,
    n_tracks      INTEGER NOT NULL,
    feature       VARCHAR NOT NULL,
    mean          DOUBLE,
    PRIMARY KEY (run_id, left_set, right_set, side, cluster, feature)
);
COMMENT ON TABLE cluster_profiles IS 'Mart: mean Spotify feature of every cluster on each side of a comparison (long format), so both sides'' clusters are described in the same terms.';
COMMENT ON COLUMN cluster_profiles.side IS 'Which clustering the cluster belongs to (the comparison''s left_set or right_set).';
COMMENT ON COLUMN cluster_profiles.pair IS 'cluster_pairs.pair of the cluster; NULL when it has no partner (the two sides have different k).';
COMMENT ON COLUMN cluster_profiles.feature IS 'A Spotify feature (the cluster means are in its own units).';
COMMENT ON COLUMN cluster_profiles.mean IS 'Mean of the feature over the cluster''s tracks.';
