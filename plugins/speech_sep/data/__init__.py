"""Embedded speech corpus (package data): synthesised utterances of several voices, 8 kHz mono FLAC.

``voices.json`` lists every voice with its engine, settings and split (train / val / test: the
validation and test voices are held out from training). ``make_corpus.py`` regenerated it once
with espeak-ng and flite; the committed files are what everyone uses.
"""
