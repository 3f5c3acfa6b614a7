"""What the exercises give the learner's code to call (a slow library call, a service's clients, a payment provider,
the view under test), one module per chapter, named like the chapter's check module.

Each check module re-exports its chapter's givens under the same names, so a notebook keeps writing
`check.legacy_report`. What a given records, the check reads back from here: one object, shared by both.
"""
