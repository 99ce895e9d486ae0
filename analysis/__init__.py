"""songmix.analysis: how the Spotify-feature clustering compares with the Aubio one.

Plain functions on numpy arrays and DataFrames (no Prefect, no DuckDB, no file I/O except
the plot functions' optional output path):

- :mod:`~songmix.analysis.agreement`: ARI / NMI / AMI with bootstrap intervals and a
  permutation null; agreement across k.
- :mod:`~songmix.analysis.compare`: contingency table, Hungarian-matched clusters, cluster
  profiles and short cluster names.
- :mod:`~songmix.analysis.features`: how well Aubio features predict Spotify's, and direct
  agreement on tempo, key, mode, loudness, energy.
- :mod:`~songmix.analysis.plots`: PNG figures for the report.
"""
