"""songmix.audio: plain functions from a preview URL or audio file to Aubio features.

- ``download``: streamed, size-capped, content-addressed downloads (``download_audio``).
- ``decode``: any MP3/WAV/FLAC/OGG at 8-48 kHz to mono float32 at 22050 Hz (``load_mono``).
- ``features``: the feature table and the extractor (``extract_file``, ``extract_features``).
- ``accuracy``: tempo Acc1/Acc2 and mir_eval key scores against ground truth.
- ``folder``: a folder of the user's audio files and its ``truth.csv``.
- ``synthetic``: test signals with a known tempo and key.
"""
