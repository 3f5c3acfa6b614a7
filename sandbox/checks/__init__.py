"""Exercise checks: one module per chapter, each check named after its exercise.

A check runs the learner's code for real (over ASGI, with the event loop) and its feedback names the async
mistake. It prints a line starting with a green tick when the exercise passes, raises `ExerciseFailed` when it
does not, and lets `NotImplementedError` from an untouched stub through as "not attempted".

`givens/` holds what the exercises give the learner's code to call; each check module re-exports its chapter's.
"""
