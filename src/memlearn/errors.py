"""Exceptions shared by every layer."""

from __future__ import annotations


class MemlearnError(Exception):
    """An error whose message is meant for the user: it names what is wrong and what is allowed."""


class DataNotFoundError(MemlearnError, FileNotFoundError):
    """A data set is missing: the message names the directories tried and how to get the data."""


class CorruptDataError(MemlearnError):
    """A data file exists but is truncated, fails its checksum or has the wrong layout."""
