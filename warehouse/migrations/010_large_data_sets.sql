-- songmix warehouse, migration 010: what the model tables hold for a large data set.
--
-- Above tasks/options.py's LARGE_DATA_SET tracks, the (covariance type, k) pairs are compared
-- on a seeded sample of that many tracks, and the chosen type's best fit at each k is refined
-- by EM on all the tracks from that start. Only the documentation changes.

COMMENT ON COLUMN model_selection.n_samples IS 'Tracks the pair was fitted on: all the tracks the run clustered, or, for a large data set, a seeded sample of them (the chosen type is then refined on all: gmm_models.n_samples).';
COMMENT ON TABLE gmm_fits IS 'Model: every EM run behind the chosen covariance type''s model at each k, per feature set: its seeds, or for a large data set the one run that refined the sample''s fit on all the tracks.';
COMMENT ON TABLE seed_stability IS 'Agreement (ARI) of each converged seed''s clustering with the best seed''s, on the tracks the seeds were fitted on (a large data set''s selection sample): low values mean the clustering is an accident of initialization.';
