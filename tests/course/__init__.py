"""Tests of the `course` command's package, `course`."""
