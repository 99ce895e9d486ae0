-- songmix warehouse, migration 009: model selection over covariance types and k, and what to
-- distrust about the chosen model.
--
-- A run compares every (covariance type, k) pair the data support by BIC, as R's mclust does;
-- pairs with more covariance parameters than tracks to estimate them are left out with the
-- reason. gmm_* tables keep the chosen covariance type's fit at every k; this table keeps the
-- whole grid. Warnings (the chosen k at the edge of what was tried, a component smaller than
-- its parameter count) are stored with the chosen model and gathered on the run's row.

CREATE TABLE model_selection (
    run_id           VARCHAR NOT NULL,
    feature_set      VARCHAR NOT NULL,
    covariance_type  VARCHAR NOT NULL,
    k                INTEGER NOT NULL,
    status           VARCHAR NOT NULL,
    reason           VARCHAR,
    bic              DOUBLE,
    aic              DOUBLE,
    chosen           BOOLEAN NOT NULL,
    n_samples        INTEGER NOT NULL,
    prior            BOOLEAN NOT NULL,
    PRIMARY KEY (run_id, feature_set, covariance_type, k)
);
COMMENT ON TABLE model_selection IS 'Model: every (covariance type, k) pair a run considered per feature set, fitted or left out, with its best seed''s BIC; the chosen pair has the lowest BIC (or the user''s --k).';
COMMENT ON COLUMN model_selection.run_id IS 'The run that considered the pair.';
COMMENT ON COLUMN model_selection.feature_set IS 'spotify or aubio: the features the model is fitted on.';
COMMENT ON COLUMN model_selection.covariance_type IS 'full, tied, diag or spherical (scikit-learn''s names; mclust''s VVV, EEE, VVI, VII).';
COMMENT ON COLUMN model_selection.k IS 'Number of components.';
COMMENT ON COLUMN model_selection.status IS 'fitted; left out (the data cannot support it: see reason); failed (every EM start failed: see reason).';
COMMENT ON COLUMN model_selection.reason IS 'Why the pair was left out or failed; null when fitted.';
COMMENT ON COLUMN model_selection.bic IS 'BIC of the best seed (lower is better); null unless fitted.';
COMMENT ON COLUMN model_selection.aic IS 'AIC of the best seed; null unless fitted.';
COMMENT ON COLUMN model_selection.chosen IS 'The pair the run used (its fits at every k are in gmm_models).';
COMMENT ON COLUMN model_selection.n_samples IS 'Tracks the models were fitted on.';
COMMENT ON COLUMN model_selection.prior IS 'Fitted with mclust''s conjugate prior (posterior mode), which keeps every pair supported.';

ALTER TABLE gmm_models ADD COLUMN warnings VARCHAR[];
COMMENT ON COLUMN gmm_models.warnings IS 'On the chosen model: reasons to distrust it (the chosen k is the largest or smallest tried or supported; a component holds fewer tracks than its parameters). Empty when none; null on other k.';
ALTER TABLE runs ADD COLUMN warnings VARCHAR[];
COMMENT ON COLUMN runs.warnings IS 'Every chosen model''s warnings (gmm_models.warnings), prefixed by feature set; set when the run finishes.';

-- What `songmix predict` checks a new song against.
ALTER TABLE gmm_models ADD COLUMN feature_version VARCHAR;
COMMENT ON COLUMN gmm_models.feature_version IS 'Version of the features the model was fitted on: aubio_features.extractor_version for aubio models (predict refuses features of another version); null for spotify.';
ALTER TABLE gmm_models ADD COLUMN log_density_p01 DOUBLE;
COMMENT ON COLUMN gmm_models.log_density_p01 IS '1st percentile of the fitted tracks'' log-densities under the model (standardised space): predict warns when a song falls below it, i.e. is unlike the tracks the model was fitted on.';
