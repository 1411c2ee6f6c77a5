"""Prompt templates, in one place.

`generator.py` holds the instructions sent to the video generator: a plain
form per verb and the phrases refinement adds (explicit manner, completion,
identity, keep-still).
"""
